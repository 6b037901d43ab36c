// One run of the helper: take (or inspect) one lock the way clientv3's concurrency.Mutex
// does, so that loto and `etcdctl lock NAME` exclude each other:
//   - the key is NAME/<lease in hex>, attached to our lease; its create revision is our
//     place in the queue and the fencing token;
//   - one txn creates it and reads the oldest key under NAME/ (the owner);
//   - a waiter watches the deletions under NAME/ and looks again at the keys ahead of it
//     after each (etcd's waitDeletes, which watches only the key right ahead: every
//     deletion here keeps the reported place in the queue fresh), and finally checks its
//     own key is still there.
// With --slots N (N > 1) it is the semaphore recipe on the same keys (semaphore.hpp): the
// first N keys hold, and a holder claims a slot key NAME/slot/<i> under its lease.
// Everything happens on one thread: the request of the main flow, the watch, the lease
// renewal and descriptor 3 are all served by one event loop (Multi, an asio io_context).
#pragma once

#include "lock/etcd/helper/channel.hpp"
#include "lock/etcd/helper/etcd_client.hpp"
#include "lock/etcd/helper/http.hpp"
#include "lock/etcd/helper/options.hpp"
#include "lock/etcd/helper/outcome.hpp"
#include "lock/etcd/helper/renewal.hpp"

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace loto::etcd_helper {

// Exit status of a helper that lost its lease or key (after "lost").
inline constexpr int k_exit_lost = 1;

// How long the event loop may sleep in poll() to wake at `wake_ns` (CLOCK_MONOTONIC) when
// it is `now_ns`: rounded up, since waking a little early would only spin until the
// deadline; 0 once it is due; at most k_max_poll_ms (the wake time may be "never").
inline constexpr int k_max_poll_ms = 60'000;
int poll_timeout_ms(std::int64_t now_ns, std::int64_t wake_ns);

class Session {
public:
  Session(Options options, Channel& channel);

  // Does the whole job and returns the exit status: 0 once the lock was released, found
  // busy, or loto went away; the code of a "failed" message; k_exit_lost.
  int run();

private:
  // A well-formed answer to one request of the main flow.
  struct Answered {
    nlohmann::json body;
    std::int64_t sent_ns = 0; // when the request that got it was sent
    std::string endpoint;     // who answered
  };

  int inspect();
  int take_lock();
  void grant_lease();
  EnqueueAnswer enqueue();
  bool is_ours(const EnqueueAnswer& queued) const;
  int end_busy(const std::string& holders);
  void wait_for_turn();
  std::size_t count_ahead(const RangeAnswer& ahead) const;
  void wait_for_deletion(const std::string& prefix, std::int64_t from_revision);
  bool watch_until_deleted(const std::string& prefix, std::int64_t from_revision);
  void check_own_key_after_wait();
  bool claim_slot();
  [[noreturn]] void hold();

  Answered call(std::string_view path, const std::string& body);
  bool authenticate(Timeouts timeouts);
  std::string refusal(const Reply& reply, const std::string& subject) const;
  template <typename Reader> auto read(Reader reader, const Answered& answered) const;

  static constexpr std::int64_t k_never = std::numeric_limits<std::int64_t>::max();
  void pump_until(const std::function<bool()>& done, std::int64_t wake_at_ns = k_never);
  void pause_ms(std::int64_t milliseconds);
  void listen();
  void tell(std::initializer_list<std::string_view> fields);

  int end_released();
  int end_loto_gone();
  int end_lost(const Lost& lost);
  int end_failed(const Failure& failure);
  void stop_background();
  void revoke_lease(Timeouts timeouts);

  Options m_options;
  Channel& m_channel;
  EtcdClient m_etcd;
  Transfer m_main{m_etcd.multi()};  // the one request of the main flow at a time
  Transfer m_watch{m_etcd.multi()}; // the watch stream while queued
  std::unique_ptr<Renewal> m_renewal;
  bool m_listening = false; // reading descriptor 3 for "release" and end of file

  std::string m_prefix; // NAME/
  std::int64_t m_lease = 0;
  std::int64_t m_ttl_ms = 0;
  std::string m_key; // NAME/<lease hex>
  std::int64_t m_my_revision = 0;
  int m_slot = -1;         // the slot claimed (slots > 1), else -1
  std::string m_slot_key;  // NAME/slot/<m_slot>
  bool m_acquired = false; // loto has been told "acquired"
  std::int64_t m_watch_backoff_ms = 0;
  std::size_t m_ahead = 0;              // keys ahead of ours when last looked, for "queued"
  bool m_watch_reauthenticated = false; // a refused watch was retried with a new token
};

} // namespace loto::etcd_helper
