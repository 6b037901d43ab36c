/* One benchmark job: stamps its start and end on CLOCK_MONOTONIC and does a
 * read-modify-write of a counter file, so overlaps and lost updates show.
 * Under a lock with slots (LOTO_SLOT set) each slot has its own counter,
 * COUNTER_FILE.SLOT, and the stamp line gains the slot.
 * Usage: job STAMPS_FILE COUNTER_FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    return 2;
  }
  long long start = now_ns();
  const char *slot = getenv("LOTO_SLOT");
  char counter[4096];
  snprintf(counter, sizeof counter, "%s%s%s", argv[2], slot ? "." : "", slot ? slot : "");
  char buffer[64] = {0};
  int fd = open(counter, O_RDWR | O_CREAT, 0644);
  if (fd < 0) {
    return 3;
  }
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  long value = n > 0 ? strtol(buffer, NULL, 10) : 0;
  int length = snprintf(buffer, sizeof buffer, "%ld\n", value + 1);
  if (pwrite(fd, buffer, (size_t)length, 0) != length) {
    return 4;
  }
  close(fd);
  long long end = now_ns();
  char line[96];
  length = snprintf(line, sizeof line, "%lld %lld %s\n", start, end, slot ? slot : "-");
  int log = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log < 0 || write(log, line, (size_t)length) != length) {
    return 5;
  }
  close(log);
  return 0;
}
