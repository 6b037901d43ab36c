#include "status_line.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cstdio>

namespace loto {

namespace {

// Back to the line's start, and erase to its end.
constexpr std::string_view k_erase_line = "\r\033[K";

void write_stderr(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(STDERR_FILENO, bytes.data(), bytes.size());
    if (written <= 0) {
      return; // a status line is not worth more than trying
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

std::size_t terminal_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  return 80;
}

} // namespace

StatusLine::StatusLine(bool wanted) : m_wanted(wanted) {}

bool StatusLine::enabled() {
  if (!m_enabled) {
    m_enabled = m_wanted && ::isatty(STDERR_FILENO) == 1;
  }
  return *m_enabled;
}

StatusLine::~StatusLine() {
  clear();
}

void StatusLine::show(std::string_view text) {
  if (!enabled()) {
    return;
  }
  // One column short of the width: a line that fills it would wrap on some terminals,
  // and "\r" would then return to the wrong line.
  const std::size_t columns = terminal_columns();
  write_stderr(std::string(k_erase_line) + fit_to_width(text, columns > 1 ? columns - 1 : 1));
  m_shown = true;
}

void StatusLine::clear() {
  if (m_shown) {
    write_stderr(k_erase_line);
    m_shown = false;
  }
}

std::string format_seconds(std::chrono::seconds seconds) {
  const long long total = seconds.count() < 0 ? 0 : seconds.count();
  std::array<char, 32> buffer{};
  if (total < 60) {
    (void)std::snprintf(buffer.data(), buffer.size(), "%llds", total);
  } else if (total < 3600) {
    (void)std::snprintf(buffer.data(), buffer.size(), "%lldm%02llds", total / 60, total % 60);
  } else {
    (void)std::snprintf(
        buffer.data(), buffer.size(), "%lldh%02lldm", total / 3600, total % 3600 / 60);
  }
  return buffer.data();
}

std::string fit_to_width(std::string_view text, std::size_t columns) {
  std::size_t characters = 0;
  std::size_t end = 0;
  for (; end < text.size(); ++end) {
    const auto byte = static_cast<unsigned char>(text[end]);
    if ((byte & 0xC0U) != 0x80U) { // the first byte of a character
      if (characters == columns) {
        break;
      }
      ++characters;
    }
  }
  return std::string(text.substr(0, end));
}

} // namespace loto
