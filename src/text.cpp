#include "text.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>

namespace loto {

namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not valid.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  std::uint32_t min_code = 0;
  std::uint32_t code = 0;
  if (lead < 0x80) {
    return 1;
  }
  if ((lead & 0xE0U) == 0xC0) {
    length = 2;
    min_code = 0x80;
    code = lead & 0x1FU;
  } else if ((lead & 0xF0U) == 0xE0) {
    length = 3;
    min_code = 0x800;
    code = lead & 0x0FU;
  } else if ((lead & 0xF8U) == 0xF0) {
    length = 4;
    min_code = 0x10000;
    code = lead & 0x07U;
  } else {
    return 0;
  }
  if (i + length > text.size()) {
    return 0;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0U) != 0x80) {
      return 0;
    }
    code = (code << 6U) | (byte(i + k) & 0x3FU);
  }
  const bool overlong = code < min_code;
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  return (overlong || surrogate || code > 0x10FFFF) ? 0 : length;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

} // namespace

namespace {

// Appends `text` to `out`: whole multi-byte UTF-8 sequences as they are, and each other
// byte through `write_byte(out, byte, valid)`, `valid` false for a byte that starts no
// valid sequence. escape() and json_string() differ only in what they write for a byte.
template <typename WriteByte>
void append_escaped(std::string& out, std::string_view text, WriteByte write_byte) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length > 1) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    }
    write_byte(out, static_cast<unsigned char>(text[i]), length != 0);
    ++i;
  }
}

void append_hex_byte(std::string& out, std::string_view prefix, unsigned char c) {
  static constexpr std::array<char, 17> hex{"0123456789abcdef"};
  out += prefix;
  out += hex[c >> 4U];
  out += hex[c & 0x0FU];
}

} // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text, [](std::string& to, unsigned char c, bool valid) {
    switch (c) {
    case '\n':
      to += "\\n";
      break;
    case '\t':
      to += "\\t";
      break;
    case '\r':
      to += "\\r";
      break;
    case '\\':
      to += "\\\\";
      break;
    default:
      if (!valid || c < 0x20 || c == 0x7F) {
        append_hex_byte(to, "\\x", c);
      } else {
        to += static_cast<char>(c);
      }
    }
  });
  return out;
}

std::string json_string(std::string_view text) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD
  std::string out = "\"";
  out.reserve(text.size() + 2);
  append_escaped(out, text, [](std::string& to, unsigned char c, bool valid) {
    switch (c) {
    case '"':
      to += "\\\"";
      break;
    case '\\':
      to += "\\\\";
      break;
    case '\n':
      to += "\\n";
      break;
    case '\t':
      to += "\\t";
      break;
    case '\r':
      to += "\\r";
      break;
    case '\b':
      to += "\\b";
      break;
    case '\f':
      to += "\\f";
      break;
    default:
      if (!valid) {
        to += replacement;
      } else if (c < 0x20 || c == 0x7F) {
        append_hex_byte(to, "\\u00", c);
      } else {
        to += static_cast<char>(c);
      }
    }
  });
  out += '"';
  return out;
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : escape(text)) {
    if (c == '\'') {
      out += '\\';
    }
    out += c;
  }
  return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u > 0x20 && u < 0x7F && c != '\'' && c != '"' && c != '\\';
    });
    out += plain ? word : quoted(word);
  }
  return out;
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  // Like ninja: allow up to 3 edits, but never more than the word has letters.
  const std::size_t max_distance =
      std::min<std::size_t>(3, std::max<std::size_t>(1, word.size() / 2));
  std::optional<std::string> best;
  std::size_t best_distance = max_distance + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const auto match = closest_match(word, candidates);
  return match ? ", did you mean " + quoted(*match) + "?" : std::string{};
}

} // namespace loto

namespace loto {

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out += separator;
    }
    out += item;
  }
  return out;
}

std::optional<int> parse_exit_code(std::string_view text) {
  if (text.empty() || text.size() > 3 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int value = 0;
  for (const char c : text) {
    value = value * 10 + (c - '0');
  }
  return value <= 255 ? std::optional<int>(value) : std::nullopt;
}

bool is_valid_resource_name(std::string_view name) {
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  };
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), allowed) &&
         name[0] != '.' && name[0] != '_' && name[0] != '-';
}

std::optional<std::string> path_problem(std::string_view path) {
  constexpr std::size_t k_max_path = 4095;
  if (path.empty() || path[0] != '/') {
    return "is not an absolute path";
  }
  if (path.size() > k_max_path) {
    return "is too long";
  }
  if (std::any_of(path.begin(), path.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7F;
      })) {
    return "contains control characters";
  }
  if (path == "/") {
    return "is the root directory";
  }
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    if (path.substr(start, end - start) == "..") {
      return "contains a '..' component";
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<std::string> read_to_end(int fd, std::size_t size_hint, std::size_t limit) {
  std::string text;
  std::size_t used = 0;
  text.resize(std::min(size_hint, limit) + 1); // +1: the end shows without another resize
  for (;;) {
    if (used == text.size()) {
      if (used > limit) {
        break;
      }
      text.resize(std::min(text.size() * 2, limit + 1));
    }
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  return text;
}

} // namespace loto
