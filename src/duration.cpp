#include "duration.hpp"

#include <array>
#include <cstdint>

namespace loto {

namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t nanoseconds;
};

constexpr std::int64_t k_ns_per_s = 1'000'000'000;
// Longest suffixes first so "ms" is not read as "m" followed by junk.
constexpr std::array<Unit, 4> k_units{{
    {"ms", 1'000'000},
    {"s", k_ns_per_s},
    {"m", 60 * k_ns_per_s},
    {"h", 3600 * k_ns_per_s},
}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

} // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  std::int64_t unit_ns = k_ns_per_s;
  for (const auto& unit : k_units) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      unit_ns = unit.nanoseconds;
      text.remove_suffix(unit.suffix.size());
      break;
    }
  }
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12 || (dot != std::string_view::npos && fraction.empty()) ||
      fraction.size() > 9) {
    return std::nullopt;
  }
  std::int64_t whole_value = 0;
  for (const char c : whole) {
    if (!is_digit(c)) {
      return std::nullopt;
    }
    whole_value = whole_value * 10 + (c - '0');
  }
  // The fraction as nanoseconds-of-a-unit scaled by 1e9, computed exactly in integers.
  std::int64_t fraction_e9 = 0;
  std::int64_t scale = k_ns_per_s;
  for (const char c : fraction) {
    if (!is_digit(c)) {
      return std::nullopt;
    }
    scale /= 10;
    fraction_e9 += (c - '0') * scale;
  }
  const std::int64_t max_units = k_max_duration.count() / unit_ns;
  if (whole_value > max_units) {
    return std::nullopt;
  }
  const Duration result{whole_value * unit_ns + fraction_e9 * (unit_ns / 1000) / 1'000'000};
  if (result > k_max_duration) {
    return std::nullopt;
  }
  return result;
}

std::string format_duration(Duration duration) {
  const std::int64_t ns = duration.count();
  if (ns == 0) {
    return "0";
  }
  // Whole hours, minutes or seconds; milliseconds only below a second ("1.5s", not
  // "1500ms").
  for (auto it = k_units.rbegin(); it != k_units.rend(); ++it) {
    const bool below_a_second_only = it->suffix == "ms";
    if (ns % it->nanoseconds == 0 && (!below_a_second_only || ns < k_ns_per_s)) {
      return std::to_string(ns / it->nanoseconds) + std::string(it->suffix);
    }
  }
  // Seconds with up to 9 decimals, trailing zeros removed.
  std::string fraction = std::to_string(k_ns_per_s + ns % k_ns_per_s).substr(1);
  while (fraction.back() == '0') {
    fraction.pop_back();
  }
  return std::to_string(ns / k_ns_per_s) + "." + fraction + "s";
}

} // namespace loto
