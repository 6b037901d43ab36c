// Process plumbing: standard descriptors, signal state, the wait session and the
// supervised command.
#pragma once

#include "duration.hpp"
#include "lock/lock.hpp"

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace loto {

// Opens /dev/null on any of fds 0-2 that is closed, so that no file loto opens later
// (the lock above all) becomes the command's stdin, stdout or stderr.
void ensure_standard_fds();

// The signal state loto was started with; the command gets it back.
struct SignalBaseline {
  sigset_t mask{};    // the inherited blocked set, restored in the command
  sigset_t ignored{}; // signals inherited as SIG_IGN (nohup, "cmd &"): left alone
};

// Records the inherited state. If SIGCHLD was ignored, resets it to the default so the
// command's status can be collected.
SignalBaseline capture_signal_baseline();

// "SIGTERM" for 15.
std::string signal_name(int signal);

// The wait for the locks of one run: one deadline for all of them, and SIGINT, SIGTERM
// and SIGHUP interrupting the blocking call. Blocking happens in the kernel; a
// CLOCK_MONOTONIC timer interrupts it at the deadline and keeps re-firing every few
// milliseconds, so a signal that lands just before the call is never lost. The handlers
// and the timer exist only from the first begin_blocking() on.
class WaitSession final : public WaitControl {
public:
  // `limit`: nullopt waits as long as it takes, zero never waits.
  WaitSession(std::optional<Duration> limit, const SignalBaseline& baseline);
  ~WaitSession() override;
  WaitSession(const WaitSession&) = delete;
  WaitSession& operator=(const WaitSession&) = delete;

  void arm() override;
  void begin_blocking() override;
  void tick() override;
  int interrupt_signal() const override;
  bool deadline_passed() const override;
  bool may_wait() const override;

  // Called once per lock when it turns out to be busy and loto starts to wait.
  void on_wait_start(std::function<void()> callback);
  // Called about once a second while loto waits (a second timer wakes the wait up); may be
  // set from the wait-start callback, which runs before that timer is made.
  void on_tick(std::function<void()> callback);
  std::chrono::milliseconds elapsed() const;

private:
  std::optional<Duration> m_limit;
  const SignalBaseline& m_baseline;
  std::chrono::steady_clock::time_point m_start;
  std::function<void()> m_on_wait_start;
  std::function<void()> m_on_tick;
  std::chrono::steady_clock::time_point m_next_tick;
  timer_t m_tick_timer{};
  bool m_tick_timer_created = false;
  std::vector<std::pair<int, struct sigaction>> m_saved_actions;
  bool m_timer_created = false;
};

// Blocks the signals loto forwards or waits for, ahead of starting the command.
void block_supervised_signals(const SignalBaseline& baseline);

// Why loto stopped the job before its main process was done, if it did.
enum class JobStop {
  none,
  lease_lost, // a lock that can be lost (a fleet lock's lease) was, or was about to be
  overrun,    // the job ran past its maximum runtime
  leftovers,  // the main process was done; what it left behind was stopped (leftovers: kill)
};

// What run_command() reports back.
struct CommandOutcome {
  int exit_status = 0; // the main process's status, or 128+N when it died of signal N
  int signal = 0;      // N when it died of a signal
  JobStop stop = JobStop::none;
  std::string stop_reason; // lease_lost: why the lease is being lost
  int job_signal = 0;      // the last signal sent to the whole job when loto stopped it
};

// A process of the job still running after the main process exited.
struct LeftoverProcess {
  pid_t pid = 0;
  std::string command;
};

// What the executor hears about while the job runs.
struct JobEvents {
  std::function<void(pid_t)> started;
  std::function<void()> overdue; // the job has run warn_after and runs on
  std::function<void(const std::vector<LeftoverProcess>&)> leftovers;
};

// The command and what it runs with.
struct CommandSpec {
  std::vector<std::string> argv;
  std::vector<std::string> environment;
  std::vector<int> inherit_fds; // left open for the command (the local locks)
  // Locks that can be lost while the command runs. With any, the command's main process
  // dies with loto (PR_SET_PDEATHSIG), and when a lease's deadline comes every process of
  // the job gets SIGTERM, then SIGKILL.
  std::vector<LeaseWatch*> leases;
  JobLimits limits;
};

// Starts the command (clone as vfork + execve, searching PATH as execvp does; the parent learns
// of exec failures directly) with the inherited signal mask, and runs the one event loop
// of the job: the command's exit, the signals to forward (SIGTERM, SIGHUP, SIGUSR1,
// SIGUSR2), the leases' news, their deadlines and the job's limits. SIGINT and SIGQUIT are
// consumed, not passed on: the terminal already sent them to the command. loto is the
// job's child subreaper, so "every process of the job" includes the orphans of its
// children; what the main process leaves behind is handled as spec.limits.leftovers says.
// block_supervised_signals() must have been called. Throws Error(127/126/71).
CommandOutcome
run_command(const CommandSpec& spec, const SignalBaseline& baseline, const JobEvents& events);

} // namespace loto
