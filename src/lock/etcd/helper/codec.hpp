// Byte and text helpers for talking to etcd's JSON gateway: base64 for the `bytes`
// fields, prefix ranges, lease IDs, int64 values sent as strings, one-line fields, and
// the endpoint URLs.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <stdexcept>
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

// etcd's client port, for an endpoint URL that names none.
inline constexpr std::uint16_t k_default_etcd_port = 2379;

// An endpoint URL taken apart.
struct EndpointUrl {
  bool https = false;
  std::string host; // a name, an IPv4 address, or an IPv6 address without its brackets
  std::uint16_t port = k_default_etcd_port;
};

struct BadUrl : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Takes apart http://HOST[:PORT] or https://HOST[:PORT] (the scheme in any case, one '/'
// after it allowed). HOST is a name, an IPv4 address, or an IPv6 address in brackets
// ("[fd00::1]", a zone as "%25eth0" or "%eth0"); PORT is 1 to 65535, 2379 if left out.
// Throws BadUrl, saying why in a few words, for anything else: another scheme, user
// info, a path, a query or a fragment, a bad port.
EndpointUrl parse_endpoint_url(std::string_view url);

// HOST:PORT, an IPv6 address in brackets again (without its zone): the Host header.
std::string host_and_port(const EndpointUrl& url);

} // namespace loto::etcd_helper
