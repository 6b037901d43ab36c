// Everything loto says: stderr for people, syslog for the audit trail.
#pragma once

#include "identity.hpp"
#include "plan.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace loto {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Longest syslog record loto sends; longer ones end in k_truncation_mark.
inline constexpr std::size_t k_max_record = 2048;
inline constexpr const char* k_truncation_mark = "...[truncated]";

// One audit record: "event=NAME key=value ...", values escaped and quoted when needed,
// capped at k_max_record bytes with a visible mark.
std::string format_record(const std::string& event, const Fields& fields);

// The names logging.facility and logging.level accept, in the order the docs list them.
const std::vector<std::string>& syslog_facilities();
const std::vector<std::string>& log_levels();

class Log {
public:
  // stderr only, with built-in settings: for errors found before the plan exists.
  Log();
  // `command` is the command line recorded in every audit record.
  Log(const LogPlan& plan, const std::vector<std::string>& command);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // A failure that stops loto: always on stderr as "loto: error: ...", and audited as
  // `event` (default "error") with `fields` and the message.
  void error(const std::string& message);
  void error(const std::string& message, const std::string& event, Fields fields);
  // An outcome people want to see (lock busy): stderr unless -q.
  void notice(const std::string& message);
  // The play-by-play of -v, to stderr and syslog.
  void progress(const std::string& message);
  // Whether progress() shows anything: skip work that only feeds it.
  bool shows_progress() const {
    return m_plan.verbosity > 0;
  }
  // Whether debug() shows anything (-vv).
  bool shows_debug() const {
    return m_plan.verbosity > 1;
  }
  // Detail for -vv, stderr only.
  void debug(const std::string& message);

  enum class Severity { info, warning, error };
  // One syslog record; pid, uid, user and the command are added to `fields`.
  void audit(Severity severity, const std::string& event, Fields fields);

private:
  LogPlan m_plan;
  std::string m_command;
  std::unique_ptr<spdlog::logger> m_stderr;
  std::unique_ptr<spdlog::logger> m_syslog; // null when syslog is off
};

} // namespace loto
