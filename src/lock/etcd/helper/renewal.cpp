#include "lock/etcd/helper/renewal.hpp"

#include "lock/etcd/helper/outcome.hpp"
#include "lock/etcd/protocol.hpp"

#include <algorithm>

namespace loto::etcd_helper {

namespace {

// After every endpoint has failed once in a row, wait this long before the next round.
constexpr std::int64_t k_round_pause_ns = 100 * k_ns_per_ms;

// The time limit of one renewal request: short, so that a frozen connection costs little
// of the lease, but not below what a busy cluster needs.
Timeouts renewal_timeouts(std::int64_t ttl_ms) {
  const auto limit = static_cast<long>(std::clamp<std::int64_t>(ttl_ms / 8, 100, 1000));
  return {limit, limit};
}

} // namespace

Renewal::Renewal(EtcdClient& etcd,
                 std::int64_t lease,
                 std::int64_t ttl_ms,
                 std::int64_t granted_sent_ns)
    : m_etcd(etcd), m_lease(lease), m_ttl_ms(ttl_ms), m_interval_ns(ttl_ms / 4 * k_ns_per_ms),
      m_timeouts(renewal_timeouts(ttl_ms)), m_next_ns(granted_sent_ns + m_interval_ns),
      m_confirmed_ns(granted_sent_ns) {}

Renewal::~Renewal() {
  m_etcd.multi().stop(m_transfer);
}

void Renewal::check_keys(std::vector<std::string> keys) {
  m_keys = std::move(keys);
}

std::int64_t Renewal::next_wake_ns() const {
  const std::int64_t deadline = m_confirmed_ns + m_ttl_ms * k_ns_per_ms;
  return m_step == Step::idle ? std::min(m_next_ns, deadline) : deadline;
}

void Renewal::tick(std::int64_t now_ns) {
  // Give up only after trying: a helper that was stopped (SIGSTOP, a suspended VM) past
  // the deadline asks etcd first, which knows whether the lease is still there.
  if (now_ns >= m_confirmed_ns + m_ttl_ms * k_ns_per_ms && m_failures_in_a_row > 0) {
    give_up();
  }
  if (m_step == Step::idle && now_ns >= m_next_ns) {
    if (m_etcd.needs_token()) {
      // A token first (etcd.user): the keepalive's time counts from when it is sent.
      m_step = Step::authenticate;
      m_etcd.start_authenticate(m_transfer, m_timeouts);
    } else {
      send_keepalive(now_ns);
    }
  }
}

void Renewal::send_keepalive(std::int64_t now_ns) {
  m_sent_ns = now_ns;
  m_step = Step::keepalive;
  m_etcd.start(m_transfer, "/v3/lease/keepalive", lease_request(m_lease), m_timeouts);
}

std::optional<std::int64_t> Renewal::on_finished(std::int64_t now_ns) {
  if (m_step == Step::authenticate) {
    const Reply reply = m_etcd.on_authenticated(m_transfer);
    if (reply.kind == ReplyKind::answer) {
      send_keepalive(now_ns);
    } else {
      retry(reply, now_ns);
    }
    return std::nullopt;
  }
  const Reply reply = EtcdClient::reply(m_transfer);
  if (reply.kind == ReplyKind::token_expired) {
    token_lapsed(reply, now_ns);
    return std::nullopt;
  }
  if (reply.kind != ReplyKind::answer) {
    retry(reply, now_ns);
    return std::nullopt;
  }
  try {
    return read_reply(reply);
  } catch (const BadAnswer& bad) {
    retry(Reply{ReplyKind::unexpected, nullptr, bad.what(), 0}, now_ns);
    return std::nullopt;
  }
}

std::optional<std::int64_t> Renewal::read_reply(const Reply& reply) {
  if (m_step == Step::keepalive) {
    // A dead lease is no error to the gateway: 200, and no TTL in the result.
    if (read_keepalive_ttl(reply.answer) <= 0) {
      throw Lost("the lease expired or was revoked", false);
    }
    if (m_keys.empty()) {
      return confirm();
    }
    m_step = Step::key_check;
    m_checking = 0;
    m_etcd.start(m_transfer, "/v3/kv/range", key_request(m_keys.front()), m_timeouts);
    return std::nullopt;
  }
  const RangeAnswer range = read_range(reply.answer);
  if (range.kvs.empty() || range.kvs.front().lease != m_lease) {
    throw Lost(std::string(m_checking == 0 ? "the lock key " : "the slot key ") +
                   m_keys[m_checking] + " was deleted",
               true);
  }
  if (++m_checking < m_keys.size()) {
    m_etcd.start(m_transfer, "/v3/kv/range", key_request(m_keys[m_checking]), m_timeouts);
    return std::nullopt;
  }
  return confirm();
}

// Our token lapsed (etcd's --auth-token-ttl of idleness is shorter than TTL/4): a new
// one, and the renewal again at once, on the same endpoint. It counts as a failure, so
// that a cluster that never accepts our tokens ends in give_up() like any other.
void Renewal::token_lapsed(const Reply& reply, std::int64_t now_ns) {
  m_etcd.drop_token();
  m_last_problem = ReplyKind::refused;
  m_last_problem_message = reply.message;
  m_last_problem_url = m_etcd.current();
  ++m_failures_in_a_row;
  m_step = Step::idle;
  m_next_ns = now_ns;
}

std::int64_t Renewal::confirm() {
  m_confirmed_ns = m_sent_ns;
  m_failures_in_a_row = 0;
  m_step = Step::idle;
  m_next_ns = m_sent_ns + m_interval_ns;
  return m_sent_ns;
}

void Renewal::retry(const Reply& problem, std::int64_t now_ns) {
  m_last_problem = problem.kind;
  m_last_problem_message = problem.message;
  m_last_problem_url = m_etcd.current();
  m_etcd.fail_over(problem.message);
  m_step = Step::idle;
  ++m_failures_in_a_row;
  // The next endpoint at once; a pause once each of them has failed in turn.
  const bool round_over = m_failures_in_a_row % m_etcd.endpoint_count() == 0;
  m_next_ns = round_over ? now_ns + k_round_pause_ns : now_ns;
}

void Renewal::give_up() const {
  int code = etcd_protocol::k_unavailable;
  std::string detail = m_etcd.unreachable_message();
  if (m_last_problem == ReplyKind::refused) {
    code = etcd_protocol::k_refused;
    detail = "etcd refused: " + m_last_problem_message;
  } else if (m_last_problem == ReplyKind::unexpected) {
    code = etcd_protocol::k_software;
    detail = "unexpected answer from etcd at " + m_last_problem_url + ": " + m_last_problem_message;
  }
  if (m_keys.empty()) {
    throw Failure(code, detail); // queued: nothing was taken
  }
  throw Lost("no renewal of the lease succeeded for " + std::to_string(m_ttl_ms) + " ms (" +
                 detail + ")",
             true);
}

} // namespace loto::etcd_helper
