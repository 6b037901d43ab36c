// Unit tests for status_line.hpp: the pieces of the live waiting line.
#include "status_line.hpp"

#include <catch2/catch.hpp>

using loto::fit_to_width;
using loto::format_seconds;
using namespace std::chrono_literals;

TEST_CASE("waits are shown in whole seconds, minutes or hours", "[status_line]") {
  CHECK(format_seconds(0s) == "0s");
  CHECK(format_seconds(59s) == "59s");
  CHECK(format_seconds(60s) == "1m00s");
  CHECK(format_seconds(245s) == "4m05s");
  CHECK(format_seconds(3599s) == "59m59s");
  CHECK(format_seconds(3600s) == "1h00m");
  CHECK(format_seconds(7380s) == "2h03m");
  CHECK(format_seconds(-3s) == "0s");
}

TEST_CASE("the line is cut to the width, never inside a UTF-8 character", "[status_line]") {
  CHECK(fit_to_width("abcdef", 4) == "abcd");
  CHECK(fit_to_width("abc", 10) == "abc");
  CHECK(fit_to_width("", 3).empty());
  CHECK(fit_to_width("abc", 0).empty());
  // "é" and "€" are one column each, 2 and 3 bytes.
  CHECK(fit_to_width("a\xC3\xA9\xE2\x82\xAC"
                     "b",
                     3) == "a\xC3\xA9\xE2\x82\xAC");
  CHECK(fit_to_width("a\xC3\xA9\xE2\x82\xAC"
                     "b",
                     2) == "a\xC3\xA9");
}
