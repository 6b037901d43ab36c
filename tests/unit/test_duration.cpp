// Unit tests for duration.hpp: parse_duration() and format_duration().
#include "duration.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using loto::Duration;
using loto::format_duration;
using loto::k_max_duration;
using loto::parse_duration;

namespace {

constexpr std::int64_t k_ms = 1'000'000;
constexpr std::int64_t k_s = 1'000'000'000;
constexpr std::int64_t k_min = 60 * k_s;
constexpr std::int64_t k_hour = 3600 * k_s;

struct Accepted {
  std::string text;
  std::int64_t nanoseconds;
};

} // namespace

TEST_CASE("parse_duration reads plain seconds exactly", "[duration]") {
  const std::vector<Accepted> cases{
      {"0", 0},
      {"00", 0},
      {"5", 5 * k_s},
      {"05", 5 * k_s},
      {"60", 60 * k_s},
      {"0.5", k_s / 2},
      {"0.001", k_ms},
      {"0.000000001", 1},
      {"1.5", 3 * k_s / 2},
      {"0.0", 0},
      {"2.250", 2 * k_s + 250 * k_ms},
      {"12.345678901", 12 * k_s + 345'678'901},
      {"0.999999999", k_s - 1},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    const auto duration = parse_duration(c.text);
    REQUIRE(duration.has_value());
    CHECK(duration->count() == c.nanoseconds);
  }
}

TEST_CASE("parse_duration reads the units ms s m h exactly", "[duration]") {
  const std::vector<Accepted> cases{
      {"250ms", 250 * k_ms},
      {"0ms", 0},
      {"1ms", k_ms},
      {"0.5ms", k_ms / 2},
      {"1.25ms", 1'250'000},
      {"90s", 90 * k_s},
      {"0s", 0},
      {"1.5s", 3 * k_s / 2},
      {"15m", 15 * k_min},
      {"0.5m", 30 * k_s},
      {"1m", k_min},
      {"6h", 6 * k_hour},
      {"1.5h", 90 * k_min},
      {"0.25h", 15 * k_min},
      {"24h", 24 * k_hour},
  };
  for (const auto& c : cases) {
    INFO("text: " << c.text);
    const auto duration = parse_duration(c.text);
    REQUIRE(duration.has_value());
    CHECK(duration->count() == c.nanoseconds);
  }
}

TEST_CASE("parse_duration accepts exactly one year and nothing longer", "[duration]") {
  const std::int64_t year = k_max_duration.count();
  REQUIRE(year == 8760 * k_hour);
  for (const std::string text :
       {"8760h", "525600m", "31536000s", "31536000", "31536000000ms", "31536000.000000000"}) {
    INFO("text: " << text);
    const auto duration = parse_duration(text);
    REQUIRE(duration.has_value());
    CHECK(duration->count() == year);
  }
  for (const std::string text : {"8761h",
                                 "8760.001h",
                                 "525601m",
                                 "31536001",
                                 "31536000.000000001",
                                 "31536000001ms",
                                 "999999999999",
                                 "999999999999h",
                                 "99999999999999999999",
                                 "9223372036854775807",
                                 "18446744073709551617",
                                 "1000000000000ms"}) {
    INFO("text: " << text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("parse_duration rejects malformed text", "[duration]") {
  const std::vector<std::string>
      rejected{
          "",      "-1",  "+1",       "-0",   "+0",    "abc",  "inf",          "nan",
          "INF",   "1e3", "1E3",      "0x10", " 1",    "1 ",   "5 s",          "1.",
          ".5",    ".",   "5x",       "5S",   "5sec",  "5min", "ms",           "s",
          "m",     "h",   "1h30m",    "1..5", "1.2.3", "1,5",  "1.0000000001", "0.0000000001",
          "1.5.s", "\t1", "1\n",      "5ms ", "msms",  "1mss", "1hs",          "--1",
          "1-",    "0b1", "\xd9\xa1", // Arabic-Indic digit one
      };
  for (const auto& text : rejected) {
    INFO("text: " << text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
  // An embedded NUL is not a digit either.
  CHECK_FALSE(parse_duration(std::string_view("5\0", 2)).has_value());
  CHECK_FALSE(parse_duration(std::string_view("\0"
                                              "5",
                                              2))
                  .has_value());
}

TEST_CASE("format_duration picks the largest whole unit", "[duration]") {
  using namespace std::chrono_literals;
  CHECK(format_duration(Duration::zero()) == "0");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1ms) == "1ms");
  CHECK(format_duration(1s) == "1s");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(60s) == "1m");
  CHECK(format_duration(15min) == "15m");
  CHECK(format_duration(90min) == "90m");
  CHECK(format_duration(1h) == "1h");
  CHECK(format_duration(6h) == "6h");
  CHECK(format_duration(k_max_duration) == "8760h");
  CHECK(format_duration(500us) == "0.0005s");
  CHECK(format_duration(1ns) == "0.000000001s");
  CHECK(format_duration(Duration(1'500'000'001)) == "1.500000001s");
  CHECK(format_duration(Duration(61 * k_s + 1)) == "61.000000001s");
}

// The header promises the shortest readable form, with "1.5s" as an example.
TEST_CASE("format_duration writes 1.5 seconds as 1.5s as documented", "[duration]") {
  using namespace std::chrono_literals;
  CHECK(format_duration(1500ms) == "1.5s");
}

TEST_CASE("format_duration output reads back to the same value", "[duration]") {
  std::vector<std::int64_t> values{0,
                                   1,
                                   999,
                                   1000,
                                   k_ms - 1,
                                   k_ms,
                                   k_ms + 1,
                                   k_s / 2,
                                   k_s - 1,
                                   k_s,
                                   k_s + 1,
                                   90 * k_s,
                                   k_min,
                                   k_min + 1,
                                   k_hour,
                                   k_hour - 1,
                                   5400 * k_s,
                                   k_max_duration.count(),
                                   k_max_duration.count() - 1};
  // A deterministic spread over the whole accepted range.
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  const auto max = static_cast<std::uint64_t>(k_max_duration.count());
  for (int i = 0; i < 2000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::uint64_t raw = (state >> 1U) % (max + 1);
    // Mix magnitudes so that every unit (and none) divides some of the values.
    const std::uint64_t divisor = std::uint64_t{1} << ((state >> 58U) % 48U);
    values.push_back(static_cast<std::int64_t>(raw / divisor));
    values.push_back(static_cast<std::int64_t>(raw / divisor / 1000000 * 1000000));
  }
  for (const auto ns : values) {
    const Duration duration{ns};
    const std::string text = format_duration(duration);
    INFO("ns: " << ns << " text: " << text);
    const auto back = parse_duration(text);
    REQUIRE(back.has_value());
    CHECK(back->count() == ns);
  }
}

TEST_CASE("parse then format then parse is stable", "[duration]") {
  for (const std::string text : {"0",
                                 "5",
                                 "0.5",
                                 "0.001",
                                 "250ms",
                                 "90s",
                                 "15m",
                                 "6h",
                                 "1.5h",
                                 "0.000000001",
                                 "12.345678901",
                                 "1.25ms",
                                 "8760h"}) {
    INFO("text: " << text);
    const auto first = parse_duration(text);
    REQUIRE(first.has_value());
    const auto second = parse_duration(format_duration(*first));
    REQUIRE(second.has_value());
    CHECK(*second == *first);
  }
}
