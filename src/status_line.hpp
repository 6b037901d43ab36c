// The live waiting line: one line on a terminal, rewritten in place while loto waits.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace loto {

class StatusLine {
public:
  // Shows nothing unless `wanted` and stderr is a terminal, which is asked only when the
  // line is first needed: a lock taken at once costs no system call here.
  explicit StatusLine(bool wanted);
  ~StatusLine();
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  bool enabled();
  // Rewrites the line with `text`, cut to the terminal's width.
  void show(std::string_view text);
  // Erases the line, so that what comes next starts on a clean line.
  void clear();

private:
  bool m_wanted = false;
  std::optional<bool> m_enabled; // known once asked
  bool m_shown = false;
};

// "12s", "4m05s", "2h03m": a wait as the line shows it, in whole seconds.
std::string format_seconds(std::chrono::seconds seconds);

// `text` cut to at most `columns` characters (UTF-8 sequences counted as one).
std::string fit_to_width(std::string_view text, std::size_t columns);

} // namespace loto
