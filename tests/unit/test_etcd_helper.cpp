// Unit tests for loto-etcd (src/lock/etcd/helper). The pure parts: base64, prefix ranges,
// lease IDs, endpoint URLs, holder records, the command line, and reading etcd's JSON
// answers the way the v3 gateway of etcd 3.4.23 sends them (int64 as strings, defaults
// left out). Then the HTTP transport (Transfer, Multi) against a small HTTP server on
// loopback, run by the test itself on a thread of its own.
#include "fake_http_server.hpp"
#include "lock/etcd/helper/channel.hpp"
#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/etcd_api.hpp"
#include "lock/etcd/helper/etcd_client.hpp"
#include "lock/etcd/helper/holder.hpp"
#include "lock/etcd/helper/http.hpp"
#include "lock/etcd/helper/options.hpp"
#include "lock/etcd/helper/semaphore.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace loto::etcd_helper;
using namespace loto::etcd_helper::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

Options parse(std::initializer_list<std::string_view> words) {
  return parse_options(std::vector<std::string_view>(words));
}

// The error message parse() throws for `words`.
std::string usage_error(std::initializer_list<std::string_view> words) {
  try {
    parse(words);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "(no error)";
}

std::string b64(std::string_view text) {
  return base64_encode(text);
}

} // namespace

// ---- codec

TEST_CASE("base64 encodes with padding like base64(1)", "[codec]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("loto/job1/2040a2165fccda13") == "bG90by9qb2IxLzIwNDBhMjE2NWZjY2RhMTM=");
  CHECK(base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("base64 decodes what it encodes, with or without padding", "[codec]") {
  CHECK(base64_decode("bG90by9qb2IxLzIwNDBhMjE2NWZjY2RhMTM=") == "loto/job1/2040a2165fccda13");
  CHECK(base64_decode("Zm9vYg") == "foob");
  CHECK(base64_decode("") == "");
  const std::string all_bytes = [] {
    std::string bytes;
    for (int i = 0; i < 256; ++i) {
      bytes += static_cast<char>(i);
    }
    return bytes;
  }();
  CHECK(base64_decode(base64_encode(all_bytes)) == all_bytes);
}

TEST_CASE("base64 rejects what is not base64", "[codec]") {
  CHECK_FALSE(base64_decode("Zm9v!"));
  CHECK_FALSE(base64_decode("Zm=9v"));
  CHECK_FALSE(base64_decode("Z"));
  CHECK_FALSE(base64_decode("Zm9v\n"));
}

TEST_CASE("prefix_range_end increments the last byte", "[codec]") {
  CHECK(prefix_range_end("loto/job/") == "loto/job0");
  CHECK(prefix_range_end("a") == "b");
  CHECK(prefix_range_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_range_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(prefix_range_end("") == std::string(1, '\0'));
}

TEST_CASE("lease_hex is Go's %x: lowercase, no padding", "[codec]") {
  CHECK(lease_hex(2324035624703416851) == "2040a2165fccda13");
  CHECK(lease_hex(255) == "ff");
  CHECK(lease_hex(1) == "1");
}

TEST_CASE("parse_int64 takes decimal int64 only", "[codec]") {
  CHECK(parse_int64("0") == 0);
  CHECK(parse_int64("9223372036854775807") == INT64_MAX);
  CHECK(parse_int64("-1") == -1);
  CHECK_FALSE(parse_int64(""));
  CHECK_FALSE(parse_int64("12a"));
  CHECK_FALSE(parse_int64(" 1"));
  CHECK_FALSE(parse_int64("9223372036854775808"));
}

TEST_CASE("one_line turns control characters into spaces", "[codec]") {
  CHECK(one_line("a\tb\nc\rd") == "a b c d");
  CHECK(one_line("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(one_line(std::string("x\0y", 3)) == "x y");
}

TEST_CASE("iso8601_utc", "[codec]") {
  CHECK(iso8601_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(iso8601_utc(1796018400) == "2026-11-30T06:00:00Z");
}

TEST_CASE("parse_endpoint_url: scheme, host, port", "[codec][url]") {
  const EndpointUrl plain = parse_endpoint_url("http://10.0.0.1:2379");
  CHECK_FALSE(plain.https);
  CHECK(plain.host == "10.0.0.1");
  CHECK(plain.port == 2379);

  const EndpointUrl named = parse_endpoint_url("https://etcd-1.example.org:12379/");
  CHECK(named.https);
  CHECK(named.host == "etcd-1.example.org");
  CHECK(named.port == 12379);

  CHECK(parse_endpoint_url("http://etcd1").port == k_default_etcd_port);
  CHECK(parse_endpoint_url("HTTP://Etcd1:1").host == "Etcd1");
  CHECK(parse_endpoint_url("http://h:65535").port == 65535);
  CHECK(parse_endpoint_url("http://h:00080").port == 80);
}

TEST_CASE("parse_endpoint_url: IPv6 in brackets, with or without port and zone", "[codec][url]") {
  const EndpointUrl v6 = parse_endpoint_url("http://[fd00::1]:2380");
  CHECK(v6.host == "fd00::1");
  CHECK(v6.port == 2380);
  CHECK(parse_endpoint_url("http://[::1]").host == "::1");
  CHECK(parse_endpoint_url("http://[::1]").port == 2379);
  CHECK(parse_endpoint_url("http://[::ffff:10.0.0.1]:1").host == "::ffff:10.0.0.1");
  CHECK(parse_endpoint_url("http://[fe80::1%25eth0]:2379").host == "fe80::1%eth0");
  CHECK(parse_endpoint_url("http://[fe80::1%eth0]").host == "fe80::1%eth0");
}

TEST_CASE("parse_endpoint_url: what it refuses, and why", "[codec][url]") {
  const auto why = [](std::string_view url) -> std::string {
    try {
      parse_endpoint_url(url);
    } catch (const BadUrl& bad) {
      return bad.what();
    }
    return "(accepted)";
  };
  CHECK(why("10.0.0.1:2379") == "expected http:// or https://");
  CHECK(why("ftp://h:1") == "expected http:// or https://");
  CHECK(why("http:/h:1") == "expected http:// or https://");
  CHECK(why("http://h:2379/v3") == "a path, query or fragment is not supported");
  CHECK(why("http://h:2379?x=1") == "a path, query or fragment is not supported");
  CHECK(why("http://h#f") == "a path, query or fragment is not supported");
  CHECK(why("http://h:2379//") == "a path, query or fragment is not supported");
  CHECK(why("http://user:pw@h:2379") == "user info is not supported");
  CHECK(why("http://") == "no host");
  CHECK(why("http://:2379") == "no host");
  CHECK(why("http://h:") == "empty port");
  CHECK(why("http://[::1]:") == "empty port");
  CHECK(why("http://h:0") == "bad port '0'");
  CHECK(why("http://h:65536") == "bad port '65536'");
  CHECK(why("http://h:123456") == "bad port '123456'");
  CHECK(why("http://h:23x") == "bad port '23x'");
  CHECK(why("http://h:-1") == "bad port '-1'");
  CHECK(why("http://h:1:2") == "bad port '1:2'");
  CHECK(why("http://h st:1") == "bad host name 'h st'");
  CHECK(why("http://h%41:1") == "bad host name 'h%41'");
  CHECK(why("http://::1:2379") == "no host");
  CHECK(why("http://[::1:2379") == "no ']' after the IPv6 address");
  CHECK(why("http://[]:2379") == "bad IPv6 address in brackets");
  CHECK(why("http://[10.0.0.1]:2379") == "bad IPv6 address in brackets");
  CHECK(why("http://[fd00::g]") == "bad IPv6 address in brackets");
  CHECK(why("http://[::1]2379") == "expected ':' and a port after the host");
  CHECK(why("http://[fe80::1%]") == "bad IPv6 zone");
  CHECK(why("http://[fe80::1%25]") == "bad IPv6 zone");
  CHECK(why("http://[fe80::1%25a/b]") == "a path, query or fragment is not supported");
}

TEST_CASE("host_and_port is what the Host header says", "[codec][url]") {
  CHECK(host_and_port(parse_endpoint_url("http://10.0.0.1:2379")) == "10.0.0.1:2379");
  CHECK(host_and_port(parse_endpoint_url("http://etcd1")) == "etcd1:2379");
  CHECK(host_and_port(parse_endpoint_url("http://[fd00::1]:1")) == "[fd00::1]:1");
  CHECK(host_and_port(parse_endpoint_url("http://[fe80::1%25eth0]")) == "[fe80::1]:2379");
}

// ---- holder records

TEST_CASE("holder_record_json writes every field and the time", "[holder]") {
  const HolderRecord record{"web1", 4242, "root", "backup.sh --full"};
  const json written = json::parse(holder_record_json(record, 1796018400));
  CHECK(written == json{{"host", "web1"},
                        {"pid", 4242},
                        {"user", "root"},
                        {"command", "backup.sh --full"},
                        {"since", "2026-11-30T06:00:00Z"}});
}

TEST_CASE("holder_record_json survives bytes that are not UTF-8", "[holder]") {
  const HolderRecord record{"web1", std::nullopt, "", "cat \xff"};
  const json written = json::parse(holder_record_json(record, 0));
  CHECK(written["command"] == "cat \xef\xbf\xbd");
  CHECK_FALSE(written.contains("pid"));
  CHECK_FALSE(written.contains("user"));
}

TEST_CASE("describe_holder formats a record for people", "[holder]") {
  const HolderRecord record{"web1", 4242, "root", "backup.sh --full"};
  CHECK(describe_holder(holder_record_json(record, 1796018400)) ==
        "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh --full");
  CHECK(describe_holder(R"({"host":"db2","command":"x"})") == "on db2: x");
  CHECK(describe_holder(R"({"pid":"17"})") == "pid 17");
}

TEST_CASE("describe_holder keeps the line one line", "[holder]") {
  CHECK(describe_holder(R"({"pid":1,"host":"a\tb","command":"x\ny"})") == "pid 1 on a b: x y");
}

TEST_CASE("describe_holder without a record of ours", "[holder]") {
  CHECK(describe_holder("") == k_unknown_holder); // etcdctl lock
  CHECK(describe_holder("web1:4242") == k_unknown_holder);
  CHECK(describe_holder("[1,2]") == k_unknown_holder);
  CHECK(describe_holder("{}") == k_unknown_holder);
  CHECK(describe_holder(R"({"other":"x"})") == k_unknown_holder);
}

TEST_CASE("holder_fields gives each field of a record, for --list --json", "[holder]") {
  const HolderRecord record{"web1", 4242, "root", "backup.sh --full"};
  const auto fields = loto::etcd_helper::holder_fields(holder_record_json(record, 1796018400));
  CHECK(fields.host == "web1");
  CHECK(fields.pid == "4242");
  CHECK(fields.user == "root");
  CHECK(fields.since == "2026-11-30T06:00:00Z");
  CHECK(fields.command == "backup.sh --full");
  const auto partial = loto::etcd_helper::holder_fields(R"({"pid":"17","host":3})");
  CHECK(partial.pid == "17");
  CHECK(partial.host == "3");
  CHECK(partial.user.empty());
  for (const char* value : {"", "web1:4242", "[1,2]", "{}"}) {
    const auto none = loto::etcd_helper::holder_fields(value);
    CHECK(none.host.empty());
    CHECK(none.pid.empty());
    CHECK(none.user.empty());
    CHECK(none.since.empty());
    CHECK(none.command.empty());
  }
}

// ---- options

TEST_CASE("parse_options reads a --wait run", "[options]") {
  const Options options = parse({"--endpoints",
                                 "http://10.0.0.1:2379,10.0.0.2:2379/",
                                 "--ttl-ms",
                                 "10000",
                                 "--name",
                                 "loto/nightly",
                                 "--wait",
                                 "--host",
                                 "web1",
                                 "--pid",
                                 "4242",
                                 "--user",
                                 "root",
                                 "--command",
                                 "backup.sh --full"});
  CHECK(options.endpoints ==
        std::vector<std::string>{"http://10.0.0.1:2379", "http://10.0.0.2:2379"});
  CHECK(options.ttl_ms == 10000);
  CHECK(options.name == "loto/nightly");
  CHECK(options.mode == Mode::wait);
  CHECK(options.holder.host == "web1");
  CHECK(options.holder.pid == 4242);
  CHECK(options.holder.user == "root");
  CHECK(options.holder.command == "backup.sh --full");
}

TEST_CASE("parse_options takes values after '=' and values that look like options", "[options]") {
  const Options options = parse(
      {"--endpoints=https://e:2379", "--ttl-ms=500", "--name=a/b", "--try", "--command", "--x"});
  CHECK(options.endpoints == std::vector<std::string>{"https://e:2379"});
  CHECK(options.ttl_ms == 500);
  CHECK(options.mode == Mode::try_once);
  CHECK(options.holder.command == "--x");
}

TEST_CASE("parse_options: TLS and authentication files, never secrets", "[options]") {
  const Options options = parse({"--endpoints",
                                 "https://e:1",
                                 "--name",
                                 "loto/x",
                                 "--inspect",
                                 "--ca-file",
                                 "/etc/loto/ca.pem",
                                 "--cert-file",
                                 "/etc/loto/c.pem",
                                 "--key-file",
                                 "/etc/loto/c.key",
                                 "--etcd-user",
                                 "loto",
                                 "--password-file",
                                 "/etc/loto/password"});
  CHECK(options.credentials.ca_file == "/etc/loto/ca.pem");
  CHECK(options.credentials.cert_file == "/etc/loto/c.pem");
  CHECK(options.credentials.key_file == "/etc/loto/c.key");
  CHECK(options.credentials.user == "loto");
  CHECK(options.credentials.password_file == "/etc/loto/password");
  CHECK(options.holder.user.empty()); // --user is the holder record's, not etcd's

  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--cert-file", "/c"}) ==
        "--cert-file and --key-file go together");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--key-file", "/k"}) ==
        "--cert-file and --key-file go together");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--etcd-user", "u"}) ==
        "--etcd-user and --password-file go together");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--ca-file="}) ==
        "--ca-file needs a non-empty value");
}

TEST_CASE("parse_options: --inspect needs no TTL", "[options]") {
  const Options options = parse({"--endpoints", "e:1", "--name", "loto/x", "--inspect"});
  CHECK(options.mode == Mode::inspect);
  CHECK(options.ttl_ms == 0);
}

TEST_CASE("parse_options rejects bad command lines", "[options]") {
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--ttl-ms", "1000"}) ==
        "give one of --try, --wait and --inspect");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--ttl-ms", "1000", "--try", "--wait"}) ==
        "give exactly one of --try, --wait and --inspect");
  CHECK(usage_error({"--name", "n", "--ttl-ms", "1000", "--try"}) == "--endpoints is required");
  CHECK(usage_error({"--endpoints", "e:1", "--ttl-ms", "1000", "--try"})
            .starts_with("--name is required"));
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--try"}) ==
        "--ttl-ms is required with --try and --wait");
  CHECK(usage_error({"--endpoints", "e:1,,f:2", "--name", "n", "--inspect"}) ==
        "--endpoints: empty endpoint in the list");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--ttl-ms", "5s", "--try"})
            .starts_with("--ttl-ms: expected milliseconds"));
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--ttl-ms", "99", "--try"})
            .starts_with("--ttl-ms: expected milliseconds from 100"));
  CHECK(usage_error(
            {"--endpoints", "e:1", "--name", "n", "--ttl-ms", "1000", "--try", "--pid", "x"}) ==
        "--pid: expected a process ID, got 'x'");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--try", "--bogus", "1"}) ==
        "unknown option '--bogus'");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--try=yes"}) == "--try takes no value");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--name", "m"}) ==
        "--name given twice");
  CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "extra"}) ==
        "unexpected argument 'extra'");
  CHECK(usage_error({"--endpoints", "e:1", "--inspect", "--name"}) == "--name needs a value");
}

TEST_CASE("parse_options: --slots N for a semaphore, 1 by default", "[options]") {
  CHECK(parse({"--endpoints", "e:1", "--name", "loto/x", "--inspect"}).slots == 1);
  CHECK(parse({"--endpoints", "e:1", "--name", "loto/x", "--inspect", "--slots", "3"}).slots == 3);
  CHECK(parse({"--endpoints", "e:1", "--name", "loto/x", "--inspect", "--slots=128"}).slots == 128);
  for (const std::string_view bad : {"0", "129", "-1", "x", "3x", ""}) {
    CHECK(usage_error({"--endpoints", "e:1", "--name", "n", "--inspect", "--slots", bad})
              .starts_with("--slots: expected a number from 1 to 128"));
  }
}

// ---- requests

TEST_CASE("enqueue_request is clientv3's Mutex.tryAcquire txn", "[requests]") {
  const json txn = json::parse(enqueue_request("loto/x/1f", "loto/x/", "{}", 31));
  const json owner = {{"key", b64("loto/x/")},
                      {"range_end", b64("loto/x0")},
                      {"sort_target", "CREATE"},
                      {"sort_order", "ASCEND"},
                      {"limit", "1"}};
  CHECK(txn["compare"] == json::array({{{"key", b64("loto/x/1f")},
                                        {"target", "CREATE"},
                                        {"result", "EQUAL"},
                                        {"create_revision", "0"}}}));
  CHECK(txn["success"] ==
        json::array(
            {{{"request_put", {{"key", b64("loto/x/1f")}, {"value", b64("{}")}, {"lease", "31"}}}},
             {{"request_range", owner}}}));
  CHECK(txn["failure"] == json::array({{{"request_range", {{"key", b64("loto/x/1f")}}}},
                                       {{"request_range", owner}}}));
}

TEST_CASE("enqueue_request with slots reads the whole queue", "[requests]") {
  const json txn = json::parse(enqueue_request("loto/x/1f", "loto/x/", "{}", 31, 0));
  const json queue = {{"key", b64("loto/x/")},
                      {"range_end", b64("loto/x0")},
                      {"sort_target", "CREATE"},
                      {"sort_order", "ASCEND"}};
  CHECK(txn["success"][1] == json{{"request_range", queue}});
  CHECK(txn["failure"][1] == json{{"request_range", queue}});
  CHECK(txn["compare"] ==
        json::parse(enqueue_request("loto/x/1f", "loto/x/", "{}", 31))["compare"]);
}

TEST_CASE("slot_claim_request: the slot key if free and our queue key still ours", "[requests]") {
  const json txn = json::parse(slot_claim_request("loto/x/slot/2", "loto/x/1f", 77, 31));
  CHECK(txn["compare"] == json::array({{{"key", b64("loto/x/slot/2")},
                                        {"target", "CREATE"},
                                        {"result", "EQUAL"},
                                        {"create_revision", "0"}},
                                       {{"key", b64("loto/x/1f")},
                                        {"target", "CREATE"},
                                        {"result", "EQUAL"},
                                        {"create_revision", "77"}},
                                       {{"key", b64("loto/x/1f")},
                                        {"target", "LEASE"},
                                        {"result", "EQUAL"},
                                        {"lease", "31"}}}));
  CHECK(txn["success"] ==
        json::array(
            {{{"request_put",
               {{"key", b64("loto/x/slot/2")}, {"value", b64("loto/x/1f")}, {"lease", "31"}}}}}));
  CHECK(txn["failure"] == json::array({{{"request_range", {{"key", b64("loto/x/1f")}}}}}));
}

TEST_CASE("ahead_request is clientv3's waitDeletes range, without its limit", "[requests]") {
  const json range = json::parse(ahead_request("loto/x/", 41));
  CHECK(range == json{{"key", b64("loto/x/")},
                      {"range_end", b64("loto/x0")},
                      {"sort_target", "CREATE"},
                      {"sort_order", "DESCEND"},
                      {"max_create_revision", "41"},
                      {"keys_only", true}});
}

TEST_CASE("the other requests", "[requests]") {
  CHECK(json::parse(grant_request(10)) == json{{"TTL", 10}});
  CHECK(json::parse(lease_request(2324035624703416851)) == json{{"ID", "2324035624703416851"}});
  CHECK(json::parse(key_request("k")) == json{{"key", b64("k")}});
  CHECK(json::parse(queue_request("loto/x/")) == json{{"key", b64("loto/x/")},
                                                      {"range_end", b64("loto/x0")},
                                                      {"sort_target", "CREATE"},
                                                      {"sort_order", "ASCEND"}});
  CHECK(json::parse(watch_deletes_request("loto/x/", 52)) == json{{"create_request",
                                                                   {{"key", b64("loto/x/")},
                                                                    {"range_end", b64("loto/x0")},
                                                                    {"start_revision", "52"},
                                                                    {"filters", {"NOPUT"}}}}});
}

// ---- answers

// A header as the gateway sends it.
constexpr std::string_view k_header =
    R"({"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"103","raft_term":"2"})";

json answer(const std::string& text) {
  return json::parse(text);
}

TEST_CASE("read_grant: int64 fields come as strings", "[answers]") {
  const GrantAnswer grant = read_grant(answer(R"({"header":)" + std::string(k_header) +
                                              R"(,"ID":"2324035624703416838","TTL":"10"})"));
  CHECK(grant.lease == 2324035624703416838);
  CHECK(grant.ttl_seconds == 10);
  CHECK_THROWS_AS(read_grant(answer(R"({"header":{}})")), BadAnswer);
  CHECK_THROWS_AS(read_grant(answer(R"({"ID":"x","TTL":"10"})")), BadAnswer);
}

TEST_CASE("read_range: an empty range has no kvs and no count", "[answers]") {
  const RangeAnswer range = read_range(answer(R"({"header":)" + std::string(k_header) + "}"));
  CHECK(range.revision == 103);
  CHECK(range.kvs.empty());
}

TEST_CASE("read_range: kvs are decoded, omitted fields are 0 or empty", "[answers]") {
  const RangeAnswer range = read_range(answer(
      R"({"header":{"revision":"120"},"kvs":[)"
      R"({"key":"bG90by94L2E=","create_revision":"117","mod_revision":"117","version":"1","value":"eQ==","lease":"31"},)"
      R"({"key":"bG90by94L2I=","create_revision":"118","mod_revision":"118","version":"1"}],"more":true,"count":"3"})"));
  REQUIRE(range.kvs.size() == 2); // `count` says 3: it ignores the filters
  CHECK(range.kvs[0].key == "loto/x/a");
  CHECK(range.kvs[0].value == "y");
  CHECK(range.kvs[0].create_revision == 117);
  CHECK(range.kvs[0].lease == 31);
  CHECK(range.kvs[1].key == "loto/x/b");
  CHECK(range.kvs[1].value.empty()); // etcdctl lock's empty value
  CHECK(range.kvs[1].lease == 0);
  CHECK_THROWS_AS(read_range(answer(R"({"kvs":[{"key":"%%%"}]})")), BadAnswer);
}

TEST_CASE("read_enqueue: the txn created our key", "[answers]") {
  const EnqueueAnswer queued = read_enqueue(answer(
      R"({"header":{"revision":"103"},"succeeded":true,"responses":[)"
      R"({"response_put":{"header":{"revision":"103"}}},)"
      R"({"response_range":{"header":{"revision":"103"},"kvs":[{"key":"bG90by94L2E=","create_revision":"101","lease":"7"}],"count":"2"}}]})"));
  CHECK(queued.created);
  CHECK(queued.my_revision == 103);
  REQUIRE(queued.owner);
  CHECK(queued.owner->key == "loto/x/a");
  CHECK(queued.owner->create_revision == 101);
  CHECK(queued.owner->lease == 7);
}

TEST_CASE("read_enqueue: a failed txn has no `succeeded` at all", "[answers]") {
  const EnqueueAnswer queued = read_enqueue(answer(
      R"({"header":{"revision":"110"},"responses":[)"
      R"({"response_range":{"header":{"revision":"110"},"kvs":[{"key":"bG90by94L2E=","create_revision":"105","lease":"9"}],"count":"1"}},)"
      R"({"response_range":{"header":{"revision":"110"},"kvs":[{"key":"bG90by94L2E=","create_revision":"105","lease":"9"}],"count":"1"}}]})"));
  CHECK_FALSE(queued.created);
  CHECK(queued.my_revision == 105);
  REQUIRE(queued.owner);
  CHECK(queued.owner->create_revision == 105);
}

TEST_CASE("read_enqueue: shapes that cannot be", "[answers]") {
  CHECK_THROWS_AS(read_enqueue(answer(R"({"header":{"revision":"1"},"succeeded":true})")),
                  BadAnswer);
  CHECK_THROWS_AS(
      read_enqueue(answer(R"({"responses":[{"response_range":{}},{"response_range":{}}]})")),
      BadAnswer); // failed, yet our key is not there
  CHECK_THROWS_AS(read_enqueue(answer(R"({"succeeded":"yes","responses":[{},{}]})")), BadAnswer);
}

TEST_CASE("read_enqueue: the whole queue as the txn read it", "[answers]") {
  const EnqueueAnswer queued = read_enqueue(answer(
      R"({"header":{"revision":"103"},"succeeded":true,"responses":[)"
      R"({"response_put":{"header":{"revision":"103"}}},)"
      R"({"response_range":{"kvs":[{"key":"bG90by94L2E=","create_revision":"101","lease":"7"},)"
      R"({"key":"bG90by94L2I=","create_revision":"103","lease":"8"}]}}]})"));
  REQUIRE(queued.queue.size() == 2);
  CHECK(queued.queue[0].key == "loto/x/a");
  CHECK(queued.queue[1].key == "loto/x/b");
  CHECK(queued.owner->key == "loto/x/a");
}

TEST_CASE("read_slot_claim: claimed, taken, or our key gone", "[answers]") {
  CHECK(read_slot_claim(answer(R"({"succeeded":true,"responses":[{"response_put":{}}]})")).claimed);
  const SlotClaimAnswer taken = read_slot_claim(answer(
      R"({"responses":[{"response_range":{"kvs":[{"key":"bG90by94L2E=","create_revision":"101","lease":"7"}]}}]})"));
  CHECK_FALSE(taken.claimed);
  REQUIRE(taken.mine);
  CHECK(taken.mine->lease == 7);
  const SlotClaimAnswer gone = read_slot_claim(answer(R"({"responses":[{"response_range":{}}]})"));
  CHECK_FALSE(gone.claimed);
  CHECK_FALSE(gone.mine);
  CHECK_THROWS_AS(read_slot_claim(answer(R"({"responses":[]})")), BadAnswer);
}

// ---- the semaphore's ordering

namespace {

KeyValue kv(std::string key, std::int64_t revision, std::int64_t lease, std::string value = "") {
  return {std::move(key), std::move(value), revision, revision, lease};
}

} // namespace

TEST_CASE("semaphore: slot keys are told apart from places in the queue", "[semaphore]") {
  CHECK(slot_prefix("loto/x/") == "loto/x/slot/");
  CHECK(slot_key("loto/x/", 2) == "loto/x/slot/2");
  CHECK(is_slot_key("loto/x/", "loto/x/slot/0"));
  CHECK_FALSE(is_slot_key("loto/x/", "loto/x/694d71"));
  CHECK(slot_of("loto/x/", "loto/x/slot/2", 3) == 2);
  CHECK_FALSE(slot_of("loto/x/", "loto/x/slot/3", 3));  // beyond N: not one of ours
  CHECK_FALSE(slot_of("loto/x/", "loto/x/slot/02", 3)); // not as we write them
  CHECK_FALSE(slot_of("loto/x/", "loto/x/slot/-1", 3));
  CHECK_FALSE(slot_of("loto/x/", "loto/x/1f", 3));
  const std::vector<KeyValue> all = {
      kv("loto/x/a", 10, 1), kv("loto/x/slot/0", 11, 1, "loto/x/a"), kv("loto/x/b", 12, 2)};
  const std::vector<KeyValue> queue = queue_keys(all, "loto/x/");
  REQUIRE(queue.size() == 2);
  CHECK(queue[0].key == "loto/x/a");
  CHECK(queue[1].key == "loto/x/b");
}

TEST_CASE("semaphore: the first N keys hold, the others wait their turn in order", "[semaphore]") {
  const std::vector<KeyValue> queue = {
      kv("loto/x/a", 10, 1), kv("loto/x/b", 12, 2), kv("loto/x/c", 13, 3), kv("loto/x/d", 15, 4)};
  CHECK(keys_ahead(queue, 10, 1) == 0u);
  CHECK(keys_ahead(queue, 13, 3) == 2u);
  CHECK(keys_ahead(queue, 15, 4) == 3u);
  CHECK_FALSE(keys_ahead(queue, 15, 9)); // that revision, but not our lease
  CHECK_FALSE(keys_ahead(queue, 14, 4)); // our key is gone
  CHECK(holds_a_slot(2, 3));
  CHECK_FALSE(holds_a_slot(3, 3));
  CHECK(place_in_line(3, 3) == 1u); // next
  CHECK(place_in_line(5, 3) == 3u);
  CHECK(holds_a_slot(0, 1)); // the mutex: only the owner
  CHECK_FALSE(holds_a_slot(1, 1));
  CHECK(place_in_line(1, 1) == 1u);
}

TEST_CASE("semaphore: the lowest free slot, or none", "[semaphore]") {
  const auto slots = [](std::initializer_list<const char*> keys) {
    std::vector<KeyValue> taken;
    for (const char* key : keys) {
      taken.push_back(kv(key, 1, 1));
    }
    return taken;
  };
  CHECK(lowest_free_slot({}, "loto/x/", 3) == 0);
  CHECK(lowest_free_slot(slots({"loto/x/slot/0", "loto/x/slot/2"}), "loto/x/", 3) == 1);
  CHECK(lowest_free_slot(slots({"loto/x/slot/1", "loto/x/slot/0"}), "loto/x/", 3) == 2);
  CHECK_FALSE(
      lowest_free_slot(slots({"loto/x/slot/0", "loto/x/slot/1", "loto/x/slot/2"}), "loto/x/", 3));
  // keys that are no slot of ours take none
  CHECK(lowest_free_slot(slots({"loto/x/slot/7", "loto/x/slot/x"}), "loto/x/", 3) == 0);
}

TEST_CASE("semaphore: every holder described with its slot, waiters counted apart", "[semaphore]") {
  const std::string a = holder_record_json({"web1", 11, "root", "a.sh"}, 0);
  const std::string b = holder_record_json({"web2", 22, "root", "b.sh"}, 0);
  const std::vector<KeyValue> all = {kv("loto/x/a", 10, 1, a),
                                     kv("loto/x/slot/1", 11, 1, "loto/x/a"),
                                     kv("loto/x/b", 12, 2, b),
                                     kv("loto/x/c", 13, 3)};
  CHECK(describe_holders(all, "loto/x/", 3) ==
        "slot 1: pid 11 on web1 (root) since 1970-01-01T00:00:00Z: a.sh; slot ?: pid 22 on web2 "
        "(root) since 1970-01-01T00:00:00Z: b.sh; slot ?: " +
            std::string(k_unknown_holder));
  CHECK(holder_count(all, "loto/x/", 3) == 3u);
  CHECK(holder_count(all, "loto/x/", 2) == 2u);
  CHECK(describe_holders(all, "loto/x/", 1) ==
        "pid 11 on web1 (root) since 1970-01-01T00:00:00Z: a.sh");
  CHECK(holder_count(all, "loto/x/", 1) == 1u);
  // One slot is clientv3's Mutex: the oldest key holds whatever its name, even one that
  // looks like a slot key (`etcdctl lock x/slot` makes loto/x/slot/<lease>).
  const std::vector<KeyValue> named_like_a_slot = {kv("loto/x/slot/694d71", 10, 1, a)};
  CHECK(holder_count(named_like_a_slot, "loto/x/", 1) == 1u);
  CHECK(describe_holders(named_like_a_slot, "loto/x/", 1) ==
        "pid 11 on web1 (root) since 1970-01-01T00:00:00Z: a.sh");
  CHECK(holder_count({}, "loto/x/", 3) == 0u);
  CHECK(describe_holders({}, "loto/x/", 3).empty());
}

TEST_CASE("read_keepalive_ttl: no TTL means the lease is gone", "[answers]") {
  CHECK(read_keepalive_ttl(answer(
            R"({"result":{"header":{"revision":"5"},"ID":"2324035624703416860","TTL":"20"}})")) ==
        20);
  CHECK(read_keepalive_ttl(answer(R"({"result":{"header":{"revision":"5"},"ID":"999"}})")) == 0);
  CHECK_THROWS_AS(read_keepalive_ttl(answer(R"({"header":{}})")), BadAnswer);
}

TEST_CASE("classify_reply: answers and errors of the gateway", "[answers]") {
  CHECK(classify_reply(200, R"({"header":{}})").kind == ReplyKind::answer);

  const Reply not_found = classify_reply(
      404,
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  CHECK(not_found.kind == ReplyKind::unexpected);
  CHECK(not_found.code == 5);
  CHECK(not_found.message == "etcdserver: requested lease not found (code 5)");

  const Reply closing = classify_reply(
      503, R"({"error":"transport is closing","message":"transport is closing","code":14})");
  CHECK(closing.kind == ReplyKind::unavailable);

  CHECK(classify_reply(500, R"({"error":"etcdserver: request timed out","code":14})").kind ==
        ReplyKind::unavailable);
  CHECK(
      classify_reply(
          500,
          R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":2})")
          .kind == ReplyKind::refused);
  CHECK(classify_reply(403, R"({"error":"x","message":"x","code":7})").kind == ReplyKind::refused);
  CHECK(classify_reply(400, R"({"error":"etcdserver: user name is empty","code":3})").kind ==
        ReplyKind::refused);
  CHECK(classify_reply(400, R"({"error":"bad base64","code":3})").kind == ReplyKind::unexpected);
}

TEST_CASE("classify_reply: what is not the gateway's JSON", "[answers]") {
  CHECK(classify_reply(502, "<html>Bad Gateway</html>").kind == ReplyKind::unavailable);
  const Reply page = classify_reply(404, "404 page not found\n");
  CHECK(page.kind == ReplyKind::unexpected);
  CHECK(page.message == "HTTP 404: 404 page not found ");
  CHECK(classify_reply(200, "not json").kind == ReplyKind::unexpected);
  CHECK(classify_reply(200, "[]").kind == ReplyKind::unexpected);
  CHECK(classify_reply(405, "").message == "HTTP 405");
}

TEST_CASE("classify_reply: an error inside a 200 stream", "[answers]") {
  const Reply reply = classify_reply(
      200,
      R"({"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}})");
  CHECK(reply.kind == ReplyKind::unavailable);
  CHECK(reply.code == 14);
}

TEST_CASE("read_watch_line: the lines of a watch stream", "[answers]") {
  CHECK(read_watch_line("").news == WatchNews::nothing);
  CHECK(read_watch_line(R"({"result":{"header":{"revision":"48"},"created":true}})").news ==
        WatchNews::nothing);
  CHECK(
      read_watch_line(R"({"result":{"header":{"revision":"51"},"events":[{"kv":{"key":"YQ=="}}]}})")
          .news == WatchNews::nothing); // a PUT has no "type"
  CHECK(
      read_watch_line(
          R"({"result":{"header":{"revision":"51"},"events":[{"type":"DELETE","kv":{"key":"bG90by93L2I=","mod_revision":"51"}}]}})")
          .news == WatchNews::deleted);
  const WatchLine cancelled = read_watch_line(
      R"({"result":{"header":{},"canceled":true,"compact_revision":"40","cancel_reason":"mvcc: required revision has been compacted"}})");
  CHECK(cancelled.news == WatchNews::ended);
  CHECK(cancelled.message == "mvcc: required revision has been compacted");
  CHECK(read_watch_line(R"({"error":{"grpc_code":14,"message":"transport is closing"}})").news ==
        WatchNews::ended);
  CHECK(read_watch_line(R"({"error":{"grpc_code":7,"message":"etcdserver: permission denied"}})")
            .news == WatchNews::refused);
  CHECK(read_watch_line("garbage").news == WatchNews::ended);
}

// ---- the HTTP transport

TEST_CASE("make_endpoint: usable http and https, bad URLs", "[http]") {
  const Endpoint plain = make_endpoint("http://127.0.0.1:2379");
  CHECK(plain.url == "http://127.0.0.1:2379");
  CHECK(plain.authority == "127.0.0.1:2379");
  CHECK(plain.unusable.empty());

  const Endpoint tls = make_endpoint("https://etcd1:2379");
  CHECK(tls.parts.https);
  CHECK(tls.authority == "etcd1:2379");
  CHECK(tls.unusable.empty());

  CHECK(make_endpoint("http://h:2379/prefix").unusable ==
        "not a usable endpoint URL: a path, query or fragment is not supported");
}

TEST_CASE("post_request: the bytes of one POST", "[http]") {
  CHECK(post_request("10.0.0.1:2379", "/v3/kv/range", R"({"key":"YQ=="})") ==
        "POST /v3/kv/range HTTP/1.1\r\n"
        "Host: 10.0.0.1:2379\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 14\r\n"
        "\r\n"
        R"({"key":"YQ=="})");
}

TEST_CASE("Transfer: answers, whatever their status, on one kept connection", "[http]") {
  FakeServer server([](std::size_t index) {
    if (index == 1) {
      return Canned{{"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!"}};
    }
    return Canned{{ok_answer(R"({"n":)" + std::to_string(index) + "}")}};
  });
  Multi multi;
  Transfer transfer(multi);
  const Endpoint endpoint = make_endpoint(server.url());
  for (std::size_t i = 0; i < 3; ++i) {
    transfer.prepare(endpoint, "/v3/kv/range", R"({"key":"YQ=="})", k_test_timeouts);
    multi.start(transfer);
    CHECK(transfer.running());
    REQUIRE(pump(multi, transfer));
    CHECK(transfer.result() == TransferResult::ok);
    CHECK(transfer.url() == server.url() + "/v3/kv/range");
    if (i == 1) {
      CHECK(transfer.http_status() == 404);
      CHECK(transfer.answer() == "nope!");
    } else {
      CHECK(transfer.http_status() == 200);
      CHECK(transfer.answer() == R"({"n":)" + std::to_string(i) + "}");
    }
  }
  CHECK(server.connections() == 1);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[2] == post_request(endpoint.authority, "/v3/kv/range", R"({"key":"YQ=="})"));
}

TEST_CASE("Transfer: a new connection when the server closed the kept one", "[http]") {
  // 0: says it closes; 1: closes without saying so; 2: keeps it; 3: on the same one.
  FakeServer server([](std::size_t index) {
    if (index == 0) {
      return Canned{{ok_answer("{}", "Connection: close\r\n")}, 0ms, true};
    }
    return Canned{{ok_answer("{}")}, 0ms, index == 1};
  });
  Multi multi;
  Transfer transfer(multi);
  for (int i = 0; i < 4; ++i) {
    transfer.prepare(make_endpoint(server.url()), "/v3/lease/grant", "{}", k_test_timeouts);
    multi.start(transfer);
    REQUIRE(pump(multi, transfer));
    CHECK(transfer.result() == TransferResult::ok);
    CHECK(transfer.http_status() == 200);
    // The next request must not race the server's close of this connection.
    std::this_thread::sleep_for(20ms);
  }
  CHECK(server.connections() == 3);
}

TEST_CASE("Transfer: a chunked stream is handed over line by line as it comes", "[http]") {
  FakeServer server([](std::size_t) {
    return Canned{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "6\r\nfirst\n\r\n",
                   "3\r\nsec\r\n",
                   "8\r\nond\nthir\r\n",
                   "1\r\nd\r\n0\r\n\r\n"},
                  150ms};
  });
  Multi multi;
  Transfer transfer(multi);
  std::vector<std::string> lines;
  std::vector<bool> while_running;
  transfer.prepare(make_endpoint(server.url()),
                   "/v3/watch",
                   "{}",
                   Timeouts{1000, 0},
                   [&](std::string_view line) {
                     lines.emplace_back(line);
                     while_running.push_back(transfer.running());
                   });
  multi.start(transfer);
  // The first line comes before the stream ends.
  const auto until = Clock::now() + 3s;
  while (lines.empty() && Clock::now() < until) {
    multi.wait(-1, 20);
    static_cast<void>(multi.finished());
  }
  CHECK(lines == std::vector<std::string>{"first"});
  CHECK(transfer.running());
  REQUIRE(pump(multi, transfer));
  CHECK(transfer.result() == TransferResult::ok);
  CHECK(lines == std::vector<std::string>{"first", "second", "third"});
  CHECK(while_running == std::vector<bool>{true, true, false}); // the last one at the end
}

TEST_CASE("Transfer: stopping a stream closes its connection", "[http]") {
  FakeServer server([](std::size_t) {
    return Canned{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"}, 0ms, false, true};
  });
  Multi multi;
  Transfer transfer(multi);
  int lines = 0;
  transfer.prepare(make_endpoint(server.url()),
                   "/v3/watch",
                   "{}",
                   Timeouts{1000, 0},
                   [&lines](std::string_view) { ++lines; });
  multi.start(transfer);
  const auto until = Clock::now() + 3s;
  while (server.requests().empty() && Clock::now() < until) {
    multi.wait(-1, 20);
  }
  multi.wait(-1, 50);
  multi.stop(transfer);
  CHECK_FALSE(transfer.running());
  CHECK(transfer.result() == TransferResult::aborted);
  multi.wait(-1, 20);
  CHECK(multi.finished().empty());
  const auto closed_until = Clock::now() + 3s;
  while (server.closed_by_client() == 0 && Clock::now() < closed_until) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(server.closed_by_client() == 1);
  CHECK(lines == 0);
}

TEST_CASE("Transfer: no answer within total_ms", "[http]") {
  FakeServer server([](std::size_t) { return Canned{{}, 0ms, false, true}; });
  Multi multi;
  Transfer transfer(multi);
  transfer.prepare(make_endpoint(server.url()), "/v3/kv/range", "{}", Timeouts{1000, 200});
  const auto start = Clock::now();
  multi.start(transfer);
  REQUIRE(pump(multi, transfer));
  CHECK(elapsed_ms(start) >= 200);
  CHECK(elapsed_ms(start) < 1000);
  CHECK(transfer.result() == TransferResult::timed_out);
  CHECK(transfer.transport_error() == "no answer within 200 ms");
}

TEST_CASE("Transfer: a refused port fails at once", "[http]") {
  Multi multi;
  Transfer transfer(multi);
  transfer.prepare(make_endpoint(silent_endpoint()), "/v3/kv/range", "{}", k_test_timeouts);
  const auto start = Clock::now();
  multi.start(transfer);
  REQUIRE(pump(multi, transfer));
  CHECK(elapsed_ms(start) < 500);
  CHECK(transfer.result() == TransferResult::unreachable);
  CHECK(transfer.transport_error() == "Connection refused");
}

TEST_CASE("Transfer: a name is looked up, and https to a plain HTTP server fails the handshake",
          "[http]") {
  FakeServer server([](std::size_t) { return Canned{{ok_answer("{}")}}; });
  Multi multi;
  Transfer transfer(multi);
  const std::string port = server.url().substr(server.url().rfind(':'));
  transfer.prepare(make_endpoint("http://localhost" + port), "/v3/kv/range", "{}", k_test_timeouts);
  multi.start(transfer);
  REQUIRE(pump(multi, transfer));
  CHECK(transfer.result() == TransferResult::ok);
  CHECK(transfer.http_status() == 200);
  CHECK(server.requests().at(0).find("\r\nHost: localhost" + port + "\r\n") != std::string::npos);

  transfer.prepare(
      make_endpoint("https://localhost" + port), "/v3/kv/range", "{}", k_test_timeouts);
  multi.start(transfer);
  REQUIRE(pump(multi, transfer));
  // Not the plain connection kept from the first request: a new one, whose handshake the
  // plain server never answers (it waits for an HTTP request).
  CHECK(transfer.result() == TransferResult::timed_out);
  CHECK(server.requests().size() == 1);
}

TEST_CASE("TLS failures: one line saying what failed", "[http][tls]") {
  CHECK(server_certificate_problem(X509_V_ERR_HOSTNAME_MISMATCH, "etcd1") ==
        "TLS: the server's certificate does not name etcd1 (host name mismatch)");
  CHECK(server_certificate_problem(X509_V_ERR_IP_ADDRESS_MISMATCH, "10.0.0.1") ==
        "TLS: the server's certificate does not name 10.0.0.1 (host name mismatch)");
  CHECK(server_certificate_problem(X509_V_ERR_CERT_HAS_EXPIRED, "e") ==
        "TLS: the server's certificate has expired");
  for (const long unknown_ca : {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                                X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
                                X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN}) {
    CHECK(server_certificate_problem(unknown_ca, "e") ==
          "TLS: the server's certificate is signed by an unknown CA (set etcd.ca_file to the "
          "cluster's CA)");
  }
  CHECK(server_certificate_problem(X509_V_ERR_CERT_REVOKED, "e") ==
        "TLS: the server's certificate was not accepted: certificate revoked");

  const TlsFailure none = server_alert_problem(SSL_AD_CERTIFICATE_REQUIRED, false);
  CHECK(none.refused);
  CHECK(none.message == "requires a client certificate (TLS alert: certificate required; set "
                        "etcd.cert_file and etcd.key_file)");
  const TlsFailure bad = server_alert_problem(SSL_AD_BAD_CERTIFICATE, true);
  CHECK(bad.refused);
  CHECK(bad.message == "refused our client certificate (TLS alert: bad certificate; is "
                       "etcd.cert_file signed by the cluster's CA?)");
  CHECK(server_alert_problem(SSL_AD_CERTIFICATE_EXPIRED, true).message ==
        "refused our client certificate: it has expired (TLS alert: certificate expired)");
  const TlsFailure other = server_alert_problem(SSL_AD_PROTOCOL_VERSION, true);
  CHECK_FALSE(other.refused);
  CHECK(other.message == "TLS handshake failed (TLS alert: protocol version)");
}

TEST_CASE("Multi::use_tls: unusable files are named", "[http][tls]") {
  Multi multi;
  CHECK_NOTHROW(multi.use_tls({}));
  try {
    multi.use_tls({"/nonexistent/ca.pem", "", ""});
    FAIL("no error");
  } catch (const TlsSetupError& error) {
    CHECK(
        std::string(error.what()).starts_with("cannot load etcd.ca_file '/nonexistent/ca.pem': "));
  }
  try {
    multi.use_tls({"", "/nonexistent/c.pem", "/nonexistent/c.key"});
    FAIL("no error");
  } catch (const TlsSetupError& error) {
    CHECK(std::string(error.what()).starts_with("cannot load etcd.cert_file '/nonexistent/c.pem'"));
  }
}

TEST_CASE("Transfer: what is not HTTP", "[http]") {
  FakeServer server([](std::size_t) { return Canned{{"SSH-2.0-OpenSSH_9.2\r\n\r\n"}, 0ms, true}; });
  Multi multi;
  Transfer transfer(multi);
  transfer.prepare(make_endpoint(server.url()), "/v3/kv/range", "{}", k_test_timeouts);
  multi.start(transfer);
  REQUIRE(pump(multi, transfer));
  CHECK(transfer.result() == TransferResult::broken);
  CHECK(transfer.transport_error().starts_with("not an HTTP answer: "));
}

TEST_CASE("Multi::wait: the extra descriptor, readable or hung up, and the time limit", "[http]") {
  std::array<int, 2> ends{};
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends.data()) == 0);
  {
    Multi multi;
    auto start = Clock::now();
    CHECK_FALSE(multi.wait(ends[0], 50));
    CHECK(elapsed_ms(start) >= 50);

    CHECK(::write(ends[1], "release\n", 8) == 8);
    start = Clock::now();
    CHECK(multi.wait(ends[0], 2000));
    CHECK(elapsed_ms(start) < 500);
    std::array<char, 16> buffer{};
    CHECK(::read(ends[0], buffer.data(), buffer.size()) == 8);
    CHECK_FALSE(multi.wait(ends[0], 0));

    ::close(ends[1]);
    start = Clock::now();
    CHECK(multi.wait(ends[0], 2000));
    CHECK(elapsed_ms(start) < 500);
  }
  CHECK(::fcntl(ends[0], F_GETFD) != -1); // watched, never closed
  ::close(ends[0]);
}

TEST_CASE("Channel on a non-blocking socket (as the event loop leaves it)", "[channel]") {
  std::array<int, 2> ends{};
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, ends.data()) == 0);
  Channel channel(ends[0]);
  CHECK(channel.receive() == Channel::Heard::nothing); // nothing to read yet

  // A full socket: send() waits for room instead of taking loto for gone.
  const std::string filler(4096, 'x');
  while (::write(ends[0], filler.data(), filler.size()) > 0) {
  }
  std::thread reader([&ends] {
    std::this_thread::sleep_for(100ms);
    std::array<char, 65536> buffer{};
    while (::read(ends[1], buffer.data(), buffer.size()) > 0) {
    }
  });
  CHECK(channel.send({"renewed", "123"}));
  reader.join();

  CHECK(::write(ends[1], "rel", 3) == 3);
  CHECK(channel.receive() == Channel::Heard::nothing);
  CHECK(::write(ends[1], "ease\n", 5) == 5);
  CHECK(channel.receive() == Channel::Heard::release);
  ::close(ends[1]);
  CHECK(channel.receive() == Channel::Heard::end);
  ::close(ends[0]);
}

// ---- etcd authentication (issue 11)

TEST_CASE("authentication: the request, the token, and a lapsed token", "[auth]") {
  CHECK(json::parse(authenticate_request("loto", "s3cret")) ==
        json{{"name", "loto"}, {"password", "s3cret"}});
  CHECK(read_token(json::parse(R"({"header":{},"token":"abc.12"})")) == "abc.12");
  CHECK_THROWS_AS(read_token(json::parse(R"({"header":{}})")), BadAnswer);

  CHECK(classify_reply(401, R"({"error":"etcdserver: invalid auth token","code":16})").kind ==
        ReplyKind::token_expired);
  CHECK(classify_reply(400, R"({"error":"etcdserver: revision of auth store is old","code":3})")
            .kind == ReplyKind::token_expired);
  CHECK(classify_reply(403, R"({"error":"etcdserver: permission denied","code":7})").kind ==
        ReplyKind::refused);
  const Reply cn = classify_reply(
      400,
      "CommonName of client sending a request against gateway will be ignored and not "
      "used as expected\n");
  CHECK(cn.kind == ReplyKind::refused);
  CHECK(cn.code == k_transport_refusal);
  CHECK(cn.message.starts_with("refuses client certificates with a CommonName"));

  CHECK(post_request("e:1", "/v3/kv/range", "{}", "tok.1") ==
        "POST /v3/kv/range HTTP/1.1\r\nHost: e:1\r\nAuthorization: tok.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  CHECK(without_origin("etcdserver: permission denied") == "permission denied");
}
