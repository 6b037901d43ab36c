// Unit tests for log.hpp: format_record(), the syslog audit record format.
#include "log.hpp"
#include "text.hpp"

#include <catch2/catch.hpp>

#include <string>

using loto::Fields;
using loto::format_record;
using loto::k_max_record;

namespace {

const std::string k_mark = loto::k_truncation_mark;

bool ends_with_mark(const std::string& record) {
  return record.size() >= k_mark.size() &&
         record.compare(record.size() - k_mark.size(), k_mark.size(), k_mark) == 0;
}

bool has_control_bytes(const std::string& text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return true;
    }
  }
  return false;
}

} // namespace

TEST_CASE("format_record writes event=NAME then key=value words in order", "[log]") {
  CHECK(format_record("started", {}) == "event=started");
  CHECK(format_record("acquired",
                      {{"resource", "cpu"}, {"lock", "/var/lock/loto.cpu"}, {"waited_ms", "12"}}) ==
        "event=acquired resource=cpu lock=/var/lock/loto.cpu waited_ms=12");
  CHECK(format_record("finished", {{"status", "0"}, {"held_ms", "1500"}, {"pid", "42"}}) ==
        "event=finished status=0 held_ms=1500 pid=42");
  CHECK(format_record("x", {{"path", "a=b,c:d"}}) == "event=x path=a=b,c:d");
}

TEST_CASE("format_record quotes values with spaces or special characters", "[log]") {
  CHECK(format_record("x", {{"command", "ls -la"}}) == "event=x command=\"ls -la\"");
  CHECK(format_record("x", {{"empty", ""}}) == "event=x empty=\"\"");
  CHECK(format_record("x", {{"q", "say \"hi\""}}) == "event=x q=\"say \\\"hi\\\"\"");
  CHECK(format_record("x", {{"s", "it's"}}) == "event=x s=\"it's\"");
  CHECK(format_record("x", {{"b", "a\\b"}}) == "event=x b=\"a\\\\b\"");
  CHECK(format_record("x", {{"u", "caf\xc3\xa9"}}) == "event=x u=\"caf\xc3\xa9\"");
  CHECK(format_record("x", {{"a", "b c"}, {"d", "e"}}) == "event=x a=\"b c\" d=e");
  // A value cannot pose as further fields.
  CHECK(format_record("x", {{"user", "bob resource=cpu"}}) == "event=x user=\"bob resource=cpu\"");
  CHECK(format_record("x", {{"user", "bob\" resource=\"cpu"}}) ==
        "event=x user=\"bob\\\" resource=\\\"cpu\"");
}

TEST_CASE("format_record escapes control characters and invalid UTF-8", "[log]") {
  CHECK(format_record("x", {{"arg", "a\nb"}}) == "event=x arg=\"a\\nb\"");
  CHECK(format_record("x", {{"arg", "a\tb\r"}}) == "event=x arg=\"a\\tb\\r\"");
  CHECK(format_record("x", {{"arg", "\x1b[2J"}}) == "event=x arg=\"\\x1b[2J\"");
  CHECK(format_record("x", {{"arg", std::string("a\0b", 3)}}) == "event=x arg=\"a\\x00b\"");
  CHECK(format_record("x", {{"arg", "\xff\xfe"}}) == "event=x arg=\"\\xff\\xfe\"");
  CHECK(format_record("x", {{"arg", "\xc0\xaf"}}) == "event=x arg=\"\\xc0\\xaf\"");
  // A forged second record cannot be smuggled in with a newline.
  const std::string forged = format_record("x", {{"arg", "a\nevent=acquired resource=cpu"}});
  CHECK(forged.find('\n') == std::string::npos);
  // No byte value survives raw as a control character, and the record stays valid UTF-8.
  for (int c = 0; c < 0x100; ++c) {
    const std::string record =
        format_record("x", {{"v", std::string(1, static_cast<char>(c)) + "y"}});
    INFO("byte " << c << ": " << record);
    CHECK_FALSE(has_control_bytes(record));
    CHECK_FALSE(loto::find_invalid_utf8(record).has_value());
  }
}

TEST_CASE("format_record keeps records up to k_max_record whole", "[log]") {
  const std::string head = "event=x v=";
  const std::string exact =
      format_record("x", {{"v", std::string(k_max_record - head.size(), 'a')}});
  CHECK(exact.size() == k_max_record);
  CHECK_FALSE(ends_with_mark(exact));
  CHECK(exact == head + std::string(k_max_record - head.size(), 'a'));
}

TEST_CASE("format_record truncates long records with the mark", "[log]") {
  const std::string head = "event=x v=";
  const std::string one_over =
      format_record("x", {{"v", std::string(k_max_record - head.size() + 1, 'a')}});
  CHECK(one_over.size() == k_max_record);
  CHECK(ends_with_mark(one_over));
  CHECK(one_over == head + std::string(k_max_record - k_mark.size() - head.size(), 'a') + k_mark);

  const std::string huge = format_record("x", {{"v", std::string(100000, 'b')}, {"after", "1"}});
  CHECK(huge.size() == k_max_record);
  CHECK(ends_with_mark(huge));
  CHECK(huge.rfind("event=x v=bbbb", 0) == 0);
  CHECK(huge.find("after=") == std::string::npos);

  // Escaping can push a record over the cap: the limit is on the escaped record.
  const std::string escaped = format_record("x", {{"v", std::string(1500, '\n')}});
  CHECK(escaped.size() == k_max_record);
  CHECK(ends_with_mark(escaped));
  CHECK_FALSE(has_control_bytes(escaped));
}

TEST_CASE("format_record truncation never splits a UTF-8 sequence", "[log]") {
  for (const std::string symbol : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x92"}) {
    for (std::size_t shift = 0; shift < 4; ++shift) {
      const std::string value = std::string(shift, 'a') + [&] {
        std::string repeated;
        while (repeated.size() < 3 * k_max_record) {
          repeated += symbol;
        }
        return repeated;
      }();
      const std::string record = format_record("x", {{"v", value}});
      INFO("symbol bytes " << symbol.size() << " shift " << shift);
      CHECK(record.size() <= k_max_record);
      CHECK(record.size() > k_max_record - symbol.size());
      CHECK(ends_with_mark(record));
      CHECK_FALSE(loto::find_invalid_utf8(record).has_value());
      // Only whole symbols before the mark.
      const std::string body = record.substr(0, record.size() - k_mark.size());
      const std::string prefix = "event=x v=\"" + std::string(shift, 'a');
      REQUIRE(body.rfind(prefix, 0) == 0);
      CHECK((body.size() - prefix.size()) % symbol.size() == 0);
    }
  }
  // The exact cut for 2-byte symbols: the record head is 11 bytes, so a symbol straddles
  // the cut at k_max_record - mark and is dropped whole.
  std::string two_byte;
  for (int i = 0; i < 3000; ++i) {
    two_byte += "\xc3\xa9";
  }
  const std::string record = format_record("x", {{"v", two_byte}});
  CHECK(record.size() == k_max_record - 1);
  CHECK(ends_with_mark(record));
}

TEST_CASE("name_in_passwd finds the first entry of a uid, by whole field", "[log]") {
  const std::string passwd = "root:x:0:0:root:/root:/bin/bash\n"
                             "+nisuser::10::::\n"
                             "-other::11::::\n"
                             "broken line without colons\n"
                             "short:x\n"
                             ":x:12:12::/:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "user100:x:100:100::/home/u:/bin/sh\n"
                             "toor:x:0:0:second root:/root:/bin/sh\n"
                             "last:x:65534:65534::/:/bin/sh";
  CHECK(loto::name_in_passwd(passwd, 0) == "root");
  CHECK(loto::name_in_passwd(passwd, 1) == "daemon");
  CHECK(loto::name_in_passwd(passwd, 100) == "user100");
  CHECK(loto::name_in_passwd(passwd, 65534) == "last"); // no final newline
  // "10" is not a prefix match of "100"; NIS lines and a line without a name are skipped
  CHECK_FALSE(loto::name_in_passwd(passwd, 10));
  CHECK_FALSE(loto::name_in_passwd(passwd, 11));
  CHECK_FALSE(loto::name_in_passwd(passwd, 12));
  CHECK_FALSE(loto::name_in_passwd(passwd, 4242));
  CHECK_FALSE(loto::name_in_passwd("", 0));
}
