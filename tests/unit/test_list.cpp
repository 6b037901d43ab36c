// Unit tests for --list --json: JSON string escaping, the /proc/locks parser, the fields
// read from /proc/PID/stat, the times and numbers the document holds, the STATE column,
// and --json on the command line.
#include "cli.hpp"
#include "error.hpp"
#include "lock/lock.hpp"
#include "lock/proc_locks.hpp"
#include "report.hpp"
#include "text.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

using loto::json_string;
using namespace std::chrono_literals;

namespace {

std::string bytes(std::initializer_list<unsigned char> list) {
  std::string out;
  for (const unsigned char c : list) {
    out += static_cast<char>(c);
  }
  return out;
}

std::string pids_of(const std::vector<loto::ProcLock>& entries) {
  std::string text;
  for (const auto& entry : entries) {
    text += (text.empty() ? "" : " ") + std::string(entry.waiter ? "w" : "h") +
            (entry.shared ? "R" : "W") + std::to_string(entry.pid);
  }
  return text;
}

} // namespace

TEST_CASE("json_string quotes printable text and valid UTF-8 as it is", "[list]") {
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("sleep 10") == "\"sleep 10\"");
  CHECK(json_string("it's ~!@#$%^&*()/") == "\"it's ~!@#$%^&*()/\"");
  CHECK(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\"");
}

TEST_CASE("json_string escapes quotes, backslashes and every control character", "[list]") {
  CHECK(json_string("a\"b") == "\"a\\\"b\"");
  CHECK(json_string("a\\b") == "\"a\\\\b\"");
  CHECK(json_string("\n\t\r\b\f") == "\"\\n\\t\\r\\b\\f\"");
  CHECK(json_string(std::string("a\0b", 3)) == "\"a\\u0000b\"");
  CHECK(json_string("\x01\x1b[31m\x1f\x7f") == "\"\\u0001\\u001b[31m\\u001f\\u007f\"");
  // nothing below 0x20 is left raw
  for (int c = 0; c < 0x20; ++c) {
    const std::string out = json_string(std::string(1, static_cast<char>(c)));
    CHECK(out.find_first_of(std::string("\0\x01\x1f", 3)) == std::string::npos);
    CHECK(out.front() == '"');
    CHECK(out.back() == '"');
    CHECK(out.size() >= 4);
  }
}

TEST_CASE("json_string replaces each byte that is not UTF-8 by U+FFFD", "[list]") {
  const std::string fffd = "\xef\xbf\xbd";
  CHECK(json_string(bytes({'a', 0xff, 'b'})) == "\"a" + fffd + "b\"");
  CHECK(json_string(bytes({0xc3})) == "\"" + fffd + "\"");                           // cut short
  CHECK(json_string(bytes({0xc0, 0xaf})) == "\"" + fffd + fffd + "\"");              // overlong '/'
  CHECK(json_string(bytes({0xed, 0xa0, 0x80})) == "\"" + fffd + fffd + fffd + "\""); // surrogate
  CHECK(json_string(bytes({0xf4, 0x90, 0x80, 0x80})) ==
        "\"" + fffd + fffd + fffd + fffd + "\""); // above U+10FFFF
  CHECK(json_string(bytes({'"', 0x80, '\\'})) == "\"\\\"" + fffd + "\\\\\"");
}

TEST_CASE("flock_entries finds the holders and waiters of one file in /proc/locks order",
          "[list]") {
  const std::string text = "1: POSIX  ADVISORY  WRITE 700 fe:00:42 0 EOF\n"
                           "2: FLOCK  ADVISORY  READ 6394 fe:00:10953004 0 EOF\n"
                           "3: FLOCK  ADVISORY  READ 6395 fe:00:10953004 0 EOF\n"
                           "3: -> FLOCK  ADVISORY  WRITE 6399 fe:00:10953004 0 EOF\n"
                           "3:  -> FLOCK  ADVISORY  WRITE 6401 fe:00:10953004 0 EOF\n"
                           "3:   -> FLOCK  ADVISORY  READ 6402 fe:00:10953004 0 EOF\n"
                           "4: FLOCK  ADVISORY  WRITE 800 fe:00:10953005 0 EOF\n"
                           "5: FLOCK  ADVISORY  WRITE 801 fe:01:10953004 0 EOF\n"
                           "6: FLOCK  ADVISORY  WRITE 802 103:02:10953004 0 EOF\n"
                           "7: OFDLCK ADVISORY  READ -1 fe:00:10953004 0 EOF\n"
                           "8: LEASE  ACTIVE    READ 900 fe:00:10953004 0 EOF\n";
  CHECK(pids_of(loto::flock_entries(text, 0xfe, 0, 10953004)) ==
        "hR6394 hR6395 wW6399 wW6401 wR6402");
  CHECK(pids_of(loto::flock_entries(text, 0xfe, 0, 10953005)) == "hW800");
  CHECK(pids_of(loto::flock_entries(text, 0xfe, 1, 10953004)) == "hW801");
  CHECK(pids_of(loto::flock_entries(text, 0x103, 2, 10953004)) == "hW802");
  CHECK(pids_of(loto::flock_entries(text, 0xfe, 0, 42)).empty()); // POSIX locks are not ours
  CHECK(pids_of(loto::flock_entries(text, 0xfe, 0, 1)).empty());
}

TEST_CASE("flock_entries keeps pids it cannot see and skips lines of another shape", "[list]") {
  // A holder in another PID namespace shows as 0 or -1; no final newline; junk lines.
  const std::string text = "\n"
                           "garbage\n"
                           "1: FLOCK\n"
                           "2: FLOCK  ADVISORY  WRITE abc 00:1a:5 0 EOF\n"
                           "3: FLOCK  ADVISORY  WRITE 12 00:1a 0 EOF\n"
                           "4 FLOCK  ADVISORY  WRITE 13 00:1a:5 0 EOF\n"
                           "5: FLOCK  ADVISORY  WRITE 14 00:1a:5x 0 EOF\n"
                           "6: FLOCK  ADVISORY  WRITE -1 00:1a:5 0 EOF\n"
                           "6: -> FLOCK  ADVISORY  WRITE 0 00:1a:5 0 EOF";
  const auto entries = loto::flock_entries(text, 0, 0x1a, 5);
  CHECK(pids_of(entries) == "hW-1 wW0");
  CHECK(loto::flock_entries("", 0, 0, 0).empty());
}

TEST_CASE("start_ticks_of_stat reads field 22 whatever the command name holds", "[list]") {
  const std::string tail = " S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 "
                           "2580480 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n";
  CHECK(loto::start_ticks_of_stat("4242 (sleep)" + tail) == 123456ULL);
  CHECK(loto::start_ticks_of_stat("4242 (a) b) (c d)" + tail) == 123456ULL);
  CHECK(loto::start_ticks_of_stat("4242 ()" + tail) == 123456ULL);
  CHECK_FALSE(loto::start_ticks_of_stat("4242 (sleep) S 1 42"));
  CHECK_FALSE(loto::start_ticks_of_stat("no parenthesis at all"));
  CHECK_FALSE(loto::start_ticks_of_stat(""));
  // the real thing: this process started after boot and before now
  const std::string own = "/proc/" + std::to_string(::getpid()) + "/stat";
  std::ifstream file(own);
  std::string text;
  REQUIRE(std::getline(file, text));
  CHECK(loto::start_ticks_of_stat(text).has_value());
}

TEST_CASE("iso8601_utc_ms writes UTC with milliseconds", "[list]") {
  using Clock = std::chrono::system_clock;
  CHECK(loto::iso8601_utc_ms(Clock::time_point{}) == "1970-01-01T00:00:00.000Z");
  CHECK(loto::iso8601_utc_ms(Clock::time_point{} + 1'796'018'400s + 120ms + 999us) ==
        "2026-11-30T06:00:00.120Z");
}

TEST_CASE("json_seconds writes a duration as a JSON number of seconds", "[list]") {
  CHECK(loto::json_seconds(0s) == "0");
  CHECK(loto::json_seconds(5s) == "5");
  CHECK(loto::json_seconds(1500ms) == "1.5");
  CHECK(loto::json_seconds(250ms) == "0.25");
  CHECK(loto::json_seconds(1ns) == "0.000000001");
  CHECK(loto::json_seconds(6h) == "21600");
}

TEST_CASE("describe_state names every holder of a shared lock and counts the waiters", "[list]") {
  loto::LockState state;
  CHECK(loto::describe_state(state) == "free");
  loto::LockParty first;
  first.pid = 42;
  first.command = "sleep 10";
  first.mode = "exclusive";
  state.holders.push_back(first);
  CHECK(loto::describe_state(state) == "held by pid 42: sleep 10");
  state.waiters.push_back(first);
  state.waiters.push_back(first);
  CHECK(loto::describe_state(state) == "held by pid 42: sleep 10, 2 waiting");
  state.holders.front().mode = "shared";
  loto::LockParty second;
  second.pid = 43;
  second.mode = "shared";
  state.holders.push_back(second);
  CHECK(loto::describe_state(state) ==
        "held (shared) by pid 42: sleep 10; pid 43 (exited; a process it started holds the "
        "lock), 2 waiting");
  loto::LockState counted;
  counted.waiters_listed = false;
  counted.waiting = 3;
  loto::LockParty fleet;
  fleet.description = "pid 7 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh";
  counted.holders.push_back(fleet);
  CHECK(loto::describe_state(counted) ==
        "held by pid 7 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh, 3 waiting");
}

TEST_CASE("the option --json goes with --list only", "[list]") {
  CHECK(loto::parse_cli({"--list", "--json"}).action == loto::Action::list_json);
  CHECK(loto::parse_cli({"--json", "--list"}).action == loto::Action::list_json);
  CHECK(loto::parse_cli({"--list"}).action == loto::Action::list);
  CHECK(loto::parse_cli({"--json", "--help"}).action == loto::Action::help);
  for (const auto& args : std::vector<std::vector<std::string>>{{"--json"},
                                                                {"--json", "-L", "x", "true"},
                                                                {"--check-config", "--json"},
                                                                {"--show-config", "--json"}}) {
    try {
      (void)loto::parse_cli(args);
      FAIL("parse_cli accepted --json without --list");
    } catch (const loto::Error& error) {
      CHECK(error.exit_code() == 64);
      CHECK(std::string(error.what()) ==
            "option --json is only valid with --list (see 'loto --help')");
    }
  }
  try {
    (void)loto::parse_cli({"--list", "--json=yes"});
    FAIL("parse_cli accepted --json=yes");
  } catch (const loto::Error& error) {
    CHECK(error.exit_code() == 64);
  }
}
