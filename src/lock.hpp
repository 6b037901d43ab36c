// The lock layer: what the executor needs from a lock backend. The local flock(2)
// backend implements it today; a distributed one (etcd) can sit behind the same
// interface without touching the command line, the plan or the executor.
#pragma once

#include "duration.hpp"
#include "plan.hpp"

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace loto {

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
};

// Who holds a lock, as far as the backend can tell.
struct LockHolder {
  pid_t pid = 0;
  std::string command; // empty when the process is gone or unreadable
};

// The deadline and the interruption state shared by every lock of one run. Backends
// must call begin_blocking() before they block, and stop blocking once
// interrupt_signal() or deadline_passed() says so.
class WaitControl {
public:
  virtual ~WaitControl() = default;
  // Arms what will interrupt a blocking call at the deadline or on a signal.
  virtual void begin_blocking() = 0;
  // The signal that asked loto to stop waiting, or 0.
  virtual int interrupt_signal() const = 0;
  virtual bool deadline_passed() const = 0;
  // Whether waiting is allowed at all (false for "try once").
  virtual bool may_wait() const = 0;
};

enum class AcquireStatus { acquired, busy, timed_out, interrupted };

struct AcquireResult {
  AcquireStatus status = AcquireStatus::busy;
  std::unique_ptr<HeldLock> lock; // set when acquired
};

class LockBackend {
public:
  virtual ~LockBackend() = default;
  // Takes `target`, waiting as `wait` allows. Throws Error(cannot_create) when the lock
  // cannot be opened and Error(unsafe) when it is refused for safety.
  virtual AcquireResult acquire(const LockTarget& target, WaitControl& wait) = 0;
  // Best-effort report of the current holder, for messages and --list.
  virtual std::optional<LockHolder> find_holder(const LockTarget& target) const = 0;
};

std::unique_ptr<LockBackend> make_flock_backend();

} // namespace loto
