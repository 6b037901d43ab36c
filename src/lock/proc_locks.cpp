#include "lock/proc_locks.hpp"

#include "identity.hpp"
#include "text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

namespace loto {

namespace {

// /proc/locks lists every lock of the host; more than this is not worth reading.
constexpr std::size_t k_max_proc_locks_size = std::size_t{64} << 20;
constexpr std::size_t k_max_proc_file_size = std::size_t{1} << 20;

// The next word of `text` (separated by spaces), removed from it; "" at the end.
std::string_view next_word(std::string_view& text) {
  const auto start = text.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  const auto end = std::min(text.find(' '), text.size());
  const std::string_view word = text.substr(0, end);
  text.remove_prefix(end);
  return word;
}

struct FileId {
  unsigned major = 0;
  unsigned minor = 0;
  unsigned long long inode = 0;
};

// "fe:00:10953004": major and minor in hex, the inode in decimal.
std::optional<FileId> parse_file_id(std::string_view text) {
  const auto first = text.find(':');
  const auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos) {
    return std::nullopt;
  }
  const auto major = parse_number<unsigned>(text.substr(0, first), 16);
  const auto minor = parse_number<unsigned>(text.substr(first + 1, second - first - 1), 16);
  const auto inode = parse_number<unsigned long long>(text.substr(second + 1));
  if (!major || !minor || !inode) {
    return std::nullopt;
  }
  return FileId{*major, *minor, *inode};
}

std::optional<std::string> read_file(const std::string& path, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  auto text = read_to_end(fd, 4096, limit);
  ::close(fd);
  if (text && text->size() > limit) {
    return std::nullopt;
  }
  return text;
}

// When the process started, by the wall clock: its start time after boot (clock ticks)
// set against CLOCK_BOOTTIME now, so the answer is as exact as a tick (/proc/stat's btime
// is whole seconds, and the wall clock may have been stepped since boot).
std::string start_time_of(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat", k_max_proc_file_size);
  const auto ticks = stat ? start_ticks_of_stat(*stat) : std::nullopt;
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  timespec boot{};
  if (!ticks || ticks_per_second <= 0 || ::clock_gettime(CLOCK_BOOTTIME, &boot) != 0) {
    return {};
  }
  using std::chrono::nanoseconds;
  const auto since_boot = std::chrono::seconds(boot.tv_sec) + nanoseconds(boot.tv_nsec);
  const auto started_after_boot =
      nanoseconds(static_cast<long long>(*ticks) *
                  (1'000'000'000LL / static_cast<long long>(ticks_per_second)));
  const auto ago = std::chrono::duration_cast<std::chrono::system_clock::duration>(
      since_boot - started_after_boot);
  return iso8601_utc_ms(std::chrono::system_clock::now() - ago);
}

LockParty party_of(const ProcLock& entry) {
  LockParty party;
  party.pid = entry.pid > 0 ? entry.pid : 0;
  party.mode = entry.shared ? "shared" : "exclusive";
  if (party.pid == 0) {
    return party;
  }
  struct stat st {};
  if (::stat(("/proc/" + std::to_string(party.pid)).c_str(), &st) != 0) {
    return party; // gone: a process it started holds the lock now
  }
  party.user = user_name(st.st_uid);
  party.command = command_line_of(party.pid);
  party.since = start_time_of(party.pid);
  return party;
}

} // namespace

std::vector<ProcLock>
flock_entries(std::string_view text, unsigned major, unsigned minor, unsigned long long inode) {
  // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
  // "1: -> FLOCK  ADVISORY  WRITE 1235 fe:00:5678 0 EOF" (a waiter; deeper: "1:  -> ")
  std::vector<ProcLock> entries;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);

    const std::string_view id = next_word(line);
    std::string_view type = next_word(line);
    ProcLock entry;
    if (type == "->") {
      entry.waiter = true;
      type = next_word(line);
    }
    next_word(line); // ADVISORY or MANDATORY
    const std::string_view mode = next_word(line);
    const auto pid = parse_number<pid_t>(next_word(line));
    const auto file = parse_file_id(next_word(line));
    if (!id.ends_with(':') || type != "FLOCK" || !pid || !file || file->major != major ||
        file->minor != minor || file->inode != inode) {
      continue;
    }
    entry.shared = mode == "READ";
    entry.pid = *pid;
    entries.push_back(entry);
  }
  return entries;
}

std::optional<unsigned long long> start_ticks_of_stat(std::string_view stat) {
  // "PID (COMM) STATE PPID ...": COMM may hold anything, so count from its last ')'.
  const auto paren = stat.rfind(')');
  if (paren == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = stat.substr(paren + 1);
  constexpr int k_fields_after_comm = 20; // field 22 is the 20th after field 2
  std::string_view word;
  for (int field = 0; field < k_fields_after_comm; ++field) {
    word = next_word(rest);
  }
  if (const auto newline = word.find('\n'); newline != std::string_view::npos) {
    word = word.substr(0, newline);
  }
  return parse_number<unsigned long long>(word);
}

std::string iso8601_utc_ms(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(time);
  const std::time_t seconds =
      std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(ms));
  std::tm utc{};
  if (::gmtime_r(&seconds, &utc) == nullptr) {
    return {};
  }
  std::array<char, 80> text{}; // room for any int the format could get
  const auto millis = (ms.time_since_epoch() % std::chrono::seconds(1)).count();
  (void)std::snprintf(text.data(),
                      text.size(),
                      "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      utc.tm_year + 1900,
                      utc.tm_mon + 1,
                      utc.tm_mday,
                      utc.tm_hour,
                      utc.tm_min,
                      utc.tm_sec,
                      static_cast<int>(millis));
  return text.data();
}

std::string read_proc_locks() {
  return read_file("/proc/locks", k_max_proc_locks_size).value_or("");
}

LockState inspect_flock_lock(const std::string& path, std::string_view proc_locks) {
  LockState state;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return state;
  }
  for (const auto& entry :
       flock_entries(proc_locks, major(st.st_dev), minor(st.st_dev), st.st_ino)) {
    (entry.waiter ? state.waiters : state.holders).push_back(party_of(entry));
  }
  return state;
}

} // namespace loto
