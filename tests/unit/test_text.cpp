// Unit tests for text.hpp: escaping, quoting, UTF-8 checks, suggestions, names and paths.
#include "text.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using loto::closest_match;
using loto::did_you_mean;
using loto::escape;
using loto::find_invalid_utf8;
using loto::is_valid_resource_name;
using loto::join_command;
using loto::path_problem;
using loto::quoted;
using Words = std::vector<std::string>;

namespace {

std::string bytes(std::initializer_list<unsigned char> list) {
  std::string out;
  for (const unsigned char c : list) {
    out += static_cast<char>(c);
  }
  return out;
}

} // namespace

TEST_CASE("escape leaves printable ASCII and valid UTF-8 alone", "[text]") {
  CHECK(escape("") == "");
  CHECK(escape("hello world") == "hello world");
  CHECK(escape("it's \"quoted\" ~!@#$%^&*()") == "it's \"quoted\" ~!@#$%^&*()");
  CHECK(escape("caf\xc3\xa9") == "caf\xc3\xa9");                     // 2 bytes
  CHECK(escape("\xe2\x82\xac 5") == "\xe2\x82\xac 5");               // 3 bytes
  CHECK(escape("\xf0\x9f\x94\x92 lock") == "\xf0\x9f\x94\x92 lock"); // 4 bytes
  CHECK(escape("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf");           // U+10FFFF
  CHECK(escape("\xc2\x80") == "\xc2\x80");                           // U+0080
}

TEST_CASE("escape writes control characters and backslashes as escapes", "[text]") {
  CHECK(escape("a\nb") == "a\\nb");
  CHECK(escape("a\tb") == "a\\tb");
  CHECK(escape("a\rb") == "a\\rb");
  CHECK(escape("a\\b") == "a\\\\b");
  CHECK(escape("\\n") == "\\\\n"); // a literal backslash-n stays distinguishable from a newline
  CHECK(escape("\x1b[31m") == "\\x1b[31m");
  CHECK(escape("\x7f") == "\\x7f");
  CHECK(escape("\x01\x1f") == "\\x01\\x1f");
  CHECK(escape(std::string_view("a\0b", 3)) == "a\\x00b");
  // Every byte below 0x20 and 0x7f comes out escaped: no raw control byte survives.
  for (int c = 0; c < 0x80; ++c) {
    const std::string in(1, static_cast<char>(c));
    const std::string out = escape(in);
    INFO("byte " << c);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      CHECK(out.size() >= 2);
      CHECK(out[0] == '\\');
    } else {
      CHECK(out == in);
    }
  }
}

TEST_CASE("escape writes invalid UTF-8 bytes as hex escapes", "[text]") {
  CHECK(escape(bytes({0xff})) == "\\xff");
  CHECK(escape(bytes({'a', 0x80, 'b'})) == "a\\x80b");           // lone continuation byte
  CHECK(escape(bytes({0xc3})) == "\\xc3");                       // truncated at the end
  CHECK(escape(bytes({0xc3, 'a'})) == "\\xc3a");                 // truncated before ASCII
  CHECK(escape(bytes({0xe2, 0x82})) == "\\xe2\\x82");            // 3-byte sequence cut short
  CHECK(escape(bytes({0xc0, 0xaf})) == "\\xc0\\xaf");            // overlong '/'
  CHECK(escape(bytes({0xe0, 0x80, 0xaf})) == "\\xe0\\x80\\xaf"); // overlong 3-byte
  CHECK(escape(bytes({0xed, 0xa0, 0x80})) == "\\xed\\xa0\\x80"); // surrogate U+D800
  CHECK(escape(bytes({0xf4, 0x90, 0x80, 0x80})) == "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
  CHECK(escape(bytes({0xfe, 0xc3, 0xa9})) == "\\xfe\xc3\xa9"); // bad byte, then a valid one
  // The output is always valid UTF-8 with no control bytes.
  for (int c = 0x80; c < 0x100; ++c) {
    const std::string out = escape(std::string(1, static_cast<char>(c)) + "x");
    INFO("byte " << c);
    CHECK(out.size() == 5);
    CHECK_FALSE(find_invalid_utf8(out).has_value());
  }
}

TEST_CASE("quoted wraps the escaped text in single quotes", "[text]") {
  CHECK(quoted("cpu") == "'cpu'");
  CHECK(quoted("") == "''");
  CHECK(quoted("a b\n") == "'a b\\n'");
  CHECK(quoted(bytes({'x', 0xff})) == "'x\\xff'");
}

TEST_CASE("join_command quotes only the words that need it", "[text]") {
  CHECK(join_command({}) == "");
  CHECK(join_command({"ls", "-la", "/tmp"}) == "ls -la /tmp");
  CHECK(join_command({"echo", "a b"}) == "echo 'a b'");
  CHECK(join_command({"echo", ""}) == "echo ''");
  CHECK(join_command({"printf", "a\nb"}) == "printf 'a\\nb'");
  CHECK(join_command({"printf", "a\\b"}) == "printf 'a\\\\b'");
  CHECK(join_command({"say", "\"hi\""}) == "say '\"hi\"'");
  CHECK(join_command({"x", "caf\xc3\xa9"}) == "x 'caf\xc3\xa9'");
  CHECK(join_command({"x", bytes({0xff})}) == "x '\\xff'");
  CHECK(join_command({"a=b", "--opt=1,2"}) == "a=b --opt=1,2");
  // "a b" and "a" "b" stay distinguishable.
  CHECK(join_command({"a b"}) != join_command({"a", "b"}));
}

// An argument containing single quotes must not pose as several arguments, or audit
// records could be forged.
TEST_CASE("join_command keeps words with single quotes distinguishable", "[text]") {
  CHECK(join_command({"a b' 'c d"}) != join_command({"a b", "c d"}));
  CHECK(join_command({"x' 'y"}) != join_command({"x", "y"}));
  CHECK(join_command({"it's"}) == "'it\\'s'");
  CHECK(quoted("a'b") == "'a\\'b'");
}

TEST_CASE("join puts the separator between items only", "[text]") {
  CHECK(loto::join({}, ", ") == "");
  CHECK(loto::join({"a"}, ", ") == "a");
  CHECK(loto::join({"a", "b", "c"}, ", ") == "a, b, c");
  CHECK(loto::join({"a", "b"}, "") == "ab");
  CHECK(loto::join({"/x", "/y"}, ",") == "/x,/y");
}

TEST_CASE("parse_number reads the whole text in T's range or nothing", "[text]") {
  using loto::parse_number;
  CHECK(parse_number<int>("42") == 42);
  CHECK(parse_number<int>("-7") == -7);
  CHECK(parse_number<unsigned>("fe", 16) == 0xfeU);
  CHECK(parse_number<std::uint64_t>("18446744073709551615") == UINT64_MAX);
  CHECK_FALSE(parse_number<std::uint64_t>("18446744073709551616"));
  CHECK_FALSE(parse_number<unsigned>("-1"));
  CHECK_FALSE(parse_number<int>(""));
  CHECK_FALSE(parse_number<int>("+1"));
  CHECK_FALSE(parse_number<int>(" 1"));
  CHECK_FALSE(parse_number<int>("1 "));
  CHECK_FALSE(parse_number<int>("12x"));
  CHECK_FALSE(parse_number<int>("2147483648"));
}

TEST_CASE("parse_exit_code reads 0 to 255 written as 1 to 3 digits", "[text]") {
  CHECK(loto::parse_exit_code("0") == std::optional<int>(0));
  CHECK(loto::parse_exit_code("1") == std::optional<int>(1));
  CHECK(loto::parse_exit_code("75") == std::optional<int>(75));
  CHECK(loto::parse_exit_code("255") == std::optional<int>(255));
  CHECK(loto::parse_exit_code("007") == std::optional<int>(7));
  for (const std::string text : {"",
                                 "256",
                                 "999",
                                 "-1",
                                 "+1",
                                 "0255",
                                 "1000",
                                 " 1",
                                 "1 ",
                                 "1.0",
                                 "0x1",
                                 "abc",
                                 "99999999999999999999",
                                 "\xd9\xa1"}) {
    INFO("text: " << text);
    CHECK_FALSE(loto::parse_exit_code(text).has_value());
  }
}

TEST_CASE("find_invalid_utf8 returns the offset of the first bad byte", "[text]") {
  CHECK_FALSE(find_invalid_utf8("").has_value());
  CHECK_FALSE(find_invalid_utf8("plain ascii \x01\x7f").has_value());
  CHECK_FALSE(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92").has_value());
  CHECK_FALSE(find_invalid_utf8(bytes({0xef, 0xbf, 0xbf})).has_value());       // U+FFFF
  CHECK_FALSE(find_invalid_utf8(bytes({0xed, 0x9f, 0xbf})).has_value());       // U+D7FF
  CHECK_FALSE(find_invalid_utf8(bytes({0xee, 0x80, 0x80})).has_value());       // U+E000
  CHECK_FALSE(find_invalid_utf8(bytes({0xf4, 0x8f, 0xbf, 0xbf})).has_value()); // U+10FFFF

  CHECK(find_invalid_utf8(bytes({'a', 'b', 0xff})) == std::optional<std::size_t>(2));
  CHECK(find_invalid_utf8(bytes({0x80})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8("ok" + bytes({0xc3})) == std::optional<std::size_t>(2));
  CHECK(find_invalid_utf8("a" + bytes({0xe2, 0x82})) == std::optional<std::size_t>(1));
  CHECK(find_invalid_utf8(bytes({0xc3, 0xa9, 0xc3, 0x28})) == std::optional<std::size_t>(2));
  // Overlong encodings.
  CHECK(find_invalid_utf8(bytes({0xc0, 0x80})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xc1, 0xbf})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xe0, 0x9f, 0xbf})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xf0, 0x8f, 0xbf, 0xbf})) == std::optional<std::size_t>(0));
  // Surrogates U+D800..U+DFFF.
  CHECK(find_invalid_utf8("x" + bytes({0xed, 0xa0, 0x80})) == std::optional<std::size_t>(1));
  CHECK(find_invalid_utf8(bytes({0xed, 0xbf, 0xbf})) == std::optional<std::size_t>(0));
  // Beyond U+10FFFF and bytes that never start a sequence.
  CHECK(find_invalid_utf8(bytes({0xf4, 0x90, 0x80, 0x80})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xf5, 0x80, 0x80, 0x80})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xf8, 0x88, 0x80, 0x80, 0x80})) == std::optional<std::size_t>(0));
  CHECK(find_invalid_utf8(bytes({0xfe})) == std::optional<std::size_t>(0));
}

TEST_CASE("closest_match suggests only likely typos", "[text]") {
  const Words options{"lock", "list", "wait", "timeout", "verbose"};
  CHECK(closest_match("lokc", options) == std::optional<std::string>("lock"));
  CHECK(closest_match("lock", options) == std::optional<std::string>("lock"));
  CHECK(closest_match("wayt", options) == std::optional<std::string>("wait"));
  // On a tie the earlier candidate wins: "wiat" is two edits from both "list" and "wait".
  CHECK(closest_match("wiat", options) == std::optional<std::string>("list"));
  CHECK(closest_match("timout", options) == std::optional<std::string>("timeout"));
  CHECK(closest_match("verbos", options) == std::optional<std::string>("verbose"));
  CHECK_FALSE(closest_match("frobnicate", options).has_value());
  CHECK_FALSE(closest_match("zzzz", options).has_value());
  CHECK_FALSE(closest_match("lock", {}).has_value());
  // Short words allow fewer edits: one letter of "ab" is not a typo of "xy".
  CHECK_FALSE(closest_match("ab", {"xy"}).has_value());
  CHECK(closest_match("ab", {"ax"}) == std::optional<std::string>("ax"));
  // The closest one wins, not the first close one.
  CHECK(closest_match("local1", {"local0", "local1"}) == std::optional<std::string>("local1"));
  CHECK(closest_match("cpux", {"cpu", "net"}) == std::optional<std::string>("cpu"));

  CHECK(did_you_mean("lokc", options) == ", did you mean 'lock'?");
  CHECK(did_you_mean("zzzz", options) == "");
}

TEST_CASE("is_valid_resource_name allows 1 to 64 of A-Za-z0-9._- not starting with ._-", "[text]") {
  for (const std::string& name : Words{"cpu",
                                       "net",
                                       "a",
                                       "Z",
                                       "0",
                                       "db-1",
                                       "db_1",
                                       "db.main",
                                       "A.b_c-9",
                                       std::string(64, 'x'),
                                       "9lives"}) {
    INFO("name: " << name);
    CHECK(is_valid_resource_name(name));
  }
  for (const std::string& name : Words{"",
                                       std::string(65, 'x'),
                                       ".hidden",
                                       "_x",
                                       "-x",
                                       "a b",
                                       "a/b",
                                       "/",
                                       "a:b",
                                       "a,b",
                                       "caf\xc3\xa9",
                                       "a\nb",
                                       "a*",
                                       "$x",
                                       "..",
                                       "a\\b"}) {
    INFO("name: " << name);
    CHECK_FALSE(is_valid_resource_name(name));
  }
  CHECK_FALSE(is_valid_resource_name(std::string_view("a\0b", 3)));
}

TEST_CASE("path_problem explains why a path is not usable", "[text]") {
  for (const std::string path : {"/var/lock",
                                 "/var/lock/loto.cpu",
                                 "/a",
                                 "/a//b",
                                 "/a/./b",
                                 "/a/..b",
                                 "/a/b..",
                                 "/a/.../b",
                                 "/with space/x",
                                 "/caf\xc3\xa9"}) {
    INFO("path: " << path);
    CHECK_FALSE(path_problem(path).has_value());
  }
  CHECK(path_problem("") == std::optional<std::string>("is not an absolute path"));
  CHECK(path_problem("var/lock") == std::optional<std::string>("is not an absolute path"));
  CHECK(path_problem("./x") == std::optional<std::string>("is not an absolute path"));
  CHECK(path_problem("~/x") == std::optional<std::string>("is not an absolute path"));
  CHECK(path_problem("/") == std::optional<std::string>("is the root directory"));
  CHECK(path_problem("/a/../b") == std::optional<std::string>("contains a '..' component"));
  CHECK(path_problem("/..") == std::optional<std::string>("contains a '..' component"));
  CHECK(path_problem("/a/..") == std::optional<std::string>("contains a '..' component"));
  CHECK(path_problem("/a/../") == std::optional<std::string>("contains a '..' component"));
  CHECK(path_problem("/a\nb") == std::optional<std::string>("contains control characters"));
  CHECK(path_problem("/a\tb") == std::optional<std::string>("contains control characters"));
  CHECK(path_problem("/a\x7f") == std::optional<std::string>("contains control characters"));
  CHECK(path_problem(std::string_view("/a\0b", 4)) ==
        std::optional<std::string>("contains control characters"));
  CHECK_FALSE(path_problem("/" + std::string(4094, 'x')).has_value());
  CHECK(path_problem("/" + std::string(4095, 'x')) == std::optional<std::string>("is too long"));
}

TEST_CASE("read_to_end reads a whole pipe whatever the size hint, and stops past the limit",
          "[text]") {
  const auto through_pipe = [](const std::string& data, std::size_t hint, std::size_t limit) {
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    REQUIRE(::write(fds[1], data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fds[1]);
    auto text = loto::read_to_end(fds[0], hint, limit);
    ::close(fds[0]);
    return text;
  };
  const std::string data(5000, 'x');
  CHECK(through_pipe(data, 0, 60000) == data);
  CHECK(through_pipe(data, 4999, 60000) == data);
  CHECK(through_pipe(data, 5000, 60000) == data);
  CHECK(through_pipe(data, 100000, 60000) == data);
  CHECK(through_pipe("", 0, 10) == std::string());
  CHECK(through_pipe(data, 0, 5000) == data); // exactly at the limit
  const auto over = through_pipe(data, 0, 4999);
  REQUIRE(over);
  CHECK(over->size() == 5000); // one byte past the limit says "too large"
  CHECK_FALSE(loto::read_to_end(-1, 0, 10));
}
