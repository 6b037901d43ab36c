#include "executor.hpp"

#include "error.hpp"
#include "metrics.hpp"
#include "status_line.hpp"
#include "text.hpp"

#include <algorithm>
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
  if (target.kind == LockKind::etcd) {
    return "resource " + quoted(target.name) + " (etcd lock " + quoted(target.etcd_name) + ")";
  }
  if (target.name == target.path) {
    return "lock " + quoted(target.path);
  }
  return "resource " + quoted(target.name) + " (lock " + quoted(target.path) + ")";
}

std::string held_by(const std::optional<LockHolder>& holder) {
  return holder ? ", held by " + describe_holder(*holder) : "";
}

// The values of the held locks' `pairs` (environment entries or audit fields), one per
// name, with the values of several locks joined by commas in lock order.
std::vector<std::pair<std::string, std::string>>
combine(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<std::pair<std::string, std::string>> combined;
  for (const auto& pair : pairs) {
    const auto it = std::find_if(combined.begin(), combined.end(), [&](const auto& entry) {
      return entry.first == pair.first;
    });
    if (it == combined.end()) {
      combined.push_back(pair);
    } else {
      it->second += "," + pair.second;
    }
  }
  return combined;
}

Fields lock_fields(const std::vector<std::unique_ptr<HeldLock>>& held) {
  Fields fields;
  for (const auto& lock : held) {
    const auto more = lock->audit_fields();
    fields.insert(fields.end(), more.begin(), more.end());
  }
  return combine(fields);
}

std::vector<std::string> lock_environment(const std::vector<std::unique_ptr<HeldLock>>& held) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& lock : held) {
    for (const auto& entry : lock->environment()) {
      const auto equals = entry.find('=');
      entries.emplace_back(entry.substr(0, equals), entry.substr(equals + 1));
    }
  }
  std::vector<std::string> environment;
  for (const auto& [name, value] : combine(entries)) {
    environment.push_back(name + "=" + value);
  }
  return environment;
}

// Reports a lock that was not taken and returns loto's exit status for it.
int report_not_acquired(const Plan& plan,
                        const LockTarget& target,
                        AcquireStatus status,
                        const std::string& message,
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
  if (status == AcquireStatus::unavailable) {
    log.error(message + "; the command was not run",
              "unavailable",
              {{"resource", target.name}, {"lock", target.path}, {"waited_ms", elapsed_ms}});
    return exit_code::unavailable;
  }
  const auto holder = backend.find_holder(target);
  Fields fields{{"resource", target.name}, {"lock", target.path}, {"waited_ms", elapsed_ms}};
  if (holder && holder->pid > 0) {
    fields.emplace_back("holder_pid", std::to_string(holder->pid));
  }
  if (holder && !holder->description.empty()) {
    // A holder elsewhere (etcd): its pid means nothing here, its description says where.
    fields.emplace_back("holder", holder->description);
  }
  if (status == AcquireStatus::timed_out) {
    log.notice("timed out after " + format_duration(plan.wait_limit.value_or(Duration::zero())) +
               " waiting for " + describe(target) + held_by(holder) + "; the command was not run");
    log.audit(Log::Severity::warning, "timeout", fields);
  } else {
    log.notice(describe(target) + " is busy" + held_by(holder) +
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

// The live waiting line, times first so that a narrow terminal cuts the holder's command:
// "loto: waiting 12s (4m48s left), number 2 in line, for resource 'db' (etcd lock 'loto/db'),
// held by pid 42 on web1 (root) since ...: backup.sh".
std::string waiting_line(const std::string& waiting_for,
                         int queue_position,
                         std::chrono::milliseconds waited,
                         const std::optional<Duration>& limit) {
  std::string line =
      "loto: waiting " + format_seconds(std::chrono::duration_cast<std::chrono::seconds>(waited));
  if (limit) {
    line +=
        " (" + format_seconds(std::chrono::ceil<std::chrono::seconds>(*limit - waited)) + " left)";
  }
  if (queue_position > 0) {
    line += ", " + (queue_position == 1 ? std::string("next in line")
                                        : "number " + std::to_string(queue_position) + " in line");
  }
  return line + " for " + waiting_for;
}

double seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

double unix_now() {
  return seconds(std::chrono::system_clock::now().time_since_epoch());
}

// The outcome a lock that was not taken counts as in the metrics.
const char* outcome_of(AcquireStatus status) {
  switch (status) {
  case AcquireStatus::busy:
    return "busy";
  case AcquireStatus::timed_out:
    return "timeout";
  case AcquireStatus::interrupted:
    return "interrupted";
  default:
    return "error";
  }
}

// "pid 4242: tar czf ..., pid 4250: sleep 600", at most 10, for one record.
std::string describe_processes(const std::vector<LeftoverProcess>& processes) {
  std::vector<std::string> parts;
  for (const auto& process : processes) {
    if (parts.size() == 10) {
      parts.push_back("and " + std::to_string(processes.size() - 10) + " more");
      break;
    }
    parts.push_back("pid " + std::to_string(process.pid) + ": " +
                    (process.command.empty() ? "?" : process.command));
  }
  return join(parts, ", ");
}

std::string leftover_policy(LeftoverMode mode) {
  switch (mode) {
  case LeftoverMode::wait:
    return "loto holds the lock until they exit";
  case LeftoverMode::kill:
    return "loto stops them";
  case LeftoverMode::leave:
    break;
  }
  return "left running";
}

// Reports how the job ended and returns loto's exit status for it.
int report_finished(const Plan& plan,
                    const CommandOutcome& outcome,
                    Fields fields,
                    const std::string& held_ms,
                    Log& log) {
  if (outcome.stop == JobStop::lease_lost) {
    // The job was stopped because another host may get the lock: loto's own failure.
    fields.emplace_back("stopped_with", signal_name(outcome.job_signal));
    log.error(outcome.stop_reason + "; the command was stopped with " +
                  signal_name(outcome.job_signal) + " after " + held_ms + " ms (its status was " +
                  std::to_string(outcome.exit_status) + ")",
              "lost",
              fields);
    return exit_code::unavailable;
  }
  if (outcome.stop == JobStop::overrun) {
    fields.emplace_back("stopped_with", signal_name(outcome.job_signal));
    fields.emplace_back("max_runtime_ms",
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           plan.limits.max_runtime.value_or(Duration::zero()))
                                           .count()));
    log.error("the command ran past its maximum runtime of " +
                  format_duration(plan.limits.max_runtime.value_or(Duration::zero())) +
                  " and was stopped with " + signal_name(outcome.job_signal) + " (its status was " +
                  std::to_string(outcome.exit_status) + ")",
              "overrun",
              fields);
    return exit_code::overrun;
  }
  if (outcome.stop == JobStop::leftovers) {
    fields.emplace_back("leftovers_stopped_with", signal_name(outcome.job_signal));
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

// Runs the command under the held locks, reports, and releases them once the job is done.
int run_job(const Plan& plan,
            std::vector<std::unique_ptr<HeldLock>>& held,
            std::chrono::milliseconds waited,
            Log& log,
            const SignalBaseline& baseline,
            RunRecord& run) {
  // With inherit_lock, the command's processes share the lock descriptors, so no process
  // of the job runs unlocked even if loto itself is killed.
  CommandSpec spec{plan.command, plan.command_environment, {}, {}, plan.limits};
  for (const auto& lock : held) {
    if (plan.inherit_lock && lock->inheritable_fd() >= 0) {
      spec.inherit_fds.push_back(lock->inheritable_fd());
    }
    if (LeaseWatch* lease = lock->lease()) {
      spec.leases.push_back(lease);
    }
  }
  const auto extra_environment = lock_environment(held);
  spec.environment.insert(
      spec.environment.end(), extra_environment.begin(), extra_environment.end());
  const Fields held_fields = lock_fields(held);
  Fields base_fields{{"resource", plan.lock_names}, {"lock", plan.lock_paths}};
  if (plan.shared) {
    base_fields.emplace_back("mode", "shared");
  }

  const auto held_since = Clock::now();
  pid_t job_pid = 0;
  JobEvents events;
  events.started = [&](pid_t pid) {
    job_pid = pid;
    run.started_at = unix_now();
    // Reported once the command is on its way, so logging never delays the job.
    if (log.shows_progress()) {
      log.progress("acquired " +
                   (plan.locks.size() == 1 ? describe(plan.locks.front()) : plan.lock_names) +
                   " after " + std::to_string(waited.count()) + " ms");
      log.progress("started pid " + std::to_string(pid) + ": " + join_command(plan.command));
    }
    Fields fields = base_fields;
    fields.emplace_back("waited_ms", std::to_string(waited.count()));
    fields.insert(fields.end(), held_fields.begin(), held_fields.end());
    log.audit(Log::Severity::info, "acquired", fields);
  };
  events.overdue = [&] {
    const std::string after = format_duration(plan.limits.warn_after.value_or(Duration::zero()));
    if (log.shows_progress()) {
      log.progress("the command has held the lock for over " + after + " and runs on");
    }
    Fields fields = base_fields;
    fields.emplace_back("pid", std::to_string(job_pid));
    fields.emplace_back("held_ms", milliseconds_since(held_since));
    fields.emplace_back("warn_after", after);
    log.audit(Log::Severity::warning, "overdue", fields);
  };
  events.leftovers = [&](const std::vector<LeftoverProcess>& processes) {
    const std::string listed = describe_processes(processes);
    if (log.shows_progress()) {
      log.progress("the command exited and left " + std::to_string(processes.size()) +
                   " process(es) running (" + leftover_policy(plan.limits.leftovers) +
                   "): " + listed);
    }
    Fields fields = base_fields;
    std::vector<std::string> pids;
    for (const auto& process : processes) {
      pids.push_back(std::to_string(process.pid));
    }
    fields.emplace_back("pids", join(pids, ","));
    fields.emplace_back("processes", listed);
    fields.emplace_back("leftovers", leftover_mode_name(plan.limits.leftovers));
    log.audit(Log::Severity::warning, "leftover", fields);
  };
  const CommandOutcome outcome = run_command(spec, baseline, events);
  // Release at once: the next job should not wait for loto's own bookkeeping.
  held.clear();
  run.held_seconds = seconds(Clock::now() - held_since);
  run.outcome = outcome.stop == JobStop::lease_lost ? "lost"
                : outcome.stop == JobStop::overrun  ? "overrun"
                                                    : "ran";
  if (run.outcome == "ran" && outcome.exit_status == 0) {
    run.succeeded_at = unix_now();
  }

  const std::string held_ms = milliseconds_since(held_since);
  Fields fields = base_fields;
  fields.emplace_back("status", std::to_string(outcome.exit_status));
  fields.emplace_back("held_ms", held_ms);
  fields.insert(fields.end(), held_fields.begin(), held_fields.end());
  if (outcome.signal != 0) {
    fields.emplace_back("signal", signal_name(outcome.signal));
  }
  return report_finished(plan, outcome, std::move(fields), held_ms, log);
}

// Takes the locks, runs the command and reports; `run` gets what the metrics count.
int run_under_locks(const Plan& plan,
                    LockBackend& backend,
                    Log& log,
                    const SignalBaseline& baseline,
                    RunRecord& run) {
  std::vector<std::unique_ptr<HeldLock>> held;
  std::chrono::milliseconds waited{};
  {
    WaitSession session(plan.wait_limit, baseline);
    StatusLine status(plan.log.live_status);
    const LockTarget* waiting_target = nullptr; // the lock loto waits for
    // The holder is looked up on every redraw: it changes as other waiters get their turn,
    // and so does this run's place in a queue.
    const auto draw = [&] {
      const auto holder = backend.find_holder(*waiting_target);
      status.show(waiting_line(describe(*waiting_target) + held_by(holder),
                               holder ? holder->ahead : 0,
                               session.elapsed(),
                               plan.wait_limit));
    };
    for (const auto& target : plan.locks) {
      if (log.shows_progress() || plan.log.live_status) {
        session.on_wait_start([&] {
          waiting_target = &target;
          if (log.shows_progress()) {
            log.progress("waiting for " + describe(target) + held_by(backend.find_holder(target)));
          }
          // Known only now whether stderr is a terminal; without one, no timer either.
          if (status.enabled()) {
            session.on_tick(draw);
            draw();
          }
        });
      }
      if (log.shows_debug()) {
        log.debug("locking " + describe(target));
      }
      AcquireResult result = backend.acquire(target, session);
      status.clear(); // before any message or the command's output
      if (result.status != AcquireStatus::acquired) {
        held.clear(); // release what was taken before reporting
        run.outcome = outcome_of(result.status);
        run.waited_seconds = seconds(session.elapsed());
        return report_not_acquired(
            plan, target, result.status, result.message, session, backend, log);
      }
      held.push_back(std::move(result.lock));
    }
    // From here on, stop signals wait in the queue for the supervisor to forward.
    block_supervised_signals(baseline);
    waited = session.elapsed();
    run.waited_seconds = seconds(waited);
    if (const int signal = session.interrupt_signal(); signal != 0) {
      held.clear();
      run.outcome = "interrupted";
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

  return run_job(plan, held, waited, log, baseline, run);
}

} // namespace

int execute(const Plan& plan, LockBackend& backend, Log& log, const SignalBaseline& baseline) {
  if (log.shows_debug()) {
    debug_plan(plan, log);
  }
  RunRecord run;
  for (const auto& lock : plan.locks) {
    run.resources.push_back(lock.name);
  }
  const auto record = [&] {
    if (plan.metrics_dir.empty()) {
      return;
    }
    // The job's outcome stands whatever happens here: a warning record at most.
    if (const auto problem = record_run(plan.metrics_dir, run)) {
      if (log.shows_progress()) {
        log.progress("metrics not written: " + *problem);
      }
      log.audit(Log::Severity::warning,
                "metrics_failed",
                {{"resource", plan.lock_names}, {"message", *problem}});
    }
  };
  try {
    run.exit_status = run_under_locks(plan, backend, log, baseline, run);
  } catch (const Error& error) {
    run.outcome = "error";
    run.exit_status = error.exit_code();
    record();
    throw;
  }
  record();
  return run.exit_status;
}

} // namespace loto
