// Wait durations as written by admins: "5", "0.5", "250ms", "90s", "15m", "6h".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace loto {

using Duration = std::chrono::nanoseconds;

// Longest accepted wait: a year. Anything longer is almost certainly a typo, and "wait
// forever" is spelled -w.
inline constexpr Duration k_max_duration = std::chrono::hours(24 * 365);

// Parses a non-negative duration: digits with an optional fraction (up to 9 places) and
// an optional unit ms, s, m or h (seconds when absent). Returns nullopt for anything
// else: signs, exponents, hex, spaces, "inf", "nan", empty, or more than k_max_duration.
std::optional<Duration> parse_duration(std::string_view text);

// Shortest readable form that parse_duration() reads back to the same value where
// possible: "0", "250ms", "1.5s", "15m", "6h".
std::string format_duration(Duration duration);

} // namespace loto
