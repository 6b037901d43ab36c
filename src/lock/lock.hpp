// The lock layer: what the executor needs from a lock backend. The local flock(2) backend
// (flock_backend.cpp) and the fleet backend (etcd/) sit behind this interface, so the command
// line, the plan and the executor do not change with the backend.
#pragma once

#include "duration.hpp"
#include "plan.hpp"

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loto {

using MonotonicTime = std::chrono::steady_clock::time_point;

// A lock that can be taken away while the command runs (a fleet lock's lease). The
// supervisor polls fd() with everything else it waits for and stops the job by the
// deadlines, which tighten as the lock's safety runs out.
class LeaseWatch {
public:
  virtual ~LeaseWatch() = default;
  // Readable when there is news about the lease; -1 when there will be none.
  virtual int fd() const = 0;
  // Reads the news; called when fd() is readable.
  virtual void on_readable() = 0;
  // By when every process of the job must have been sent SIGTERM, and SIGKILL. Both lie
  // before the moment another holder could get the lock; time_point::max() while safe.
  virtual MonotonicTime term_deadline() const = 0;
  virtual MonotonicTime kill_deadline() const = 0;
  // Why the lock is being lost, for the message; meaningful once a deadline is due.
  virtual std::string loss_reason() const = 0;
};

// A lock that is held until this object is destroyed.
class HeldLock {
public:
  virtual ~HeldLock() = default;
  HeldLock() = default;
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;

  // A descriptor the command may inherit so that the lock outlives loto, or -1 when the
  // backend cannot hand its lock to another process.
  virtual int inheritable_fd() const = 0;
  // What the supervisor must watch while the command runs, or nullptr.
  virtual LeaseWatch* lease() {
    return nullptr;
  }
  // NAME=VALUE entries for the command's environment, and key/value pairs for the audit
  // records (a fleet lock's fencing token and lease).
  virtual std::vector<std::string> environment() const {
    return {};
  }
  virtual std::vector<std::pair<std::string, std::string>> audit_fields() const {
    return {};
  }
};

// Who holds a lock, as far as the backend can tell.
struct LockHolder {
  pid_t pid = 0;
  std::string command; // empty when the process is gone or unreadable
  // Set instead by backends whose holder may be on another host, as one line:
  // "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh".
  std::string description;
  int waiting = 0; // how many wait behind the holder, where the backend knows
  int ahead = 0;   // this run's place in the queue (1: next), where there is a queue
};

// "pid 42: sleep 10", or the backend's own description, plus ", 2 waiting".
std::string describe_holder(const LockHolder& holder);

// One process that holds a lock or waits for it, for --list. Every field but the pid may
// be unknown (empty): the process may be gone, out of sight or on another host.
struct LockParty {
  pid_t pid = 0;           // 0 when unknown (not visible from here)
  std::string host;        // fleet locks: the host it runs on
  std::string user;        // its user's name, or the uid in decimal
  std::string command;     // its command line, as join_command() writes it
  std::string since;       // holders: since when (started or queued); waiters: waiting since;
                           // ISO 8601 UTC, such as "2026-11-30T06:00:00Z"
  std::string mode;        // "shared" or "exclusive", where the backend tells
  std::string description; // the backend's own one-line description, if it has one
  int slot = -1;           // holders of a lock with slots: which one
};

// Everything a backend can tell about one lock: all its holders (several for a shared
// lock) and its waiters in queue order.
struct LockState {
  std::vector<LockParty> holders;
  std::vector<LockParty> waiters; // in queue order (the order the backend lists them)
  // How many wait, where the backend can count them but not list them (waiters empty).
  int waiting = 0;
  bool waiters_listed = true; // false: only the count above is known
};

// "pid 42: sleep 10", the description, or "pid 42 (exited; ...)" when its command is gone.
std::string describe_party(const LockParty& party);
// The STATE column of --list: "free", "held by pid 42: sleep 10, 2 waiting",
// "held (shared) by pid 42: a; pid 43: b".
std::string describe_state(const LockState& state);

// The deadline and the interruption state shared by every lock of one run. Backends
// must call begin_blocking() before they block (or arm() before a wait that is not yet
// known to be one), and stop blocking once interrupt_signal() or deadline_passed() says so.
class WaitControl {
public:
  virtual ~WaitControl() = default;
  // Arms what will interrupt a blocking call at the deadline or on a signal.
  virtual void arm() = 0;
  // arm(), after telling the user that loto now waits for a busy lock.
  virtual void begin_blocking() = 0;
  // Called whenever a blocking call returned early (a signal, the timer): runs what is
  // due meanwhile, such as redrawing the live waiting line.
  virtual void tick() = 0;
  // The signal that asked loto to stop waiting, or 0.
  virtual int interrupt_signal() const = 0;
  virtual bool deadline_passed() const = 0;
  // Whether waiting is allowed at all (false for "try once").
  virtual bool may_wait() const = 0;
};

// unavailable: the lock service could not be reached or lost our place (fleet locks).
enum class AcquireStatus { acquired, busy, timed_out, interrupted, unavailable };

struct AcquireResult {
  AcquireStatus status = AcquireStatus::busy;
  std::unique_ptr<HeldLock> lock; // set when acquired
  std::string message;            // unavailable: what went wrong, one line
};

class LockBackend {
public:
  virtual ~LockBackend() = default;
  // Takes `target`, waiting as `wait` allows. Throws Error(cannot_create) when the lock
  // cannot be opened and Error(unsafe) when it is refused for safety.
  virtual AcquireResult acquire(const LockTarget& target, WaitControl& wait) = 0;
  // Best-effort report of the current holder, for messages and --list. A backend that
  // must ask a service may throw Error(unavailable) when it cannot.
  virtual std::optional<LockHolder> find_holder(const LockTarget& target) const = 0;
  // Every holder and waiter, for --list. May throw as find_holder() does. The default
  // tells what find_holder() knows: one holder and a count of waiters.
  virtual LockState inspect(const LockTarget& target) const;
};

std::unique_ptr<LockBackend> make_flock_backend();
// The etcd backend for the plan's cluster; `command` goes into the holder record.
std::unique_ptr<LockBackend> make_etcd_backend(const EtcdPlan& etcd,
                                               const std::vector<std::string>& command);
// --check-config --online: whether etcd answers for `target` with the plan's settings (TLS,
// authentication, a read of the lock's keys). exit_code 0 and what etcd said ("free at
// https://..."), or the code loto would exit with and why.
struct EtcdCheck {
  int exit_code = 0;
  std::string message;
};
EtcdCheck check_etcd_online(const EtcdPlan& etcd, const LockTarget& target);
// The backend for each target's kind: flock, or etcd (started only when a target needs it).
std::unique_ptr<LockBackend> make_lock_backend(const Plan& plan);

} // namespace loto
