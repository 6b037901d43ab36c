// Keeping the lease alive, from the grant on: while queued (a waiter's key, its place in
// the queue, lives only as long as the lease) and while holding. Every TTL/4 one POST
// to /v3/lease/keepalive; once the lock is held, each renewal also reads the lock key (and
// a slot holder's slot key), so that a key deleted by hand (`etcdctl del`) is noticed too. Only a
// renewal that fully succeeded is reported, with the time its keepalive was sent, from which loto
// computes how long the lease is sure to last.
#pragma once

#include "lock/etcd/helper/etcd_client.hpp"
#include "lock/etcd/helper/http.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loto::etcd_helper {

class Renewal {
public:
  // `granted_sent_ns`: when the lease grant was sent; the lease lives at least `ttl_ms`
  // from then.
  Renewal(EtcdClient& etcd, std::int64_t lease, std::int64_t ttl_ms, std::int64_t granted_sent_ns);
  ~Renewal();
  Renewal(const Renewal&) = delete;
  Renewal& operator=(const Renewal&) = delete;

  // The lock is ours: from now on each renewal also checks that each of `keys` (the lock
  // key, then a slot key) is still there under our lease.
  void check_keys(std::vector<std::string> keys);

  // When tick() next has something to do.
  std::int64_t next_wake_ns() const;

  // Starts a renewal when one is due. Throws once the lease must have expired and the
  // renewals tried since have failed: Lost when holding, Failure while queued.
  void tick(std::int64_t now_ns);

  bool owns(const Transfer& transfer) const {
    return &transfer == &m_transfer;
  }

  // Its transfer finished. Returns the SENT_NS of a renewal that has just succeeded;
  // throws Lost if etcd says the lease or the key is gone.
  std::optional<std::int64_t> on_finished(std::int64_t now_ns);

private:
  enum class Step { idle, authenticate, keepalive, key_check };

  void send_keepalive(std::int64_t now_ns);
  void token_lapsed(const Reply& reply, std::int64_t now_ns);
  std::optional<std::int64_t> read_reply(const Reply& reply);
  std::int64_t confirm();
  void retry(const Reply& problem, std::int64_t now_ns);
  [[noreturn]] void give_up() const;

  EtcdClient& m_etcd;
  Transfer m_transfer{m_etcd.multi()};
  std::int64_t m_lease;
  std::int64_t m_ttl_ms;
  std::int64_t m_interval_ns;
  Timeouts m_timeouts;
  std::vector<std::string> m_keys; // empty until the lock is ours
  std::size_t m_checking = 0;      // which of m_keys the key check reads

  Step m_step = Step::idle;
  std::int64_t m_sent_ns = 0;  // when the keepalive of the current renewal was sent
  std::int64_t m_next_ns;      // when the next one is due
  std::int64_t m_confirmed_ns; // SENT_NS of the last renewal that succeeded
  std::size_t m_failures_in_a_row = 0;
  // Why the last attempt failed, and at which endpoint.
  ReplyKind m_last_problem = ReplyKind::unavailable;
  std::string m_last_problem_message;
  std::string m_last_problem_url;
};

} // namespace loto::etcd_helper
