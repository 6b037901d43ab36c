#include "lock/etcd/helper/codec.hpp"

#include <array>
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

} // namespace loto::etcd_helper
