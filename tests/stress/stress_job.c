/* A stress-test job: records when it ran and whether it really held the lock.
 * Usage: stress_job LOCK_PATH LOG_PATH MAX_SLEEP_US
 * Appends "S <start_ns> <pid> <held>" at start and "E <end_ns> <pid>" at the end (also when
 * ended by SIGTERM). <held> is 1 when a fresh open of LOCK_PATH cannot be locked, that is
 * when this job's process group holds the lock. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void append(const char *kind, int held) {
  char line[96];
  int length = held >= 0 ? snprintf(line, sizeof line, "%s %lld %d %d\n", kind, now_ns(), (int)getpid(), held)
                         : snprintf(line, sizeof line, "%s %lld %d\n", kind, now_ns(), (int)getpid());
  if (write(log_fd, line, (size_t)length) != length) {
    _exit(5);
  }
}

static void on_term(int signal_number) {
  (void)signal_number;
  append("E", -1);
  _exit(143);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    return 2;
  }
  log_fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) {
    return 3;
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigfillset(&action.sa_mask);
  action.sa_handler = on_term;
  sigaction(SIGTERM, &action, NULL);
  int probe = open(argv[1], O_RDONLY | O_CLOEXEC);
  int held = probe >= 0 && flock(probe, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (probe >= 0) {
    close(probe);
  }
  append("S", held);
  srand((unsigned)getpid());
  long max_sleep = strtol(argv[3], NULL, 10);
  if (max_sleep > 0) {
    usleep((useconds_t)(rand() % max_sleep));
  }
  append("E", -1);
  return 0;
}
