#include "lock/etcd/helper/etcd_api.hpp"

#include "lock/etcd/helper/codec.hpp"

#include <algorithm>
#include <array>

namespace loto::etcd_helper {

namespace {

using nlohmann::json;

// ---- Reading fields, with proto3's omitted defaults.

void require_object(const json& value, std::string_view what) {
  if (!value.is_object()) {
    throw BadAnswer(std::string(what) + " is not a JSON object");
  }
}

// An int64 field: sent as a string (or, by other versions, a number); absent is 0.
std::int64_t int_field(const json& object, const char* name) {
  require_object(object, name);
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) {
    return 0;
  }
  if (found->is_string()) {
    if (const auto value = parse_int64(found->get_ref<const std::string&>())) {
      return *value;
    }
  } else if (found->is_number_integer()) {
    return found->get<std::int64_t>();
  }
  throw BadAnswer(std::string("field '") + name + "' is not an integer");
}

bool bool_field(const json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) {
    return false;
  }
  if (!found->is_boolean()) {
    throw BadAnswer(std::string("field '") + name + "' is not a boolean");
  }
  return found->get<bool>();
}

// A `bytes` field, base64 on the wire; absent is empty.
std::string bytes_field(const json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) {
    return {};
  }
  if (found->is_string()) {
    if (auto bytes = base64_decode(found->get_ref<const std::string&>())) {
      return std::move(*bytes);
    }
  }
  throw BadAnswer(std::string("field '") + name + "' is not base64");
}

std::string string_field(const json& object, const char* name) {
  const auto found = object.find(name);
  if (found == object.end() || !found->is_string()) {
    return {};
  }
  return found->get<std::string>();
}

// A message field; absent is an empty object.
const json& object_field(const json& object, const char* name) {
  static const json empty = json::object();
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) {
    return empty;
  }
  require_object(*found, name);
  return *found;
}

// A repeated field; absent is an empty array.
const json& array_field(const json& object, const char* name) {
  static const json empty = json::array();
  const auto found = object.find(name);
  if (found == object.end() || found->is_null()) {
    return empty;
  }
  if (!found->is_array()) {
    throw BadAnswer(std::string("field '") + name + "' is not an array");
  }
  return *found;
}

KeyValue read_kv(const json& kv) {
  require_object(kv, "kv");
  return {bytes_field(kv, "key"),
          bytes_field(kv, "value"),
          int_field(kv, "create_revision"),
          int_field(kv, "mod_revision"),
          int_field(kv, "lease")};
}

std::int64_t header_revision(const json& answer) {
  return int_field(object_field(answer, "header"), "revision");
}

// ---- Building requests.

std::string b64(std::string_view bytes) {
  return base64_encode(bytes);
}

// The range fields that select every key under `prefix`, sorted by create revision.
json prefix_range(std::string_view prefix, std::string_view order) {
  return {{"key", b64(prefix)},
          {"range_end", b64(prefix_range_end(prefix))},
          {"sort_target", "CREATE"},
          {"sort_order", order}};
}

// The oldest `limit` keys under `prefix` (all of them with 0); limit 1 is clientv3's
// WithFirstCreate().
json owner_range(std::string_view prefix, std::int64_t limit) {
  json range = prefix_range(prefix, "ASCEND");
  if (limit > 0) {
    range["limit"] = std::to_string(limit);
  }
  return range;
}

// ---- Errors.

bool mentions(std::string_view message, std::string_view phrase) {
  return message.find(phrase) != std::string_view::npos;
}

ReplyKind error_kind(long http_status, const EtcdError& error) {
  // gRPC codes: 1 Canceled, 4 DeadlineExceeded, 8 ResourceExhausted, 14 Unavailable are
  // this member's trouble (stopping, no leader, request timed out, overloaded): another
  // member may answer. 7 PermissionDenied and 16 Unauthenticated are the cluster's word.
  constexpr std::array k_transient = {1, 4, 8, 14};
  if (http_status == 503 || mentions(error.message, "transport is closing") ||
      std::find(k_transient.begin(), k_transient.end(), error.code) != k_transient.end()) {
    return ReplyKind::unavailable;
  }
  // A simple token lapses after etcd's --auth-token-ttl of idleness; "old revision" means
  // roles or users changed since the token was issued (clientv3 authenticates again too).
  if (mentions(error.message, "invalid auth token") ||
      mentions(error.message, "revision of auth store is old")) {
    return ReplyKind::token_expired;
  }
  if (error.code == 7 || error.code == 16 || mentions(error.message, "permission denied") ||
      mentions(error.message, "user name is empty")) {
    return ReplyKind::refused;
  }
  return ReplyKind::unexpected;
}

// The start of a body that is not the gateway's JSON, for a message.
std::string excerpt(std::string_view body) {
  constexpr std::size_t k_limit = 120;
  std::string text;
  for (const char c : one_line(body.substr(0, k_limit))) {
    if (c != ' ' || (!text.empty() && text.back() != ' ')) {
      text += c; // runs of spaces (indentation, line breaks) as one
    }
  }
  if (body.size() > k_limit) {
    text += "...";
  }
  return text;
}

} // namespace

std::string grant_request(std::int64_t ttl_seconds) {
  return json{{"TTL", ttl_seconds}}.dump();
}

std::string lease_request(std::int64_t lease) {
  return json{{"ID", std::to_string(lease)}}.dump();
}

std::string authenticate_request(std::string_view user, std::string_view password) {
  return json{{"name", user}, {"password", password}}.dump();
}

std::string read_token(const json& answer) {
  require_object(answer, "the answer");
  std::string token = string_field(answer, "token");
  if (token.empty()) {
    throw BadAnswer("the authenticate answer has no token");
  }
  return token;
}

std::string key_request(std::string_view key) {
  return json{{"key", b64(key)}}.dump();
}

std::string queue_request(std::string_view prefix) {
  return prefix_range(prefix, "ASCEND").dump();
}

std::string ahead_request(std::string_view prefix, std::int64_t max_create_revision) {
  json range = prefix_range(prefix, "DESCEND");
  range["max_create_revision"] = std::to_string(max_create_revision);
  range["keys_only"] = true;
  return range.dump();
}

std::string enqueue_request(std::string_view key,
                            std::string_view prefix,
                            std::string_view value,
                            std::int64_t lease,
                            std::int64_t queue_limit) {
  const json put = {{"key", b64(key)}, {"value", b64(value)}, {"lease", std::to_string(lease)}};
  const json compare = {
      {"key", b64(key)}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}};
  const json request = {{"compare", json::array({compare})},
                        {"success",
                         json::array({{{"request_put", put}},
                                      {{"request_range", owner_range(prefix, queue_limit)}}})},
                        {"failure",
                         json::array({{{"request_range", {{"key", b64(key)}}}},
                                      {{"request_range", owner_range(prefix, queue_limit)}}})}};
  return request.dump();
}

std::string slot_claim_request(std::string_view slot_key,
                               std::string_view my_key,
                               std::int64_t my_revision,
                               std::int64_t lease) {
  const json put = {
      {"key", b64(slot_key)}, {"value", b64(my_key)}, {"lease", std::to_string(lease)}};
  const json slot_free = {
      {"key", b64(slot_key)}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}};
  const json still_queued = {{"key", b64(my_key)},
                             {"target", "CREATE"},
                             {"result", "EQUAL"},
                             {"create_revision", std::to_string(my_revision)}};
  const json still_ours = {{"key", b64(my_key)},
                           {"target", "LEASE"},
                           {"result", "EQUAL"},
                           {"lease", std::to_string(lease)}};
  const json request = {{"compare", json::array({slot_free, still_queued, still_ours})},
                        {"success", json::array({{{"request_put", put}}})},
                        {"failure", json::array({{{"request_range", {{"key", b64(my_key)}}}}})}};
  return request.dump();
}

std::string watch_deletes_request(std::string_view prefix, std::int64_t start_revision) {
  const json create = {{"key", b64(prefix)},
                       {"range_end", b64(prefix_range_end(prefix))},
                       {"start_revision", std::to_string(start_revision)},
                       {"filters", json::array({"NOPUT"})}};
  return json{{"create_request", create}}.dump();
}

GrantAnswer read_grant(const json& answer) {
  require_object(answer, "the answer");
  GrantAnswer grant{int_field(answer, "ID"), int_field(answer, "TTL")};
  if (grant.lease == 0 || grant.ttl_seconds <= 0) {
    throw BadAnswer("the lease grant has no lease ID or TTL");
  }
  return grant;
}

RangeAnswer read_range(const json& answer) {
  require_object(answer, "the answer");
  RangeAnswer range;
  range.revision = header_revision(answer);
  for (const json& kv : array_field(answer, "kvs")) {
    range.kvs.push_back(read_kv(kv));
  }
  return range;
}

EnqueueAnswer read_enqueue(const json& answer) {
  require_object(answer, "the answer");
  const json& responses = array_field(answer, "responses");
  if (responses.size() != 2) {
    throw BadAnswer("the txn answer does not have two responses");
  }
  EnqueueAnswer result;
  result.created = bool_field(answer, "succeeded");
  if (result.created) {
    // The put happened in this txn: its revision is the key's create revision.
    result.my_revision = header_revision(answer);
  } else {
    const RangeAnswer mine = read_range(object_field(responses[0], "response_range"));
    if (mine.kvs.empty()) {
      throw BadAnswer("the txn found the key and then did not return it");
    }
    result.my_revision = mine.kvs.front().create_revision;
  }
  RangeAnswer owners = read_range(object_field(responses[1], "response_range"));
  if (!owners.kvs.empty()) {
    result.owner = owners.kvs.front();
  }
  result.queue = std::move(owners.kvs);
  return result;
}

SlotClaimAnswer read_slot_claim(const json& answer) {
  require_object(answer, "the answer");
  SlotClaimAnswer result;
  result.claimed = bool_field(answer, "succeeded");
  if (result.claimed) {
    return result;
  }
  const json& responses = array_field(answer, "responses");
  if (responses.size() != 1) {
    throw BadAnswer("the slot txn answer does not have one response");
  }
  RangeAnswer mine = read_range(object_field(responses[0], "response_range"));
  if (!mine.kvs.empty()) {
    result.mine = std::move(mine.kvs.front());
  }
  return result;
}

std::int64_t read_keepalive_ttl(const json& answer) {
  require_object(answer, "the answer");
  const auto result = answer.find("result");
  if (result == answer.end()) {
    throw BadAnswer("the keepalive answer has no result");
  }
  return int_field(*result, "TTL");
}

std::optional<EtcdError> read_error(const json& answer) {
  if (!answer.is_object()) {
    return std::nullopt;
  }
  const auto error = answer.find("error");
  if (error == answer.end() || error->is_null()) {
    return std::nullopt;
  }
  // Messages and codes are read leniently: an odd error is still an error.
  const auto code_of = [](const json& object, const char* name) {
    const auto found = object.find(name);
    return found != object.end() && found->is_number_integer() ? found->get<int>() : 0;
  };
  if (error->is_object()) {
    return EtcdError{code_of(*error, "grpc_code"), string_field(*error, "message")};
  }
  std::string message = string_field(answer, "message");
  if (message.empty() && error->is_string()) {
    message = error->get<std::string>();
  }
  return EtcdError{code_of(answer, "code"), std::move(message)};
}

Reply classify_reply(long http_status, std::string_view body) {
  const json document = json::parse(body, nullptr, false);
  const bool is_object = !document.is_discarded() && document.is_object();
  const std::optional<EtcdError> error = is_object ? read_error(document) : std::nullopt;
  if (http_status == 200 && is_object && !error) {
    return {ReplyKind::answer, document, {}, 0};
  }
  const std::string status = "HTTP " + std::to_string(http_status);
  if (error) {
    const ReplyKind kind = error_kind(http_status, *error);
    std::string message = one_line(error->message.empty() ? status : error->message);
    if (kind == ReplyKind::unexpected && error->code != 0) {
      message += " (code " + std::to_string(error->code) + ")"; // a clue for the odd case
    }
    return {kind, nullptr, std::move(message), error->code};
  }
  if (http_status == 400 && mentions(body, "CommonName of client")) {
    // etcd 3.4.23 and later, with authentication on: a client certificate that names a
    // CommonName (which the gateway cannot pass on as the user) is turned away.
    return {ReplyKind::refused,
            nullptr,
            "refuses client certificates with a CommonName while authentication is on; use "
            "a certificate without CN (etcd: " +
                excerpt(body) + ")",
            k_transport_refusal};
  }
  // Not the gateway's JSON: a proxy's error page, or something else on that port.
  const bool gateway_trouble = http_status == 502 || http_status == 503 || http_status == 504;
  return {gateway_trouble ? ReplyKind::unavailable : ReplyKind::unexpected,
          nullptr,
          body.empty() ? status : status + ": " + excerpt(body),
          0};
}

WatchLine read_watch_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  if (line.empty()) {
    return {};
  }
  const json document = json::parse(line, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return {WatchNews::ended, "the watch stream sent something that is not JSON"};
  }
  if (const auto error = read_error(document)) {
    const bool refused = error_kind(200, *error) == ReplyKind::refused;
    return {refused ? WatchNews::refused : WatchNews::ended, one_line(error->message)};
  }
  try {
    const json& result = object_field(document, "result");
    if (bool_field(result, "canceled")) {
      const std::string reason = string_field(result, "cancel_reason");
      return {WatchNews::ended, reason.empty() ? "etcd cancelled the watch" : one_line(reason)};
    }
    for (const json& event : array_field(result, "events")) {
      if (event.is_object() && string_field(event, "type") == "DELETE") {
        return {WatchNews::deleted, {}};
      }
    }
  } catch (const BadAnswer& bad) {
    return {WatchNews::ended, bad.what()};
  }
  return {};
}

} // namespace loto::etcd_helper
