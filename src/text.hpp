// Small text helpers shared by messages, logs and the config loader.
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto {

// Escapes control characters, backslashes and invalid UTF-8 bytes (as \n, \t, \xHH, \\)
// so that untrusted text always prints as one harmless line.
std::string escape(std::string_view text);

// escape() wrapped in single quotes, with single quotes inside escaped as \': the form
// every message uses for paths and names.
std::string quoted(std::string_view text);

// `text` as a JSON string literal, quotes included: '"' and '\\' escaped, control
// characters and DEL as \n, \t, ... or \u00XX, and each byte that is not part of valid
// UTF-8 replaced by U+FFFD, so that any bytes make a valid document.
std::string json_string(std::string_view text);

// The command line as one line for messages and logs: words that need it are quoted
// and escaped, so "a b" and "a" "b" stay distinguishable.
std::string join_command(const std::vector<std::string>& argv);

// Offset of the first byte that is not part of valid UTF-8, or nullopt if all is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// The candidate closest to `word` by edit distance, if it is close enough to be a likely
// typo (ninja's SpellcheckString rule); otherwise nullopt.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

} // namespace loto

namespace loto {

// The items separated by `separator`.
std::string join(const std::vector<std::string>& items, std::string_view separator);

// The whole of `text` as a number in `base`, within T's range; nullopt for anything else
// (empty, spaces, a sign on an unsigned type, a '+', trailing characters).
template <typename T> std::optional<T> parse_number(std::string_view text, int base = 10) {
  T value{};
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || error != std::errc() || stop != end) {
    return std::nullopt;
  }
  return value;
}

// An exit code written as 1 to 3 decimal digits, 0..255; nullopt for anything else.
std::optional<int> parse_exit_code(std::string_view text);

// Resource names: a letter or digit, then up to 63 of [A-Za-z0-9._-].
bool is_valid_resource_name(std::string_view name);

// Why `path` is not acceptable as a lock or directory path (not absolute, a ".."
// component, control characters, too long), or nullopt if it is fine.
std::optional<std::string> path_problem(std::string_view path);

// The rest of the open file `fd`, read straight into the string (no large stack buffer,
// whose every page the compiler would probe). Stops once more than `limit` bytes are in,
// so a result longer than `limit` means "too large". nullopt if a read fails (errno set).
std::optional<std::string> read_to_end(int fd, std::size_t size_hint, std::size_t limit);

} // namespace loto
