#include "lock/etcd/helper/codec.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace loto::etcd_helper {

namespace {

constexpr std::string_view k_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of a base64 digit, or -1.
int base64_value(char digit) {
  const auto position = k_alphabet.find(digit);
  return position == std::string_view::npos ? -1 : static_cast<int>(position);
}

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// Whether every character of `text` is `allowed`.
bool only(std::string_view text, bool (*allowed)(char)) {
  return std::all_of(text.begin(), text.end(), allowed);
}

// A host name as DNS (or /etc/hosts) knows it; also covers IPv4 addresses.
bool is_host_name_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
}

// RFC 6874's zone ID characters (unreserved).
bool is_zone_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// The inside of "[...]": an IPv6 address, maybe with a zone ("%25eth0" as RFC 6874 writes
// it, or "%eth0"); returned as the resolver takes it, "fe80::1%eth0".
std::string ipv6_host(std::string_view inside) {
  std::string_view address = inside;
  std::string_view zone;
  if (const auto percent = inside.find('%'); percent != std::string_view::npos) {
    address = inside.substr(0, percent);
    zone = inside.substr(percent + 1);
    if (zone.starts_with("25")) {
      zone.remove_prefix(2);
    }
    if (zone.empty() || !only(zone, is_zone_char)) {
      throw BadUrl("bad IPv6 zone");
    }
  }
  if (address.find(':') == std::string_view::npos || !only(address, is_ipv6_char)) {
    throw BadUrl("bad IPv6 address in brackets");
  }
  return zone.empty() ? std::string(address) : std::string(address) + "%" + std::string(zone);
}

// The port of ":PORT" (`after` the host), or 2379 when `after` is empty.
std::uint16_t parse_port(std::string_view after) {
  if (after.empty()) {
    return k_default_etcd_port;
  }
  if (!after.starts_with(':')) {
    throw BadUrl("expected ':' and a port after the host");
  }
  const std::string_view text = after.substr(1);
  if (text.empty()) {
    throw BadUrl("empty port");
  }
  unsigned value = 0;
  const char* const end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.size() > 5 || result.ec != std::errc{} || result.ptr != end || value == 0 ||
      value > 65535) {
    throw BadUrl("bad port '" + std::string(text) + "'");
  }
  return static_cast<std::uint16_t>(value);
}

} // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16U |
                                                  static_cast<unsigned char>(bytes[i + 1]) << 8U |
                                                  static_cast<unsigned char>(bytes[i + 2]));
    out += k_alphabet[group >> 18U & 63U];
    out += k_alphabet[group >> 12U & 63U];
    out += k_alphabet[group >> 6U & 63U];
    out += k_alphabet[group & 63U];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) {
    return out;
  }
  auto group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16U);
  if (rest == 2) {
    group |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8U);
  }
  out += k_alphabet[group >> 18U & 63U];
  out += k_alphabet[group >> 12U & 63U];
  out += rest == 2 ? k_alphabet[group >> 6U & 63U] : '=';
  out += '=';
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) {
    return std::nullopt; // one digit left over carries fewer than 8 bits
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  unsigned bit_count = 0;
  for (const char digit : text) {
    const int value = base64_value(digit);
    if (value < 0) {
      return std::nullopt;
    }
    bits = bits << 6U | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>(bits >> bit_count & 0xffU);
    }
  }
  return out;
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    const auto last = static_cast<unsigned char>(end.back());
    if (last < 0xffU) {
      end.back() = static_cast<char>(last + 1U);
      return end;
    }
    end.pop_back();
  }
  end.push_back('\0'); // `end` is empty here
  return end;
}

std::string lease_hex(std::int64_t lease) {
  std::array<char, 24> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), lease, 16);
  return {buffer.data(), result.ptr};
}

std::optional<std::int64_t> parse_int64(std::string_view text) {
  std::int64_t value = 0;
  const char* const end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ec != std::errc{} || result.ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20U || byte == 0x7fU) {
      c = ' ';
    }
  }
  return out;
}

std::string iso8601_utc(std::time_t time) {
  std::tm parts{};
  gmtime_r(&time, &parts);
  std::array<char, 32> buffer{};
  const std::size_t length =
      std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return {buffer.data(), length};
}

EndpointUrl parse_endpoint_url(std::string_view url) {
  EndpointUrl parts;
  if (starts_with_nocase(url, "https://")) {
    parts.https = true;
    url.remove_prefix(8);
  } else if (starts_with_nocase(url, "http://")) {
    url.remove_prefix(7);
  } else {
    throw BadUrl("expected http:// or https://");
  }
  const std::string_view authority = url.substr(0, url.find_first_of("/?#"));
  const std::string_view rest = url.substr(authority.size());
  if (!rest.empty() && rest != "/") {
    throw BadUrl("a path, query or fragment is not supported");
  }
  if (authority.find('@') != std::string_view::npos) {
    throw BadUrl("user info is not supported");
  }
  std::string_view after_host;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw BadUrl("no ']' after the IPv6 address");
    }
    parts.host = ipv6_host(authority.substr(1, close - 1));
    after_host = authority.substr(close + 1);
  } else {
    const std::string_view host = authority.substr(0, authority.find(':'));
    if (host.empty()) {
      throw BadUrl("no host");
    }
    if (!only(host, is_host_name_char)) {
      throw BadUrl("bad host name '" + std::string(host) + "'");
    }
    parts.host = host;
    after_host = authority.substr(host.size());
  }
  parts.port = parse_port(after_host);
  return parts;
}

std::string host_and_port(const EndpointUrl& url) {
  if (url.host.find(':') == std::string::npos) {
    return url.host + ":" + std::to_string(url.port);
  }
  // An IPv6 address, without its zone: that means nothing to the server (RFC 6874).
  const std::string_view address = std::string_view(url.host).substr(0, url.host.find('%'));
  return "[" + std::string(address) + "]:" + std::to_string(url.port);
}

} // namespace loto::etcd_helper
