// Byte and text helpers for talking to etcd's JSON gateway: base64 for the `bytes`
// fields, prefix ranges, lease IDs, int64 values sent as strings, one-line fields.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace loto::etcd_helper {

// Standard base64 with padding, as the gateway expects for keys and values.
std::string base64_encode(std::string_view bytes);

// The bytes of standard base64 text (padding optional); nullopt if it is not base64.
std::optional<std::string> base64_decode(std::string_view text);

// The range_end that makes a range cover every key starting with `prefix`: the prefix
// with its last byte incremented, trailing 0xff bytes dropped first (clientv3's
// GetPrefixRangeEnd). A prefix of only 0xff bytes has no end: "\0" means "to the last key".
std::string prefix_range_end(std::string_view prefix);

// A lease ID as etcd's mutex writes it into the key: lowercase hex, no padding (Go's %x).
std::string lease_hex(std::int64_t lease);

// A decimal int64, as the gateway sends them (in strings); nullopt for anything else.
std::optional<std::int64_t> parse_int64(std::string_view text);

// `text` with every control character (tab and line breaks included) turned into a
// space, so that it fits in one field of one protocol line.
std::string one_line(std::string_view text);

// "2026-11-30T06:00:00Z".
std::string iso8601_utc(std::time_t time);

} // namespace loto::etcd_helper
