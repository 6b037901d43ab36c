// The fleet backend: locks held through etcd by the helper loto-etcd (protocol.hpp), and the
// deadlines by which a job must be stopped when its lease can no longer be trusted.
#include "build_info.hpp"
#include "error.hpp"
#include "identity.hpp"
#include "lock/etcd/messages.hpp"
#include "lock/etcd/protocol.hpp"
#include "lock/lock.hpp"
#include "text.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <map>

namespace loto {

namespace {

namespace protocol = etcd_protocol;
using Clock = std::chrono::steady_clock;

// How long loto waits for the helper to give the lock up (revoke the lease) on release.
constexpr auto k_release_wait = std::chrono::seconds(3);

// The helper binary: beside loto in a build tree, else where the package installs it.
std::string helper_path() {
  std::array<char, PATH_MAX> self{};
  const ssize_t size = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (size > 0) {
    std::string beside(self.data(), static_cast<std::size_t>(size));
    beside.resize(beside.rfind('/') + 1);
    beside += "loto-etcd";
    if (::access(beside.c_str(), X_OK) == 0) {
      return beside;
    }
  }
  return k_etcd_helper_path;
}

// A running loto-etcd and loto's end of its socket. The helper is started as a grandchild
// and left to init, so the job's supervisor never mistakes it for part of the job; it
// ends by itself when loto's end of the socket closes.
class Helper {
public:
  explicit Helper(const std::vector<std::string>& args) {
    const std::string path = helper_path();
    if (::access(path.c_str(), X_OK) != 0) {
      throw Error(exit_code::unavailable,
                  "cannot run the etcd helper " + quoted(path) + ": " + std::strerror(errno) +
                      " (reinstall loto; etcd resources need it)");
    }
    std::array<int, 2> ends{};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) != 0) {
      throw Error(exit_code::os_error,
                  std::string("cannot create a socket for the etcd helper: ") +
                      std::strerror(errno));
    }
    std::vector<std::string> words{path};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& word : words) {
      argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      if (::fork() != 0) {
        ::_exit(0);
      }
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // Not the caller's stdin, stdout or stderr: the helper may outlive loto by a moment
      // (revoking a lease), and must not keep a pipe such as $(loto ...) open meanwhile.
      const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      for (int standard_fd = 0; standard_fd <= 2; ++standard_fd) {
        ::dup2(null_fd, standard_fd);
      }
      // Nothing from loto's environment: the helper connects to the configured endpoints
      // directly (no proxy variables), and the plan is all it needs.
      std::array<char*, 1> no_environment{nullptr};
      if (::dup2(ends[1], protocol::k_socket_fd) == protocol::k_socket_fd) {
        ::execve(argv[0], argv.data(), no_environment.data());
      }
      ::_exit(127);
    }
    ::close(ends[1]);
    m_fd = ends[0];
    if (child < 0) {
      throw Error(exit_code::os_error,
                  std::string("cannot start the etcd helper: ") + std::strerror(errno));
    }
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  ~Helper() {
    ::close(m_fd);
  }
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;

  // -1 once the helper has closed its end: nothing more will come.
  int fd() const {
    return m_eof ? -1 : m_fd;
  }
  bool ended() const {
    return m_eof;
  }

  // A message already received, if any.
  std::optional<HelperMessage> take() {
    const auto newline = m_buffer.find('\n');
    if (newline == std::string::npos) {
      return std::nullopt;
    }
    HelperMessage message = parse_helper_message(std::string_view(m_buffer).substr(0, newline));
    m_buffer.erase(0, newline + 1);
    return message;
  }

  // Reads what has arrived without blocking; notes the end of the stream.
  void read_available() {
    std::array<char, 4096> chunk{};
    for (;;) {
      const ssize_t got = ::recv(m_fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
      if (got > 0) {
        m_buffer.append(chunk.data(), static_cast<std::size_t>(got));
        continue;
      }
      if (got == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        m_eof = true;
      }
      if (got < 0 && errno == EINTR) {
        continue;
      }
      return;
    }
  }

  // The next message, blocking until it comes. nullopt at the end of the stream, or when
  // `stop` says to stop waiting (checked whenever a signal or the timer interrupts).
  std::optional<HelperMessage> next(const std::function<bool()>& stop) {
    for (;;) {
      if (auto message = take()) {
        return message;
      }
      if (m_eof || (stop && stop())) {
        return std::nullopt;
      }
      pollfd waiting{m_fd, POLLIN, 0};
      if (::poll(&waiting, 1, -1) > 0) {
        read_available();
      }
    }
  }

  // Gives the lock up: "release", then (if `wait`) the helper's answer once its lease is
  // revoked, or the end of its stream, for at most k_release_wait.
  void release(bool wait = true) {
    if (m_eof) {
      return;
    }
    const std::string line = std::string(protocol::k_release) + "\n";
    if (::send(m_fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()) ||
        !wait) {
      return;
    }
    const auto until = Clock::now() + k_release_wait;
    for (;;) {
      while (auto message = take()) {
        if (message->verb == protocol::k_released) {
          return;
        }
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      if (m_eof || left.count() <= 0) {
        return;
      }
      pollfd waiting{m_fd, POLLIN, 0};
      if (::poll(&waiting, 1, static_cast<int>(left.count())) > 0) {
        read_available();
      }
    }
  }

private:
  int m_fd = -1;
  bool m_eof = false;
  std::string m_buffer;
};

std::string describe_lock(const LockTarget& target) {
  return "resource " + quoted(target.name) + " (etcd lock " + quoted(target.etcd_name) + ")";
}

// A lock held through the helper; watched while the command runs.
class EtcdLock final : public HeldLock, public LeaseWatch {
public:
  // `acquired`: the helper's "acquired TOKEN KEY [SLOT]" (SLOT with slots: N > 1).
  EtcdLock(std::unique_ptr<Helper> helper,
           LeaseTimes lease,
           const HelperMessage& acquired,
           const LockTarget& target)
      : m_helper(std::move(helper)), m_lease(std::move(lease)), m_token(acquired.field(0)),
        m_slot(target.slots > 1 ? acquired.field(2) : ""), m_description(describe_lock(target)) {}

  ~EtcdLock() override {
    // A lease already given up for lost is not worth waiting for: etcd may be out of
    // reach, and the job is gone. The helper still tries to revoke it.
    m_helper->release(Clock::now() < term_deadline());
  }
  EtcdLock(const EtcdLock&) = delete;
  EtcdLock& operator=(const EtcdLock&) = delete;

  int inheritable_fd() const override {
    return -1;
  }
  LeaseWatch* lease() override {
    return this;
  }
  std::vector<std::string> environment() const override {
    std::vector<std::string> variables{"LOTO_FENCING_TOKEN=" + m_token,
                                       "LOTO_ETCD_LEASE=" + m_lease.id_hex};
    if (!m_slot.empty()) {
      variables.push_back("LOTO_SLOT=" + m_slot);
    }
    return variables;
  }
  std::vector<std::pair<std::string, std::string>> audit_fields() const override {
    std::vector<std::pair<std::string, std::string>> fields{{"token", m_token},
                                                            {"lease", m_lease.id_hex}};
    if (!m_slot.empty()) {
      fields.emplace_back("slot", m_slot);
    }
    return fields;
  }

  int fd() const override {
    return m_helper->fd();
  }
  void on_readable() override {
    m_helper->read_available();
    while (auto message = m_helper->take()) {
      if (message->verb == protocol::k_lost) {
        lose(message->field(0));
      } else {
        m_lease.apply(*message);
      }
    }
    if (m_helper->ended()) {
      lose("the etcd helper stopped renewing the lease");
    }
  }

  MonotonicTime term_deadline() const override {
    return m_lease.term_deadline(m_lost_at);
  }
  MonotonicTime kill_deadline() const override {
    return m_lease.kill_deadline(m_lost_at);
  }
  std::string loss_reason() const override {
    if (m_lost_at) {
      return "lost " + m_description + ": " + m_reason;
    }
    const auto silent =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - m_lease.renewed_at);
    return "lost " + m_description + ": no lease renewal succeeded for " +
           std::to_string(silent.count()) + " ms (lease TTL " + format_duration(m_lease.ttl) +
           "; is etcd reachable from this host?)";
  }

private:
  void lose(const std::string& reason) {
    if (!m_lost_at) {
      m_lost_at = Clock::now();
      m_reason = reason;
    }
  }

  std::unique_ptr<Helper> m_helper;
  LeaseTimes m_lease;
  std::string m_token;
  std::string m_slot;
  std::string m_description;
  std::optional<MonotonicTime> m_lost_at;
  std::string m_reason;
};

std::string host_name() {
  utsname names{};
  return ::uname(&names) == 0 ? std::string(names.nodename) : std::string("unknown");
}

class EtcdBackend final : public LockBackend {
public:
  EtcdBackend(EtcdPlan etcd, const std::vector<std::string>& command)
      : m_etcd(std::move(etcd)), m_command(join_command(command)) {}

  AcquireResult acquire(const LockTarget& target, WaitControl& wait) override {
    // From here SIGINT, SIGTERM and SIGHUP end the attempt (the helper gives our key up)
    // instead of killing loto while it may already hold the lock; with a wait limit its
    // timer runs from here, so -t bounds the connection too.
    const bool may_wait = wait.may_wait();
    wait.arm();
    // What the busy or timeout message will name: nobody, unless etcd tells us. Asking
    // etcd again afterwards could cost another timeout if it is out of reach.
    m_holders[target.etcd_name] = std::nullopt;
    auto helper = std::make_unique<Helper>(helper_arguments(target, may_wait ? "--wait" : "--try"));
    const auto stop = [&wait, may_wait] {
      wait.tick();
      return wait.interrupt_signal() != 0 || (may_wait && wait.deadline_passed());
    };
    LeaseTimes lease;
    for (;;) {
      const auto message = helper->next(stop);
      if (!message) {
        if (helper->ended()) {
          return unavailable("the etcd helper ended without an answer while taking " +
                             describe_lock(target));
        }
        helper->release(); // our place in the queue goes with the lease
        return {wait.interrupt_signal() != 0 ? AcquireStatus::interrupted
                                             : AcquireStatus::timed_out,
                nullptr,
                ""};
      }
      const std::string& verb = message->verb;
      if (verb == protocol::k_granted || verb == protocol::k_renewed) {
        lease.apply(*message);
      } else if (verb == protocol::k_waiting) {
        m_holders[target.etcd_name] = LockHolder{0, "", message->field(0), 0, 0};
        wait.begin_blocking();
      } else if (verb == protocol::k_queued) {
        if (const auto it = m_holders.find(target.etcd_name); it != m_holders.end() && it->second) {
          it->second->ahead = parse_count(message->field(0));
        }
      } else if (verb == protocol::k_busy) {
        m_holders[target.etcd_name] = LockHolder{0, "", message->field(0), 0, 0};
        return {AcquireStatus::busy, nullptr, ""};
      } else if (verb == protocol::k_acquired) {
        return {AcquireStatus::acquired,
                std::make_unique<EtcdLock>(std::move(helper), lease, *message, target),
                ""};
      } else if (verb == protocol::k_lost) {
        return unavailable("lost the etcd lease while waiting for " + describe_lock(target) + ": " +
                           message->field(0));
      } else if (verb == protocol::k_failed) {
        return failure(*message);
      }
    }
  }

  // The holder named by acquire()'s last answer for this lock (m_holders): loto asks only
  // after trying the lock.
  std::optional<LockHolder> find_holder(const LockTarget& target) const override {
    const auto it = m_holders.find(target.etcd_name);
    return it != m_holders.end() ? it->second : std::nullopt;
  }

  EtcdCheck check(const LockTarget& target) const {
    Helper helper(helper_arguments(target, "--inspect"));
    const HoldersAnswer answer = ask_holders(helper);
    if (!answer.holders) {
      return {answer.exit_code, answer.reason};
    }
    const auto holder = holder_of(*answer.holders);
    const std::string state = holder ? "held by " + describe_holder(*holder) : "free";
    std::string who = m_etcd.user.empty() ? "" : " as user " + quoted(m_etcd.user);
    return {0, "etcd at " + answer.holders->field(2) + " answered" + who + ": " + state};
  }

  // What --inspect says (lock_state_of): the holder and every waiter in queue order.
  LockState inspect(const LockTarget& target) const override {
    Helper helper(helper_arguments(target, "--inspect"));
    const HelperMessage holders = ask_holders(helper).take();
    std::vector<HelperMessage> entries;
    while (auto entry = helper.next({})) {
      if (entry->verb == protocol::k_entry) {
        entries.push_back(std::move(*entry));
      }
    }
    return lock_state_of(holders, entries);
  }

private:
  // The first answer of `loto-etcd --inspect`: its "holders" line, or why there is none
  // with the exit code the helper gave (69 when it gave none).
  struct HoldersAnswer {
    std::optional<HelperMessage> holders;
    int exit_code = exit_code::unavailable;
    std::string reason;

    // The "holders" line, or Error(unavailable) with the reason: a backend query cannot
    // say "free" without an answer.
    HelperMessage take() const {
      if (!holders) {
        throw Error(exit_code::unavailable, reason);
      }
      return *holders;
    }
  };

  static HoldersAnswer ask_holders(Helper& helper) {
    const auto message = helper.next({});
    if (!message) {
      return {std::nullopt, exit_code::unavailable, "the etcd helper ended without an answer"};
    }
    if (message->verb == protocol::k_failed) {
      return {std::nullopt, failure_exit_code(*message), message->field(1)};
    }
    if (message->verb != protocol::k_holders) {
      return {std::nullopt, exit_code::unavailable, "unexpected answer from the etcd helper"};
    }
    return {*message, 0, ""};
  }

  std::vector<std::string> helper_arguments(const LockTarget& target,
                                            const std::string& mode) const {
    std::vector<std::string> args = lock_arguments(target, mode);
    // Paths only: the helper reads the secrets itself, so that ps shows none of them.
    const std::array<std::pair<const char*, const std::string*>, 5> access{{
        {"--ca-file", &m_etcd.ca_file},
        {"--cert-file", &m_etcd.cert_file},
        {"--key-file", &m_etcd.key_file},
        {"--etcd-user", &m_etcd.user},
        {"--password-file", &m_etcd.password_file},
    }};
    for (const auto& [option, value] : access) {
      if (!value->empty()) {
        args.insert(args.end(), {option, *value});
      }
    }
    return args;
  }

  std::vector<std::string> lock_arguments(const LockTarget& target, const std::string& mode) const {
    const auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(m_etcd.ttl).count();
    std::vector<std::string> args{"--endpoints",
                                  join(m_etcd.endpoints, ","),
                                  "--ttl-ms",
                                  std::to_string(ttl_ms),
                                  "--name",
                                  target.etcd_name,
                                  mode,
                                  "--host",
                                  host_name(),
                                  "--pid",
                                  std::to_string(::getpid()),
                                  "--user",
                                  running_user_name(),
                                  "--command",
                                  m_command};
    if (target.slots > 1) {
      args.insert(args.end(), {"--slots", std::to_string(target.slots)});
    }
    return args;
  }

  static AcquireResult unavailable(std::string message) {
    return {AcquireStatus::unavailable, nullptr, std::move(message)};
  }

  static AcquireResult failure(const HelperMessage& message) {
    const int code = failure_exit_code(message);
    if (code == protocol::k_unavailable) {
      return unavailable(message.field(1));
    }
    throw Error(code, message.field(1));
  }

  EtcdPlan m_etcd;
  std::string m_command;
  // The holder each busy or waiting answer named (nullopt: none named), for the messages
  // that follow; --list, which takes no lock, asks etcd.
  std::map<std::string, std::optional<LockHolder>> m_holders;
};

} // namespace

EtcdCheck check_etcd_online(const EtcdPlan& etcd, const LockTarget& target) {
  return EtcdBackend(etcd, {}).check(target);
}

std::unique_ptr<LockBackend> make_etcd_backend(const EtcdPlan& etcd,
                                               const std::vector<std::string>& command) {
  return std::make_unique<EtcdBackend>(etcd, command);
}

} // namespace loto
