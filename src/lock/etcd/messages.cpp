#include "lock/etcd/messages.hpp"

#include "error.hpp"
#include "lock/etcd/protocol.hpp"
#include "text.hpp"

#include <algorithm>

namespace loto {

namespace {

constexpr double k_term_fraction = 0.6;
constexpr double k_kill_fraction = 0.8;
constexpr double k_grace_fraction = 0.2;

Duration fraction_of(Duration ttl, double fraction) {
  return std::chrono::duration_cast<Duration>(ttl * fraction);
}

MonotonicTime monotonic_from_ns(const std::string& text) {
  return MonotonicTime(std::chrono::nanoseconds(std::stoll(text)));
}

} // namespace

const std::string& HelperMessage::field(std::size_t index) const {
  static const std::string none;
  return index < fields.size() ? fields[index] : none;
}

HelperMessage parse_helper_message(std::string_view line) {
  HelperMessage message;
  const auto tab = line.find(etcd_protocol::k_separator);
  message.verb = std::string(line.substr(0, tab));
  if (tab == std::string_view::npos) {
    return message;
  }
  std::size_t at = tab + 1;
  for (;;) {
    const auto next = line.find(etcd_protocol::k_separator, at);
    message.fields.emplace_back(line.substr(at, next == std::string_view::npos ? next : next - at));
    if (next == std::string_view::npos) {
      return message;
    }
    at = next + 1;
  }
}

int parse_count(const std::string& text) {
  return parse_number<int>(text).value_or(0);
}

int holders_among(const HelperMessage& holders, int count) {
  const int held = holders.fields.size() > 3 ? parse_count(holders.field(3)) : 1;
  return std::clamp(held, 1, count);
}

int failure_exit_code(const HelperMessage& failed) {
  const auto code = parse_exit_code(failed.field(0));
  return code && *code != 0 ? *code : exit_code::unavailable;
}

std::optional<LockHolder> holder_of(const HelperMessage& holders) {
  const int count = parse_count(holders.field(0));
  if (count <= 0) {
    return std::nullopt;
  }
  return LockHolder{0, "", holders.field(1), count - holders_among(holders, count), 0};
}

LockState lock_state_of(const HelperMessage& holders, const std::vector<HelperMessage>& entries) {
  LockState state;
  const int count = parse_count(holders.field(0));
  if (count <= 0) {
    return state;
  }
  const int held = holders_among(holders, count);
  if (entries.size() != static_cast<std::size_t>(count)) {
    state.holders.push_back({0, "", "", "", "", "exclusive", holders.field(1)});
    state.waiting = count - held;
    state.waiters_listed = false;
    return state;
  }
  for (const HelperMessage& entry : entries) {
    // entry HOST PID USER SINCE COMMAND HOLDER SLOT
    LockParty party{parse_count(entry.field(1)),
                    entry.field(0),
                    entry.field(2),
                    entry.field(4),
                    entry.field(3),
                    "exclusive",
                    entry.field(5)};
    if (const auto slot = parse_exit_code(entry.field(6))) {
      party.slot = *slot; // 0..127, which the exit-code reader accepts
    }
    auto& parties =
        state.holders.size() < static_cast<std::size_t>(held) ? state.holders : state.waiters;
    parties.push_back(std::move(party));
  }
  return state;
}

void LeaseTimes::apply(const HelperMessage& message) {
  if (message.verb == etcd_protocol::k_granted) {
    id_hex = message.field(0);
    ttl = std::chrono::milliseconds(std::stoll(message.field(1)));
    renewed_at = monotonic_from_ns(message.field(2));
  } else if (message.verb == etcd_protocol::k_renewed) {
    renewed_at = std::max(renewed_at, monotonic_from_ns(message.field(0)));
  }
}

MonotonicTime LeaseTimes::term_deadline(const std::optional<MonotonicTime>& lost_at) const {
  const MonotonicTime expected = renewed_at + fraction_of(ttl, k_term_fraction);
  return lost_at ? std::min(*lost_at, expected) : expected;
}

MonotonicTime LeaseTimes::kill_deadline(const std::optional<MonotonicTime>& lost_at) const {
  const MonotonicTime expected = renewed_at + fraction_of(ttl, k_kill_fraction);
  return lost_at ? std::min(*lost_at + fraction_of(ttl, k_grace_fraction), expected) : expected;
}

} // namespace loto
