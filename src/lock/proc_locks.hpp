// What /proc tells about a local lock: every flock(2) holder and waiter of a file, from
// /proc/locks, and who each process is (user, command line, start time), for --list.
#pragma once

#include "lock/lock.hpp"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto {

// One FLOCK line of /proc/locks.
struct ProcLock {
  bool waiter = false; // a "->" line: blocked in flock(), waiting for the lock
  bool shared = false; // READ (LOCK_SH); otherwise WRITE (LOCK_EX)
  pid_t pid = 0;       // as /proc/locks shows it: <= 0 when not visible from here
};

// The FLOCK entries of the /proc/locks text `text` on the file with device major:minor
// and `inode`, in the order listed: holders have their own line each (several for a
// shared lock), waiters a "->" line (indented deeper the further back they queue).
// Lines of other lock types, other files or another shape are skipped.
std::vector<ProcLock>
flock_entries(std::string_view text, unsigned major, unsigned minor, unsigned long long inode);

// Field 22 of /proc/PID/stat (the start time, in clock ticks after boot), from the
// file's text; the command name in field 2 may hold spaces and parentheses.
std::optional<unsigned long long> start_ticks_of_stat(std::string_view stat);

// "2026-11-30T06:00:00.120Z": UTC, milliseconds.
std::string iso8601_utc_ms(std::chrono::system_clock::time_point time);

// The text of /proc/locks ("" if it cannot be read): read once for a whole listing.
std::string read_proc_locks();

// Every holder and waiter of the flock(2) lock on `path` (a lock file that may not
// exist: then nobody holds it) in `proc_locks`, the text of /proc/locks, each with its
// user, command line and start time.
LockState inspect_flock_lock(const std::string& path, std::string_view proc_locks);

} // namespace loto
