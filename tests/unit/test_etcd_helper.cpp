// Unit tests for the pure parts of loto-etcd (src/lock/etcd/helper): base64, prefix
// ranges, lease IDs, holder records, the command line, and reading etcd's JSON answers
// the way the v3 gateway of etcd 3.4.23 sends them (int64 as strings, defaults left out).
#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/etcd_api.hpp"
#include "lock/etcd/helper/holder.hpp"
#include "lock/etcd/helper/options.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

using namespace loto::etcd_helper;
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

TEST_CASE("last_ahead_request is clientv3's waitDeletes range", "[requests]") {
  const json range = json::parse(last_ahead_request("loto/x/", 41));
  CHECK(range == json{{"key", b64("loto/x/")},
                      {"range_end", b64("loto/x0")},
                      {"sort_target", "CREATE"},
                      {"sort_order", "DESCEND"},
                      {"limit", "1"},
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
  CHECK(json::parse(watch_deletes_request("loto/x/a", 52)) ==
        json{{"create_request",
              {{"key", b64("loto/x/a")}, {"start_revision", "52"}, {"filters", {"NOPUT"}}}}});
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
