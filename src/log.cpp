#include "log.hpp"

#include "text.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <mutex>

namespace loto {

namespace {

// Each facility and level name with what syslog and spdlog call it: the one list that
// the config's validation and the logger both read.
constexpr std::array<std::pair<std::string_view, int>, 12> k_facilities{{
    {"user", LOG_USER},
    {"daemon", LOG_DAEMON},
    {"cron", LOG_CRON},
    {"authpriv", LOG_AUTHPRIV},
    {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
}};
constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 4> k_levels{{
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warning", spdlog::level::warn},
    {"error", spdlog::level::err},
}};

// The value `name` has in `table`; `fallback` for a name the config check let through
// (none: it accepts only these names).
template <typename Table, typename Value>
Value lookup(const Table& table, std::string_view name, Value fallback) {
  for (const auto& [entry, value] : table) {
    if (entry == name) {
      return value;
    }
  }
  return fallback;
}

template <typename Table> std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) {
    names.emplace_back(entry.first);
  }
  return names;
}

// Sends RFC 3164 datagrams to /dev/log without ever blocking. glibc's syslog(3) blocks
// for good when the daemon stops reading (the socket queue fills up), which would hold
// the lock and stall the job; here a full queue or a missing /dev/log drops the record.
class NonBlockingSyslogSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
  NonBlockingSyslogSink(std::string ident, int facility)
      : m_ident(std::move(ident)), m_facility(facility) {}

  ~NonBlockingSyslogSink() override {
    if (m_socket >= 0) {
      ::close(m_socket);
    }
  }
  NonBlockingSyslogSink(const NonBlockingSyslogSink&) = delete;
  NonBlockingSyslogSink& operator=(const NonBlockingSyslogSink&) = delete;

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!connect_once()) {
      return;
    }
    int severity = LOG_INFO;
    switch (msg.level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      severity = LOG_DEBUG;
      break;
    case spdlog::level::warn:
      severity = LOG_WARNING;
      break;
    case spdlog::level::err:
      severity = LOG_ERR;
      break;
    case spdlog::level::critical:
      severity = LOG_CRIT;
      break;
    default:
      break;
    }
    std::array<char, 32> stamp{};
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    if (std::strftime(stamp.data(), stamp.size(), "%b %e %T", &local) == 0) {
      stamp[0] = '\0'; // the contents are unspecified when it does not fit
    }
    std::string datagram = "<" + std::to_string(m_facility | severity) + ">" + stamp.data() + " " +
                           m_ident + "[" + std::to_string(::getpid()) + "]: ";
    datagram.append(msg.payload.data(), msg.payload.size());
    // MSG_DONTWAIT: drop rather than wait for a syslog daemon that is not reading.
    while (::send(m_socket, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
           errno == EINTR) {
    }
  }
  void flush_() override {}

private:
  bool connect_once() {
    if (m_tried) {
      return m_socket >= 0;
    }
    m_tried = true;
    m_socket = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m_socket < 0) {
      return false;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = "/dev/log";
    std::copy(path.begin(), path.end(), address.sun_path);
    if (::connect(m_socket, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(m_socket);
      m_socket = -1;
    }
    return m_socket >= 0;
  }

  std::string m_ident;
  int m_facility;
  int m_socket = -1;
  bool m_tried = false;
};

std::unique_ptr<spdlog::logger> make_stderr_logger(const LogPlan& plan) {
  auto logger =
      std::make_unique<spdlog::logger>("stderr", std::make_shared<spdlog::sinks::stderr_sink_st>());
  logger->set_pattern("loto: %v");
  if (plan.quiet) {
    logger->set_level(spdlog::level::err);
  } else if (plan.verbosity >= 2) {
    logger->set_level(spdlog::level::debug);
  } else if (plan.verbosity == 1) {
    logger->set_level(spdlog::level::info);
  } else {
    logger->set_level(spdlog::level::warn);
  }
  return logger;
}

// Cuts a record to k_max_record bytes with a visible mark, never inside a UTF-8 sequence.
std::string capped(std::string record) {
  const std::string mark = k_truncation_mark;
  if (record.size() > k_max_record) {
    std::size_t cut = k_max_record - mark.size();
    while (cut > 0 && (static_cast<unsigned char>(record[cut]) & 0xC0U) == 0x80) {
      --cut;
    }
    record.resize(cut);
    record += mark;
  }
  return record;
}

} // namespace

namespace {

// Appends " key=value"; a value that is not a plain word goes in double quotes. Raw values
// are escaped first; `escaped` ones (the command line) already are.
void append_field(std::string& record,
                  const std::string& key,
                  const std::string& value,
                  bool escaped) {
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F && c != '"' && c != '\\' && c != '\'';
  });
  record += " " + key + "=";
  if (plain) {
    record += value;
    return;
  }
  record += '"';
  for (const char c : escaped ? value : escape(value)) {
    if (c == '"') {
      record += '\\';
    }
    record += c;
  }
  record += '"';
}

std::string
format_record(const std::string& event, const Fields& fields, const std::string* command) {
  std::string record = "event=" + event;
  for (const auto& [key, value] : fields) {
    append_field(record, key, value, false);
  }
  if (command != nullptr) {
    append_field(record, "command", *command, true);
  }
  return capped(std::move(record));
}

} // namespace

const std::vector<std::string>& syslog_facilities() {
  static const std::vector<std::string> names = names_of(k_facilities);
  return names;
}

const std::vector<std::string>& log_levels() {
  static const std::vector<std::string> names = names_of(k_levels);
  return names;
}

std::string format_record(const std::string& event, const Fields& fields) {
  return format_record(event, fields, nullptr);
}

Log::Log() : m_stderr(make_stderr_logger(m_plan)) {
  m_plan.syslog = false;
}

Log::Log(const LogPlan& plan, const std::vector<std::string>& command)
    : m_plan(plan), m_command(join_command(command)), m_stderr(make_stderr_logger(plan)) {
  if (plan.syslog) {
    // Always an explicit ident: an empty one would make glibc-style code fall back to
    // argv[0] (the CVE-2023-6246 pattern); ours never reads argv[0].
    auto sink = std::make_shared<NonBlockingSyslogSink>(
        plan.ident, lookup(k_facilities, plan.facility, LOG_USER));
    m_syslog = std::make_unique<spdlog::logger>("syslog", std::move(sink));
    m_syslog->set_pattern("%v");
    m_syslog->set_level(lookup(k_levels, plan.level, spdlog::level::info));
  }
}

Log::~Log() = default;

void Log::error(const std::string& message) {
  error(message, "error", {});
}

void Log::error(const std::string& message, const std::string& event, Fields fields) {
  m_stderr->error("error: {}", message);
  fields.emplace_back("message", message);
  audit(Severity::error, event, std::move(fields));
}

void Log::notice(const std::string& message) {
  m_stderr->warn("{}", message);
}

void Log::progress(const std::string& message) {
  m_stderr->info("{}", message);
  if (m_syslog && m_plan.verbosity > 0) {
    // Messages are built from escaped parts already; only the length needs a cap.
    m_syslog->info("{}", capped(message));
  }
}

void Log::debug(const std::string& message) {
  m_stderr->debug("{}", message);
}

void Log::audit(Severity severity, const std::string& event, Fields fields) {
  if (!m_syslog) {
    return;
  }
  static const std::string user = running_user_name();
  fields.emplace_back("pid", std::to_string(::getpid()));
  fields.emplace_back("uid", std::to_string(::getuid()));
  fields.emplace_back("user", user);
  const std::string record = format_record(event, fields, &m_command);
  switch (severity) {
  case Severity::info:
    m_syslog->info("{}", record);
    break;
  case Severity::warning:
    m_syslog->warn("{}", record);
    break;
  case Severity::error:
    m_syslog->error("{}", record);
    break;
  }
}

} // namespace loto
