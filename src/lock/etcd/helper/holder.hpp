// The holder record: who holds (or queues for) a lock. loto writes it as the value of its
// lock key, as JSON, so that other hosts can say who is in the way; `etcdctl lock` leaves
// the value empty.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace loto::etcd_helper {

struct HolderRecord {
  std::string host;
  std::optional<std::int64_t> pid;
  std::string user;
  std::string command;
};

// {"host":H,"pid":P,"user":U,"command":C,"since":"<UTC ISO-8601 of now>"}; fields left
// empty (or pid unset) are left out. Bytes that are not UTF-8 become U+FFFD.
std::string holder_record_json(const HolderRecord& record, std::time_t now);

// A key's holder record field by field, as text ("" for each one the record lacks, and
// for all of them when the value is not a record of ours).
struct HolderFields {
  std::string host;
  std::string pid;
  std::string user;
  std::string since;
  std::string command;
};
HolderFields holder_fields(std::string_view value);

// What people are told when the key has no record of ours.
inline constexpr std::string_view k_unknown_holder =
    "a client that left no holder record (etcdctl lock?)";

// One line for people from a key's value: "pid 4242 on web1 (root) since
// 2026-11-30T06:00:00Z: backup.sh --full", or k_unknown_holder for an empty value or
// one that is not a JSON object with at least one of those fields.
std::string describe_holder(std::string_view value);

} // namespace loto::etcd_helper
