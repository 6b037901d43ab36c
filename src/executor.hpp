// The executor: takes the plan's locks, runs the command, returns loto's exit status.
#pragma once

#include "lock/lock.hpp"
#include "log.hpp"
#include "plan.hpp"
#include "process.hpp"

namespace loto {

// Reads nothing but the plan. Returns the command's status, the conflict exit code
// when a lock was not taken, or 128+N when signal N interrupted the wait.
// Throws Error for failures (lock file unsafe or unopenable, command not runnable).
int execute(const Plan& plan, LockBackend& backend, Log& log, const SignalBaseline& baseline);

} // namespace loto
