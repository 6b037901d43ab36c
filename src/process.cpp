#include "process.hpp"

#include "error.hpp"
#include "identity.hpp"
#include "text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>

namespace loto {

namespace {

// Handler state. loto is single-threaded, so these are only touched by the main flow
// and by the handlers that interrupt it.
volatile sig_atomic_t g_interrupt_signal = 0;
volatile sig_atomic_t g_timer_ready = 0;
timer_t g_timer{};

constexpr long k_refire_ns = 10'000'000; // 10 ms: re-fire period after the deadline
constexpr std::array<int, 3> k_stop_signals{SIGINT, SIGTERM, SIGHUP};
constexpr std::array<int, 7> k_supervised_signals{
    SIGCHLD, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGINT, SIGQUIT};

extern "C" void on_stop_signal(int signal) {
  g_interrupt_signal = signal;
  if (g_timer_ready != 0) {
    // Interrupt flock() even if this signal landed just before the call: fire in 1 ms
    // and keep firing. timer_settime is async-signal-safe.
    const itimerspec soon{{0, k_refire_ns}, {0, 1'000'000}};
    ::timer_settime(g_timer, 0, &soon, nullptr);
  }
}

extern "C" void on_alarm(int /*signal*/) {
  // Only here to make the blocking flock() return EINTR.
}

[[noreturn]] void os_failure(const std::string& what) {
  throw Error(exit_code::os_error, what + ": " + std::strerror(errno));
}

bool is_ignored(const SignalBaseline& baseline, int signal) {
  return sigismember(&baseline.ignored, signal) == 1;
}

// The paths execvp() would try for `program`: itself if it holds a '/', else each PATH
// entry in turn ("/bin:/usr/bin" when PATH is unset; an empty entry is the current
// directory). Built before the child exists, which may not allocate.
std::vector<std::string> executable_candidates(const std::string& program,
                                               const std::vector<std::string>& environment) {
  if (program.empty()) {
    return {}; // nothing to run: reported as not found
  }
  if (program.find('/') != std::string::npos) {
    return {program};
  }
  std::string_view search = "/bin:/usr/bin";
  for (const auto& entry : environment) {
    if (entry.starts_with("PATH=")) {
      search = std::string_view(entry).substr(5);
      break;
    }
  }
  std::vector<std::string> candidates;
  for (;;) {
    const auto colon = search.find(':');
    const std::string_view dir = search.substr(0, colon);
    candidates.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + program);
    if (colon == std::string_view::npos) {
      return candidates;
    }
    search.remove_prefix(colon + 1);
  }
}

// In the child: execve each candidate as execvp() does, moving on past entries
// where the file is missing or not permitted, but never handing a file that is not an
// executable to /bin/sh (as posix_spawnp, unlike execvp). Returns the errno to report.
int exec_first(const std::vector<const char*>& candidates, char* const* argv, char* const* envp) {
  bool denied = false;
  int error = ENOENT;
  for (const char* path : candidates) {
    ::execve(path, argv, envp);
    error = errno;
    if (error == EACCES) {
      denied = true;
    } else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ENODEV &&
               error != ETIMEDOUT) {
      return error;
    }
  }
  return denied ? EACCES : error;
}

// What the child of run_command() needs, prepared before it exists (it may not allocate).
struct ChildStart {
  const std::vector<const char*>* candidates;
  char* const* argv;
  char* const* envp;
  const sigset_t* mask;
  pid_t die_with; // loto's pid when the command must die with loto, else 0
  int exec_error; // set by the child when no execve succeeded
};

// The child's stack: execve needs little, and only the pages it touches are mapped.
alignas(16) std::array<char, 32768> g_child_stack;

// The child: the signal mask loto inherited, then the command. Returning ends the child
// (clone's wrapper makes the exit system call: no atexit handlers, no flushing).
extern "C" int start_command(void* arg) {
  auto* start = static_cast<ChildStart*>(arg);
  if (start->die_with != 0) {
    // A lock that only loto keeps alive: the command must not outlive it. If loto died
    // before the prctl, the parent is already someone else.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != start->die_with) {
      start->exec_error = ESRCH;
      return exit_code::os_error;
    }
  }
  ::sigprocmask(SIG_SETMASK, start->mask, nullptr);
  start->exec_error = exec_first(*start->candidates, start->argv, start->envp);
  return exit_code::not_found;
}

// A CLOCK_MONOTONIC timer that raises SIGALRM, which interrupts a blocking wait.
timer_t alarm_timer(const char* failure) {
  sigevent event{};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGALRM;
  timer_t timer{};
  if (::timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) {
    os_failure(failure);
  }
  return timer;
}

timespec to_timespec(std::chrono::steady_clock::time_point point) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(point.time_since_epoch()).count();
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// The children of `pid`, from every thread's /proc children list.
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> children;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(task_dir.c_str());
  if (dir == nullptr) {
    return children;
  }
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    const std::string path = task_dir + "/" + entry->d_name + "/children";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    const auto text = read_to_end(fd, 256, std::size_t{1} << 20);
    ::close(fd);
    if (!text) {
      continue;
    }
    std::size_t at = 0;
    while (at < text->size()) {
      const auto end = text->find(' ', at);
      const std::string word = text->substr(at, end - at);
      if (!word.empty()) {
        children.push_back(static_cast<pid_t>(std::stol(word)));
      }
      at = end == std::string::npos ? text->size() : end + 1;
    }
  }
  ::closedir(dir);
  return children;
}

// Sends `signal` to every process of the job that is not in `signalled` yet, and adds it
// there: loto's descendants, which include the job's orphans because loto is their
// subreaper. A process that forks while this runs is caught by the next pass (or the next
// call: the supervisor calls again on every turn of its loop).
void signal_job(int signal, std::set<pid_t>& signalled) {
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<pid_t> pending = children_of(::getpid());
    bool found_new = false;
    while (!pending.empty()) {
      const pid_t pid = pending.back();
      pending.pop_back();
      if (signalled.insert(pid).second) {
        found_new = true;
        ::kill(pid, signal);
      }
      const auto grandchildren = children_of(pid);
      pending.insert(pending.end(), grandchildren.begin(), grandchildren.end());
    }
    if (!found_new) {
      return;
    }
  }
}

// Whether any process of the job is left: loto's children, zombies included (one system
// call; loto's only children are the job's, and its orphans once loto is their subreaper).
bool job_remains() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// Every process of the job still there, with its command line, for the `leftover` record.
std::vector<LeftoverProcess> list_job() {
  std::vector<LeftoverProcess> found;
  std::vector<pid_t> pending = children_of(::getpid());
  std::set<pid_t> seen;
  while (!pending.empty() && found.size() < 1000) {
    const pid_t pid = pending.back();
    pending.pop_back();
    if (!seen.insert(pid).second) {
      continue;
    }
    found.push_back({pid, command_line_of(pid)});
    const auto grandchildren = children_of(pid);
    pending.insert(pending.end(), grandchildren.begin(), grandchildren.end());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  return found;
}

} // namespace

void ensure_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      // open() returns the lowest free descriptor: this one.
      if (::open("/dev/null", O_RDWR | O_NOCTTY) != fd) {
        ::_exit(exit_code::os_error);
      }
    }
  }
}

SignalBaseline capture_signal_baseline() {
  SignalBaseline baseline;
  ::sigprocmask(SIG_SETMASK, nullptr, &baseline.mask);
  sigemptyset(&baseline.ignored);
  // Only the signals loto handles or forwards matter; others pass to the command as is.
  for (const int signal : k_supervised_signals) {
    struct sigaction action {};
    if (::sigaction(signal, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) {
      sigaddset(&baseline.ignored, signal);
    }
  }
  if (is_ignored(baseline, SIGCHLD)) {
    // With SIGCHLD ignored the kernel reaps the command itself and its status is lost.
    // The command inherits the default too, which is what nearly every program expects.
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    ::sigaction(SIGCHLD, &action, nullptr);
    sigdelset(&baseline.ignored, SIGCHLD);
  }
  return baseline;
}

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation != nullptr ? std::string("SIG") + abbreviation
                                 : "signal " + std::to_string(signal);
}

WaitSession::WaitSession(std::optional<Duration> limit, const SignalBaseline& baseline)
    : m_limit(limit), m_baseline(baseline), m_start(std::chrono::steady_clock::now()) {
  g_interrupt_signal = 0;
}

WaitSession::~WaitSession() {
  if (m_tick_timer_created) {
    ::timer_delete(m_tick_timer);
  }
  if (m_timer_created) {
    g_timer_ready = 0;
    ::timer_delete(g_timer);
  }
  for (const auto& [signal, old] : m_saved_actions) {
    ::sigaction(signal, &old, nullptr);
  }
}

void WaitSession::begin_blocking() {
  // The handlers first: once "waiting for" is out, a SIGTERM must end in an interrupted
  // record and 143, never in the default action (a signal sent during the callback is
  // seen by the wait loop's first check).
  arm();
  if (m_on_wait_start) {
    m_on_wait_start();
  }
  if (m_on_tick && !m_tick_timer_created) {
    // Wakes the blocking call up once a second (SIGALRM, like the deadline), so that
    // tick() runs; no busy loop in between.
    m_tick_timer = alarm_timer("cannot create the status timer");
    m_tick_timer_created = true;
    const itimerspec every_second{{1, 0}, {1, 0}};
    ::timer_settime(m_tick_timer, 0, &every_second, nullptr);
    m_next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  }
}

void WaitSession::tick() {
  const auto now = std::chrono::steady_clock::now();
  if (m_on_tick && m_tick_timer_created && now >= m_next_tick) {
    m_next_tick = now + std::chrono::milliseconds(900); // the next timer signal, or so
    m_on_tick();
  }
}

void WaitSession::on_tick(std::function<void()> callback) {
  m_on_tick = std::move(callback);
}

void WaitSession::arm() {
  if (m_timer_created) {
    return;
  }
  // The handlers and the timer are set up only now, when loto is about to block: a lock
  // taken at once (the usual case) costs no signal system calls. Until here SIGINT,
  // SIGTERM and SIGHUP keep their default action, which ends loto before anything ran.
  sigset_t unblock;
  sigemptyset(&unblock);
  struct sigaction action {};
  sigfillset(&action.sa_mask);
  action.sa_flags = 0; // no SA_RESTART: the signal must end the blocking flock()
  const auto install = [&](int signal, void (*handler)(int)) {
    struct sigaction old {};
    action.sa_handler = handler;
    if (::sigaction(signal, &action, &old) == 0) {
      m_saved_actions.emplace_back(signal, old);
    }
    sigaddset(&unblock, signal);
  };
  for (const int signal : k_stop_signals) {
    if (!is_ignored(m_baseline, signal)) {
      install(signal, on_stop_signal);
    }
  }
  install(SIGALRM, on_alarm);
  // An inherited blocked SIGALRM would make the deadline never fire.
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);

  g_timer = alarm_timer("cannot create the wait timer");
  m_timer_created = true;
  // No deadline to fire at without a wait (a fleet lock is tried once, but its requests
  // still take a moment that a signal may interrupt): the timer only re-fires after one.
  if (may_wait() && m_limit) {
    // steady_clock is CLOCK_MONOTONIC, so the deadline is absolute on the same clock.
    const itimerspec at_deadline{{0, k_refire_ns}, to_timespec(m_start + *m_limit)};
    if (::timer_settime(g_timer, TIMER_ABSTIME, &at_deadline, nullptr) != 0) {
      os_failure("cannot arm the wait timer");
    }
  }
  g_timer_ready = 1;
}

int WaitSession::interrupt_signal() const {
  return g_interrupt_signal;
}

bool WaitSession::deadline_passed() const {
  return m_limit && std::chrono::steady_clock::now() >= m_start + *m_limit;
}

bool WaitSession::may_wait() const {
  return !m_limit || *m_limit > Duration::zero();
}

void WaitSession::on_wait_start(std::function<void()> callback) {
  m_on_wait_start = std::move(callback);
}

std::chrono::milliseconds WaitSession::elapsed() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               m_start);
}

void block_supervised_signals(const SignalBaseline& baseline) {
  sigset_t set;
  sigemptyset(&set);
  for (const int signal : k_supervised_signals) {
    if (!is_ignored(baseline, signal)) {
      sigaddset(&set, signal);
    }
  }
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

namespace {

// One reason to stop the job: SIGTERM to every process of it from `term` on, SIGKILL
// from `kill` on (time_point::max() while not due).
struct StopRule {
  MonotonicTime term;
  MonotonicTime kill;
  JobStop kind;
  const LeaseWatch* lease; // lease_lost: whose loss_reason() to report
};

// The rules in force now: the leases' deadlines, the maximum runtime, and the stop of the
// leftovers once the main process is done (`leftovers_from`, with leftovers: kill).
std::vector<StopRule> stop_rules(const CommandSpec& spec,
                                 MonotonicTime started,
                                 const std::optional<MonotonicTime>& leftovers_from) {
  std::vector<StopRule> rules;
  for (const LeaseWatch* lease : spec.leases) {
    rules.push_back({lease->term_deadline(), lease->kill_deadline(), JobStop::lease_lost, lease});
  }
  if (spec.limits.max_runtime) {
    const MonotonicTime due = started + *spec.limits.max_runtime;
    rules.push_back({due, due + spec.limits.kill_after, JobStop::overrun, nullptr});
  }
  if (leftovers_from) {
    rules.push_back(
        {*leftovers_from, *leftovers_from + spec.limits.kill_after, JobStop::leftovers, nullptr});
  }
  return rules;
}

// Where the job stands against the rules that stop it.
struct StopState {
  JobStop stop = JobStop::none; // the first rule that came due
  std::string reason;
  int job_signal = 0; // SIGTERM, then SIGKILL, once sent
  MonotonicTime killed_at{};
  std::set<pid_t> terminated; // the processes that have had their SIGTERM

  bool stopping() const {
    return job_signal != 0;
  }

  // The next deadline still to act on, or nullopt.
  std::optional<MonotonicTime> next_deadline(const std::vector<StopRule>& rules) const {
    std::optional<MonotonicTime> next;
    for (const StopRule& rule : rules) {
      const MonotonicTime due = job_signal == 0 ? rule.term : rule.kill;
      if (job_signal != SIGKILL && due != MonotonicTime::max() && (!next || due < *next)) {
        next = due;
      }
    }
    return next;
  }

  // Sends what is due by now: SIGTERM from the first term deadline on (to each process
  // once, including those that turn up later), SIGKILL from the first kill deadline on
  // (on every call, for processes forked meanwhile).
  void act(const std::vector<StopRule>& rules) {
    const MonotonicTime now = std::chrono::steady_clock::now();
    for (const StopRule& rule : rules) {
      if (rule.kill <= now && job_signal != SIGKILL) {
        note(rule);
        job_signal = SIGKILL;
        killed_at = now;
      } else if (rule.term <= now && job_signal == 0) {
        note(rule);
        job_signal = SIGTERM;
      }
    }
    if (job_signal == SIGKILL) {
      std::set<pid_t> killed;
      signal_job(SIGKILL, killed);
    } else if (job_signal == SIGTERM) {
      signal_job(SIGTERM, terminated);
    }
  }

  void note(const StopRule& rule) {
    if (stop == JobStop::none) {
      stop = rule.kind;
      reason = rule.lease != nullptr ? rule.lease->loss_reason() : "";
    }
  }
};

// After SIGKILL, how long loto waits for the job's processes to be gone (a process in
// uninterruptible sleep dies only when its I/O ends) before it reports and exits anyway.
constexpr auto k_kill_wait = std::chrono::seconds(1);

// Milliseconds from now until `when`, rounded up, for poll(); -1 when there is no deadline.
int poll_timeout(const std::optional<MonotonicTime>& when) {
  if (!when) {
    return -1;
  }
  const auto left = *when - std::chrono::steady_clock::now();
  if (left <= Duration::zero()) {
    return 0;
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

} // namespace

namespace {

[[noreturn]] void report_exec_failure(const std::string& program, int error) {
  const std::string name = quoted(program);
  if (error == EAGAIN || error == ENOMEM || error == ESRCH) {
    throw Error(exit_code::os_error, "cannot start " + name + ": " + std::strerror(error));
  }
  if (error == ENOENT || error == ENOTDIR) {
    struct stat st {};
    if (program.find('/') == std::string::npos) {
      throw Error(exit_code::not_found, "command not found: " + name + " (check PATH)");
    }
    if (::stat(program.c_str(), &st) == 0) {
      throw Error(exit_code::not_found,
                  "cannot execute " + name + ": its interpreter (#! line) was not found");
    }
    throw Error(exit_code::not_found, "cannot execute " + name + ": " + std::strerror(error));
  }
  throw Error(exit_code::not_executable, "cannot execute " + name + ": " + std::strerror(error));
}

// Starts the command and returns its pid once it has called execve. With `die_with_loto`,
// the kernel kills it when loto dies.
pid_t start_job(const CommandSpec& spec, const SignalBaseline& baseline, bool die_with_loto) {
  const std::vector<std::string>& argv = spec.argv;
  // Everything the child needs is prepared before it exists.
  std::vector<char*> child_argv;
  for (const auto& word : argv) {
    child_argv.push_back(const_cast<char*>(word.c_str()));
  }
  child_argv.push_back(nullptr);
  std::vector<char*> child_env;
  for (const auto& entry : spec.environment) {
    child_env.push_back(const_cast<char*>(entry.c_str()));
  }
  child_env.push_back(nullptr);

  const std::vector<std::string> candidates = executable_candidates(argv[0], spec.environment);
  std::vector<const char*> candidate_paths;
  for (const auto& path : candidates) {
    candidate_paths.push_back(path.c_str());
  }

  // loto is single-threaded, so clearing close-on-exec here cannot leak the lock into
  // anything but this command.
  for (const int fd : spec.inherit_fds) {
    if (::fcntl(fd, F_SETFD, 0) != 0) {
      os_failure("cannot pass the lock to the command");
    }
  }
  // The child shares loto's memory (CLONE_VM) on a stack of its own, and loto is
  // suspended until it has called execve (CLONE_VFORK): glibc's posix_spawn does the
  // same, but also resets every signal's handler there, two system calls per signal.
  // loto has no handler installed at this point (the wait is over), and execve resets
  // any other. A failed execve is reported through `start`, in the shared memory.
  ChildStart start{&candidate_paths,
                   child_argv.data(),
                   child_env.data(),
                   &baseline.mask,
                   die_with_loto ? ::getpid() : 0,
                   0};
  const pid_t pid = ::clone(start_command,
                            g_child_stack.data() + g_child_stack.size(),
                            CLONE_VM | CLONE_VFORK | SIGCHLD,
                            &start);
  const int error = pid < 0 ? errno : start.exec_error;
  for (const int fd : spec.inherit_fds) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (error != 0 && pid > 0) {
    // The child has exited without running the command; collect it.
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (error != 0) {
    report_exec_failure(argv[0], error);
  }
  return pid;
}

// The signals the supervisor reads, as a descriptor: they wait in the queue (blocked
// since block_supervised_signals()) until the loop reads them, with everything else.
class SignalQueue {
public:
  explicit SignalQueue(const SignalBaseline& baseline) {
    sigset_t waited;
    sigemptyset(&waited);
    for (const int signal : k_supervised_signals) {
      if (!is_ignored(baseline, signal)) {
        sigaddset(&waited, signal);
      }
    }
    m_fd = ::signalfd(-1, &waited, SFD_CLOEXEC);
    if (m_fd < 0) {
      os_failure("cannot watch signals");
    }
  }
  ~SignalQueue() {
    ::close(m_fd);
  }
  SignalQueue(const SignalQueue&) = delete;
  SignalQueue& operator=(const SignalQueue&) = delete;

  int fd() const {
    return m_fd;
  }
  // The next queued signal, or 0 if none is there after all.
  int take() const {
    signalfd_siginfo info{};
    if (::read(m_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) {
      return 0;
    }
    return static_cast<int>(info.ssi_signo);
  }

private:
  int m_fd = -1;
};

// Collects the exited children: the command's status once it is among them, and the
// orphans loto adopted as their subreaper. Returns false once loto has no child left (and
// so no process of the job: its orphans would be loto's children).
bool reap_children(pid_t command, std::optional<CommandOutcome>& finished) {
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(-1, &status, WNOHANG);
    if (reaped < 0 && errno == EINTR) {
      continue;
    }
    if (reaped <= 0) {
      return !(reaped < 0 && errno == ECHILD);
    }
    if (reaped == command) {
      finished = WIFSIGNALED(status) ? CommandOutcome{exit_code::signal_base + WTERMSIG(status),
                                                      WTERMSIG(status),
                                                      JobStop::none,
                                                      "",
                                                      0}
                                     : CommandOutcome{WEXITSTATUS(status), 0, JobStop::none, "", 0};
    }
  }
}

// The one loop of the job: the command's exit and the signals to forward (a signalfd),
// the leases' news (their descriptors), and every deadline (the poll timeout): the
// leases', the maximum runtime, the overdue warning and the leftovers' stop. Once loto has
// begun to stop the job, or waits for its leftovers, the loop ends only when every process
// of the job is gone, not just the command's main process.
class Supervisor {
public:
  Supervisor(pid_t pid, const CommandSpec& spec, const JobEvents& events)
      : m_pid(pid), m_spec(spec), m_events(events), m_started(std::chrono::steady_clock::now()) {
    if (spec.limits.warn_after) {
      m_warn_at = m_started + *spec.limits.warn_after;
    }
  }

  CommandOutcome run(const SignalQueue& signals) {
    std::vector<pollfd> fds;
    for (;;) {
      const std::vector<StopRule> rules = stop_rules(m_spec, m_started, m_leftovers_from);
      m_state.act(rules);
      warn_if_overdue();
      if (m_finished) {
        const bool had_leftover_rule = m_leftovers_from.has_value();
        if (done()) {
          m_finished->stop = m_state.stop;
          m_finished->stop_reason = m_state.reason;
          m_finished->job_signal = m_state.job_signal;
          return *m_finished;
        }
        if (m_leftovers_from.has_value() != had_leftover_rule) {
          continue; // leftovers: kill has just begun; act on its rule first
        }
      }
      fds.assign(1, pollfd{signals.fd(), POLLIN, 0});
      for (const LeaseWatch* lease : m_spec.leases) {
        fds.push_back(pollfd{lease->fd(), POLLIN, 0}); // poll() skips a negative fd
      }
      if (::poll(fds.data(), fds.size(), timeout(rules)) < 0) {
        if (errno == EINTR) {
          continue;
        }
        os_failure("cannot wait for the command");
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
          m_spec.leases[i - 1]->on_readable();
        }
      }
      on_signal(fds[0].revents != 0 ? signals.take() : 0);
    }
  }

private:
  // job_remains(), without its system call once waitpid() has said there is no child.
  bool anything_left() const {
    return m_children_left && job_remains();
  }

  // With the main process gone: whether the loop may end now.
  bool done() {
    if (m_state.stopping()) {
      const bool waited_enough =
          m_state.job_signal == SIGKILL &&
          std::chrono::steady_clock::now() >= m_state.killed_at + k_kill_wait;
      return waited_enough || !anything_left();
    }
    if (m_leftovers_seen) {
      return !anything_left(); // leftovers: wait (kill is a stop rule)
    }
    if (!anything_left()) {
      return true;
    }
    m_leftovers_seen = true;
    if (m_events.leftovers) {
      m_events.leftovers(list_job());
    }
    switch (m_spec.limits.leftovers) {
    case LeftoverMode::leave:
      return true;
    case LeftoverMode::kill:
      m_leftovers_from = std::chrono::steady_clock::now();
      return false;
    case LeftoverMode::wait:
      return false;
    }
    return true;
  }

  void warn_if_overdue() {
    if (m_warn_at && std::chrono::steady_clock::now() >= *m_warn_at) {
      m_warn_at.reset();
      if (m_events.overdue) {
        m_events.overdue();
      }
    }
  }

  int timeout(const std::vector<StopRule>& rules) const {
    if (m_state.job_signal == SIGKILL) {
      return 100; // look again every 100 ms until the job is gone
    }
    std::optional<MonotonicTime> next = m_state.next_deadline(rules);
    if (m_warn_at && (!next || *m_warn_at < *next)) {
      next = m_warn_at;
    }
    return poll_timeout(next);
  }

  void on_signal(int signal) {
    if (signal == SIGCHLD) {
      m_children_left = reap_children(m_pid, m_finished);
    } else if (signal == SIGINT || signal == SIGQUIT || signal == 0) {
      // SIGINT and SIGQUIT come from a terminal's Ctrl-C and Ctrl-\, which reach the
      // whole foreground process group, the command included. A kill aimed at the group
      // looks the same to loto as one aimed at it alone, so loto passes neither on (as
      // system(3) does) and keeps waiting: the command never gets a second copy.
    } else if (m_finished) {
      // Waiting for leftovers, or for a stopped job to go: pass it to what is left.
      std::set<pid_t> signalled;
      signal_job(signal, signalled);
    } else {
      // The child is not reaped yet, so its pid cannot have been reused.
      ::kill(m_pid, signal);
    }
  }

  pid_t m_pid;
  const CommandSpec& m_spec;
  const JobEvents& m_events;
  MonotonicTime m_started;
  StopState m_state;
  std::optional<CommandOutcome> m_finished;
  std::optional<MonotonicTime> m_warn_at;
  std::optional<MonotonicTime> m_leftovers_from;
  bool m_leftovers_seen = false;
  bool m_children_left = true; // false once waitpid() said there is no child at all
};

} // namespace

CommandOutcome
run_command(const CommandSpec& spec, const SignalBaseline& baseline, const JobEvents& events) {
  const SignalQueue signals(baseline);
  // The job's orphans become loto's children: they can be listed, waited for and stopped.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    os_failure("cannot adopt the job's orphans");
  }
  const pid_t pid = start_job(spec, baseline, !spec.leases.empty());
  if (events.started) {
    events.started(pid);
  }
  Supervisor supervisor(pid, spec, events);
  return supervisor.run(signals);
}

} // namespace loto
