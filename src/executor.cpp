#include "executor.hpp"

#include "error.hpp"
#include "text.hpp"

#include <chrono>
#include <memory>

namespace loto {

namespace {

using Clock = std::chrono::steady_clock;

std::string milliseconds_since(Clock::time_point start) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

std::string describe(const LockTarget& target) {
  if (target.name == target.path) {
    return "lock " + quoted(target.path);
  }
  return "resource " + quoted(target.name) + " (lock " + quoted(target.path) + ")";
}

std::string describe_holder(const std::optional<LockHolder>& holder) {
  if (!holder) {
    return "";
  }
  if (holder->command.empty()) {
    return ", held by pid " + std::to_string(holder->pid) +
           " (exited; a process it started holds the lock)";
  }
  return ", held by pid " + std::to_string(holder->pid) + ": " + holder->command;
}

// Reports a lock that was not taken and returns loto's exit status for it.
int report_not_acquired(const Plan& plan,
                        const LockTarget& target,
                        AcquireStatus status,
                        const WaitSession& session,
                        const LockBackend& backend,
                        Log& log) {
  const std::string elapsed_ms = std::to_string(session.elapsed().count());
  if (status == AcquireStatus::interrupted) {
    const int signal = session.interrupt_signal();
    log.notice("interrupted by " + signal_name(signal) + " while waiting for " + describe(target) +
               "; the command was not run");
    log.audit(Log::Severity::warning,
              "interrupted",
              {{"resource", target.name},
               {"lock", target.path},
               {"signal", signal_name(signal)},
               {"waited_ms", elapsed_ms}});
    return exit_code::signal_base + signal;
  }
  const auto holder = backend.find_holder(target);
  Fields fields{{"resource", target.name}, {"lock", target.path}, {"waited_ms", elapsed_ms}};
  if (holder) {
    fields.emplace_back("holder_pid", std::to_string(holder->pid));
  }
  if (status == AcquireStatus::timed_out) {
    log.notice("timed out after " + format_duration(plan.wait_limit.value_or(Duration::zero())) +
               " waiting for " + describe(target) + describe_holder(holder) +
               "; the command was not run");
    log.audit(Log::Severity::warning, "timeout", fields);
  } else {
    log.notice(describe(target) + " is busy" + describe_holder(holder) +
               "; the command was not run (use -w to wait, or -t to wait a while)");
    log.audit(Log::Severity::warning, "busy", fields);
  }
  return plan.conflict_exit_code;
}

void debug_plan(const Plan& plan, Log& log) {
  log.debug("configuration: " +
            (plan.config_files.empty() ? "built-in defaults" : plan.config_files));
  log.debug("policy: " + describe_wait(plan.wait_limit) + "; conflict exit code " +
            std::to_string(plan.conflict_exit_code) +
            "; lock passed to the command: " + (plan.inherit_lock ? "yes" : "no"));
}

} // namespace

int execute(const Plan& plan, LockBackend& backend, Log& log, const SignalBaseline& baseline) {
  if (log.shows_debug()) {
    debug_plan(plan, log);
  }
  std::vector<std::unique_ptr<HeldLock>> held;
  std::chrono::milliseconds waited{};
  {
    WaitSession session(plan.wait_limit, baseline);
    for (const auto& target : plan.locks) {
      if (log.shows_progress()) {
        session.on_wait_start([&] {
          log.progress("waiting for " + describe(target) +
                       describe_holder(backend.find_holder(target)));
        });
      }
      if (log.shows_debug()) {
        log.debug("locking " + describe(target));
      }
      AcquireResult result = backend.acquire(target, session);
      if (result.status != AcquireStatus::acquired) {
        held.clear(); // release what was taken before reporting
        return report_not_acquired(plan, target, result.status, session, backend, log);
      }
      held.push_back(std::move(result.lock));
    }
    // From here on, stop signals wait in the queue for the supervisor to forward.
    block_supervised_signals(baseline);
    waited = session.elapsed();
    if (const int signal = session.interrupt_signal(); signal != 0) {
      held.clear();
      log.notice("interrupted by " + signal_name(signal) +
                 " while taking the lock; the command was not run");
      log.audit(Log::Severity::warning,
                "interrupted",
                {{"resource", plan.lock_names},
                 {"lock", plan.lock_paths},
                 {"signal", signal_name(signal)}});
      return exit_code::signal_base + signal;
    }
  }

  // With inherit_lock, the command's processes share the lock descriptors, so no process
  // of the job runs unlocked even if loto itself is killed.
  std::vector<int> inherit_fds;
  if (plan.inherit_lock) {
    for (const auto& lock : held) {
      if (lock->inheritable_fd() >= 0) {
        inherit_fds.push_back(lock->inheritable_fd());
      }
    }
  }
  const auto held_since = Clock::now();
  const CommandOutcome outcome =
      run_command(plan.command, plan.command_environment, inherit_fds, baseline, [&](pid_t pid) {
        // Reported once the command is on its way, so logging never delays the job.
        if (log.shows_progress()) {
          log.progress("acquired " +
                       (plan.locks.size() == 1 ? describe(plan.locks.front()) : plan.lock_names) +
                       " after " + std::to_string(waited.count()) + " ms");
          log.progress("started pid " + std::to_string(pid) + ": " + join_command(plan.command));
        }
        log.audit(Log::Severity::info,
                  "acquired",
                  {{"resource", plan.lock_names},
                   {"lock", plan.lock_paths},
                   {"waited_ms", std::to_string(waited.count())}});
      });
  // Release at once: the next job should not wait for loto's own bookkeeping.
  held.clear();

  const std::string held_ms = milliseconds_since(held_since);
  Fields fields{{"resource", plan.lock_names},
                {"lock", plan.lock_paths},
                {"status", std::to_string(outcome.exit_status)},
                {"held_ms", held_ms}};
  if (outcome.signal != 0) {
    fields.emplace_back("signal", signal_name(outcome.signal));
  }
  if (log.shows_progress()) {
    log.progress(outcome.signal != 0
                     ? "command killed by " + signal_name(outcome.signal) + " after " + held_ms +
                           " ms; exit status " + std::to_string(outcome.exit_status)
                     : "command exited with status " + std::to_string(outcome.exit_status) +
                           "; lock held for " + held_ms + " ms");
  }
  log.audit(Log::Severity::info, "finished", fields);
  return outcome.exit_status;
}

} // namespace loto
