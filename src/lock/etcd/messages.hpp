// What loto reads from its etcd helper (protocol.hpp): the messages, and the deadlines a
// lease's renewals leave the job. Kept apart from the socket and the processes, so that
// they are tested alone (tests/unit/test_etcd_messages.cpp).
#pragma once

#include "duration.hpp"
#include "lock/lock.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loto {

// One line from the helper: its verb and the fields after it.
struct HelperMessage {
  std::string verb;
  std::vector<std::string> fields;

  // Field `index`, or "" if the helper sent fewer.
  const std::string& field(std::size_t index) const;
};

// A line without its newline, split at the protocol's separator.
HelperMessage parse_helper_message(std::string_view line);

// A count the helper sent, or 0 if the text is not one (whole, in int's range).
int parse_count(const std::string& text);

// How many of the `count` (> 0) keys of a "holders" answer hold: its HELD field within
// 1..count, or 1 for a helper that sends none (a mutex).
int holders_among(const HelperMessage& holders, int count);

// The exit code a "failed CODE MESSAGE" asks for: CODE, or 69 (unavailable) when it is
// missing, 0 or not an exit code.
int failure_exit_code(const HelperMessage& failed);

// The holder a "holders COUNT HOLDER URL [HELD]" line names, with how many wait behind
// the holders; nullopt when COUNT is 0 (free).
std::optional<LockHolder> holder_of(const HelperMessage& holders);

// What `loto-etcd --inspect` tells: the "holders" line, then the "entry" lines (one per
// key in queue order, holders first). Without one entry per key (a helper that sends
// none), the holder line and a count of waiters.
LockState lock_state_of(const HelperMessage& holders, const std::vector<HelperMessage>& entries);

// The lease as loto counts it: its TTL and when its last good renewal was sent.
//
// With a lease of TTL T whose last renewal that succeeded was sent at S, etcd cannot
// expire it before S + T (it restarts the TTL when the renewal arrives, after S). The job
// gets SIGTERM at S + 0.6 T and SIGKILL at S + 0.8 T; the helper renews every T/4, so
// two renewals in a row can fail, or a leader election of about a second can pass,
// before the job is disturbed. The last 0.2 T are the margin for the kill to take effect.
// When etcd says the lease or the key is gone (at L), another host may hold the lock
// already: SIGTERM at L, SIGKILL at L + 0.2 T, or the deadlines above if sooner.
struct LeaseTimes {
  std::string id_hex;
  Duration ttl{};
  MonotonicTime renewed_at{}; // when the grant or the last good keepalive was sent

  // Takes in a "granted" or "renewed" message; ignores any other.
  void apply(const HelperMessage& message);

  MonotonicTime term_deadline(const std::optional<MonotonicTime>& lost_at) const;
  MonotonicTime kill_deadline(const std::optional<MonotonicTime>& lost_at) const;
};

} // namespace loto
