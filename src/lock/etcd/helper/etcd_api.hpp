// The requests the helper sends to etcd's v3 JSON gateway and what it reads from the
// answers (shapes in ../shared/research/distributed.md section 3, verified on 3.4.23).
// The gateway's quirks handled here: `bytes` fields are base64, int64 fields come as
// strings, and proto3 leaves out every field that has its default value (no `kvs` in an
// empty range, no `succeeded` in a failed txn, no `TTL` for a dead lease, no `type` in
// a PUT event), so a missing field reads as 0, false or empty.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace loto::etcd_helper {

// etcd answered with something that does not have the expected shape.
struct BadAnswer : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0; // 0: attached to no lease
};

// ---- Requests: the JSON body for each call (the path is in the comment).

// POST /v3/lease/grant
std::string grant_request(std::int64_t ttl_seconds);
// POST /v3/lease/keepalive and /v3/lease/revoke
std::string lease_request(std::int64_t lease);
// POST /v3/kv/range: the one key.
std::string key_request(std::string_view key);
// POST /v3/kv/range: every key under `prefix`, oldest (lowest create revision) first.
std::string queue_request(std::string_view prefix);
// POST /v3/kv/range: the keys under `prefix` created at or before `max_create_revision`,
// newest first: the first is the waiter right ahead of us (clientv3's waitDeletes), and
// how many there are is our place in the queue (kvs counted: `count` ignores the bound).
std::string ahead_request(std::string_view prefix, std::int64_t max_create_revision);
// POST /v3/auth/authenticate: a token for `user`.
std::string authenticate_request(std::string_view user, std::string_view password);
// POST /v3/kv/txn, clientv3's Mutex.tryAcquire: if `key` does not exist, create it with
// `value` under `lease`, else read it; either way also read the oldest key under `prefix`
// (the owner). With `queue_limit` 0, every key under `prefix` instead of the oldest
// (slots: the first N queue keys hold).
std::string enqueue_request(std::string_view key,
                            std::string_view prefix,
                            std::string_view value,
                            std::int64_t lease,
                            std::int64_t queue_limit = 1);
// POST /v3/kv/txn: a slot claimed by a holder. If `slot_key` does not exist and our queue
// key `my_key` still has create revision `my_revision` and lease `lease` (the ghost-grant
// check of a waiter let in), create `slot_key` with our queue key's name as its value
// under `lease`; else read `my_key`.
std::string slot_claim_request(std::string_view slot_key,
                               std::string_view my_key,
                               std::int64_t my_revision,
                               std::int64_t lease);
// POST /v3/watch: the deletions under `prefix` from `start_revision` on. A waiter watches
// them all, not only the key right ahead (clientv3's way), so that its place in the queue
// is fresh; a fleet's queue is short enough that the extra wake-ups cost nothing.
std::string watch_deletes_request(std::string_view prefix, std::int64_t start_revision);

// ---- Answers. Each throws BadAnswer if the answer does not have the expected shape.

struct GrantAnswer {
  std::int64_t lease = 0;
  std::int64_t ttl_seconds = 0;
};
GrantAnswer read_grant(const nlohmann::json& answer);

struct RangeAnswer {
  std::int64_t revision = 0; // the store's revision when the range was served
  std::vector<KeyValue> kvs; // what came back: never trust `count`, it ignores filters
};
RangeAnswer read_range(const nlohmann::json& answer);

struct EnqueueAnswer {
  bool created = false;          // the txn's compare held: the key is new
  std::int64_t my_revision = 0;  // the key's create revision
  std::optional<KeyValue> owner; // the oldest key under the prefix
  std::vector<KeyValue> queue;   // what the txn read under the prefix, oldest first
};
EnqueueAnswer read_enqueue(const nlohmann::json& answer);

// What came of a slot_claim_request: the slot is ours, or else our queue key as it is now
// (nullopt: gone).
struct SlotClaimAnswer {
  bool claimed = false;
  std::optional<KeyValue> mine;
};
SlotClaimAnswer read_slot_claim(const nlohmann::json& answer);

// The token of an authenticate answer.
std::string read_token(const nlohmann::json& answer);

// The TTL in seconds a keepalive answer reports; 0 when the lease is gone (the gateway
// then answers 200 with no TTL at all).
std::int64_t read_keepalive_ttl(const nlohmann::json& answer);

// ---- Errors and the classification of replies.

// The gateway's error, in either of its shapes: {"error":"...","message":"...","code":N}
// for ordinary calls, {"error":{"grpc_code":N,"message":"..."}} inside a stream.
struct EtcdError {
  int code = 0; // the gRPC status code (7 PermissionDenied, 14 Unavailable, ...)
  std::string message;
};
std::optional<EtcdError> read_error(const nlohmann::json& answer);

enum class ReplyKind {
  answer,        // a well-formed answer
  unavailable,   // try another endpoint: no answer, 503, "transport is closing", ...
  refused,       // permission denied or not authenticated
  token_expired, // our auth token is no longer valid (expired, or the auth store changed):
                 // authenticate again and send the request again
  unexpected,    // any other error, or something that is not the gateway's JSON
};

struct Reply {
  ReplyKind kind = ReplyKind::unexpected;
  nlohmann::json answer; // when kind == answer
  std::string message;   // one line saying why, for the other kinds
  int code = 0;          // the gRPC code of an error answer, 0 if none
};

// Reply::code of a refusal that came from the transport (TLS), not from etcd's answer.
inline constexpr int k_transport_refusal = -1;

// What an HTTP answer (status and body) from the gateway amounts to.
Reply classify_reply(long http_status, std::string_view body);

// ---- The watch stream: one JSON object per line.

enum class WatchNews {
  nothing, // created, progress, PUT events (filtered anyway), blank lines
  deleted, // a DELETE event: the key is gone
  ended,   // etcd cancelled the watch or the stream failed: range again
  refused, // permission denied
};

struct WatchLine {
  WatchNews news = WatchNews::nothing;
  std::string message; // why, for ended and refused
};
WatchLine read_watch_line(std::string_view line);

} // namespace loto::etcd_helper
