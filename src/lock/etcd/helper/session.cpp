#include "lock/etcd/helper/session.hpp"

#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/holder.hpp"
#include "lock/etcd/helper/outcome.hpp"
#include "lock/etcd/helper/semaphore.hpp"
#include "lock/etcd/protocol.hpp"

#include <algorithm>
#include <ctime>

namespace loto::etcd_helper {

namespace proto = etcd_protocol;

namespace {

// Ordinary requests: connect within 1 s, answer within 2 s, else the next endpoint.
constexpr Timeouts k_ordinary_timeouts{1000, 2000};
// The watch stream is idle for as long as no key under the lock name is deleted.
constexpr Timeouts k_stream_timeouts{1000, 0};
// Clean-up after a failure: the news is out, do not make loto wait long for our exit.
constexpr Timeouts k_cleanup_timeouts{1000, 1000};
// Revoking for loto, which gave the lock up (it waits 3 s at most for "released") or is
// gone while we were queued: short, so that one black-holed endpoint costs one second.
constexpr Timeouts k_release_timeouts{1000, 1000};

// With a lease to keep, a main-flow request that no endpoint answered is tried again
// after this pause (the renewal decides when the lease is beyond saving).
constexpr std::int64_t k_retry_pause_ms = 100;
// A watch that ends without the deletion is followed by a new range after a pause that
// doubles from the first to the last value, so that a broken stream cannot spin.
constexpr std::int64_t k_first_watch_backoff_ms = 100;
constexpr std::int64_t k_last_watch_backoff_ms = 1600;

// Stops a transfer when the scope it serves is left, by return or by exception.
class StopOnExit {
public:
  StopOnExit(Multi& multi, Transfer& transfer) : m_multi(multi), m_transfer(transfer) {}
  ~StopOnExit() {
    m_multi.stop(m_transfer);
  }
  StopOnExit(const StopOnExit&) = delete;
  StopOnExit& operator=(const StopOnExit&) = delete;

private:
  Multi& m_multi;
  Transfer& m_transfer;
};

} // namespace

int poll_timeout_ms(std::int64_t now_ns, std::int64_t wake_ns) {
  if (wake_ns <= now_ns) {
    return 0;
  }
  const std::int64_t milliseconds = (wake_ns - now_ns + k_ns_per_ms - 1) / k_ns_per_ms;
  return static_cast<int>(std::min<std::int64_t>(milliseconds, k_max_poll_ms));
}

Session::Session(Options options, Channel& channel)
    : m_options(std::move(options)), m_channel(channel),
      m_etcd(m_options.endpoints, m_options.credentials), m_prefix(m_options.name + "/") {}

// Reads an answer with `reader` (read_range, ...): a shape it does not expect is etcd's
// fault, reported as such.
template <typename Reader> auto Session::read(Reader reader, const Answered& answered) const {
  try {
    return reader(answered.body);
  } catch (const BadAnswer& bad) {
    throw Failure(proto::k_software,
                  "unexpected answer from etcd at " + answered.endpoint + ": " + bad.what());
  }
}

int Session::run() {
  try {
    return m_options.mode == Mode::inspect ? inspect() : take_lock();
  } catch (const ReleaseAsked&) {
    return end_released();
  } catch (const LotoGone&) {
    return end_loto_gone();
  } catch (const Lost& lost) {
    return end_lost(lost);
  } catch (const Failure& failure) {
    return end_failed(failure);
  } catch (const std::exception& error) {
    return end_failed(Failure(proto::k_software, std::string("internal error: ") + error.what()));
  }
}

// ---- The main flow.

int Session::inspect() {
  const Answered answered = call("/v3/kv/range", queue_request(m_prefix));
  const RangeAnswer queue = read(read_range, answered);
  const int slots = m_options.slots;
  const std::size_t count = slots == 1 ? queue.kvs.size() : queue_keys(queue.kvs, m_prefix).size();
  tell({proto::k_holders,
        std::to_string(count),
        describe_holders(queue.kvs, m_prefix, slots),
        answered.endpoint,
        std::to_string(holder_count(queue.kvs, m_prefix, slots))});
  // Then every key of the queue, holders first, for --list --json.
  for (const KeyValue& key : slots == 1 ? queue.kvs : queue_keys(queue.kvs, m_prefix)) {
    const HolderFields fields = holder_fields(key.value);
    const auto slot = slots == 1 ? std::nullopt : slot_held_by(queue.kvs, m_prefix, slots, key.key);
    tell({proto::k_entry,
          fields.host,
          fields.pid,
          fields.user,
          fields.since,
          fields.command,
          describe_holder(key.value),
          slot ? std::to_string(*slot) : ""});
  }
  return 0;
}

int Session::take_lock() {
  m_listening = true;
  grant_lease();
  const EnqueueAnswer queued = enqueue();
  const std::string holders = describe_holders(queued.queue, m_prefix, m_options.slots);
  if (is_ours(queued)) {
    if (claim_slot()) {
      hold();
    }
    return end_busy(holders); // --try, and no slot key is free yet
  }
  if (m_options.mode == Mode::try_once) {
    return end_busy(holders);
  }
  tell({proto::k_waiting, holders});
  wait_for_turn();
  if (m_options.slots == 1) {
    check_own_key_after_wait();
  }
  claim_slot(); // with slots, its txn checks our key as check_own_key_after_wait does
  hold();
}

int Session::end_busy(const std::string& holders) {
  tell({proto::k_busy, holders});
  stop_background();
  revoke_lease(k_ordinary_timeouts); // deletes our key at once
  return 0;
}

void Session::grant_lease() {
  const std::int64_t ttl_seconds = (m_options.ttl_ms + 999) / 1000;
  const Answered answered = call("/v3/lease/grant", grant_request(ttl_seconds));
  const GrantAnswer grant = read(read_grant, answered);
  m_lease = grant.lease;
  m_ttl_ms = std::min(m_options.ttl_ms, grant.ttl_seconds * 1000);
  m_key = m_prefix + lease_hex(m_lease);
  m_renewal = std::make_unique<Renewal>(m_etcd, m_lease, m_ttl_ms, answered.sent_ns);
  tell({proto::k_granted,
        lease_hex(m_lease),
        std::to_string(m_ttl_ms),
        std::to_string(answered.sent_ns)});
}

EnqueueAnswer Session::enqueue() {
  const std::string record = holder_record_json(m_options.holder, std::time(nullptr));
  // With slots, the whole queue (it is short): the first N keys hold.
  const std::int64_t queue_limit = m_options.slots == 1 ? 1 : 0;
  EnqueueAnswer queued =
      read(read_enqueue,
           call("/v3/kv/txn", enqueue_request(m_key, m_prefix, record, m_lease, queue_limit)));
  m_my_revision = queued.my_revision;
  return queued;
}

bool Session::is_ours(const EnqueueAnswer& queued) const {
  // The owner was read in the same txn that wrote our key: if it is our key under our
  // lease, the lock is ours, with no room for a lease that lapsed in between. With slots,
  // our key under our lease must be among the first N of the queue that txn read.
  if (m_options.slots == 1) {
    return queued.owner && queued.owner->create_revision == m_my_revision &&
           queued.owner->lease == m_lease;
  }
  const auto ahead = keys_ahead(queue_keys(queued.queue, m_prefix), m_my_revision, m_lease);
  return ahead && holds_a_slot(*ahead, m_options.slots);
}

// The queue keys in an ahead_request's answer (slot keys are not places in the queue).
std::size_t Session::count_ahead(const RangeAnswer& ahead) const {
  return m_options.slots == 1 ? ahead.kvs.size() : queue_keys(ahead.kvs, m_prefix).size();
}

void Session::wait_for_turn() {
  while (true) {
    const RangeAnswer ahead =
        read(read_range, call("/v3/kv/range", ahead_request(m_prefix, m_my_revision - 1)));
    const std::size_t count = count_ahead(ahead);
    if (holds_a_slot(count, m_options.slots)) {
      return; // fewer than N keys are left ahead of us
    }
    if (const std::size_t place = place_in_line(count, m_options.slots); place != m_ahead) {
      m_ahead = place;
      tell({proto::k_queued, std::to_string(m_ahead)});
    }
    wait_for_deletion(m_prefix, ahead.revision + 1);
  }
}

// Until a key under `prefix` is deleted from `from_revision` on (or the caller had better
// look again); a broken watch is retried after a growing pause.
void Session::wait_for_deletion(const std::string& prefix, std::int64_t from_revision) {
  if (watch_until_deleted(prefix, from_revision)) {
    m_watch_backoff_ms = 0;
  } else {
    m_watch_backoff_ms =
        std::clamp(m_watch_backoff_ms * 2, k_first_watch_backoff_ms, k_last_watch_backoff_ms);
    pause_ms(m_watch_backoff_ms);
  }
}

// Watches the keys under `prefix` from `from_revision` on (history included, so a deletion
// between the range and the watch is not missed). Returns true once one is deleted, or when the
// renewal moved to another endpoint (this stream may be on a member that went quiet):
// either way the caller looks again at once. False if the stream ended without the
// deletion.
bool Session::watch_until_deleted(const std::string& prefix, std::int64_t from_revision) {
  WatchLine news;
  const auto on_line = [&news](std::string_view line) {
    if (news.news == WatchNews::nothing) {
      news = read_watch_line(line);
    }
  };
  const std::uint64_t failovers = m_etcd.failovers();
  m_etcd.start(m_watch,
               "/v3/watch",
               watch_deletes_request(prefix, from_revision),
               k_stream_timeouts,
               on_line);
  // Closing the stream is what cancels the watch on the server.
  const StopOnExit stop_watch(m_etcd.multi(), m_watch);
  pump_until([&] {
    return news.news != WatchNews::nothing || !m_watch.running() || m_etcd.failovers() != failovers;
  });
  if (news.news == WatchNews::deleted || m_etcd.failovers() != failovers) {
    m_watch_reauthenticated = false;
    return true;
  }
  // etcd checks a watch's token when the watch is made, and answers a lapsed one with
  // "permission denied": once, that means a new token, not a refusal.
  if (!m_etcd.user().empty() && !m_watch_reauthenticated &&
      news.message.find("permission denied") != std::string::npos) {
    m_watch_reauthenticated = true;
    m_etcd.drop_token();
    return true;
  }
  if (news.news == WatchNews::refused) {
    throw Failure(proto::k_refused, "etcd refused: " + news.message + " (keys " + prefix + ")");
  }
  std::string reason = news.message;
  if (reason.empty()) {
    reason = m_watch.result() == TransferResult::ok ? "the watch stream ended"
                                                    : m_watch.transport_error();
  }
  m_etcd.fail_over(reason);
  return false;
}

void Session::check_own_key_after_wait() {
  const RangeAnswer mine = read(read_range, call("/v3/kv/range", key_request(m_key)));
  if (mine.kvs.empty() || mine.kvs.front().lease != m_lease ||
      mine.kvs.front().create_revision != m_my_revision) {
    throw Lost("the lock key " + m_key + " was deleted while waiting", true);
  }
}

// Slots: takes the lowest free slot key under our lease, in a txn that also checks that
// our queue key is still there. Keys go with their lease, so among the N holders one slot
// is free, except while a key that someone deleted by hand leaves a holder in the queue
// whose slot key has not gone yet (until its helper notices, within TTL/4, and revokes):
// then wait for a slot key to go. False only with --try when none is free.
bool Session::claim_slot() {
  if (m_options.slots == 1) {
    return true;
  }
  const std::string slot_keys = slot_prefix(m_prefix);
  while (true) {
    const RangeAnswer taken = read(read_range, call("/v3/kv/range", queue_request(slot_keys)));
    const auto free = lowest_free_slot(taken.kvs, m_prefix, m_options.slots);
    if (!free) {
      if (m_options.mode == Mode::try_once) {
        return false;
      }
      wait_for_deletion(slot_keys, taken.revision + 1);
      continue;
    }
    const std::string key = slot_key(m_prefix, *free);
    const SlotClaimAnswer claim =
        read(read_slot_claim,
             call("/v3/kv/txn", slot_claim_request(key, m_key, m_my_revision, m_lease)));
    if (claim.claimed) {
      m_slot = *free;
      m_slot_key = key;
      return true;
    }
    if (!claim.mine || claim.mine->lease != m_lease ||
        claim.mine->create_revision != m_my_revision) {
      throw Lost("the lock key " + m_key + " was deleted while waiting", true);
    }
    // Another holder took that slot first: look again.
  }
}

void Session::hold() {
  if (m_slot < 0) {
    m_renewal->check_keys({m_key});
    tell({proto::k_acquired, std::to_string(m_my_revision), m_key});
  } else {
    m_renewal->check_keys({m_key, m_slot_key});
    tell({proto::k_acquired, std::to_string(m_my_revision), m_key, std::to_string(m_slot)});
  }
  m_acquired = true;
  while (true) {
    pump_until([] { return false; }); // until "release", end of file or a loss
  }
}

// ---- Requests of the main flow.

Session::Answered Session::call(std::string_view path, const std::string& body) {
  const std::string subject = m_key.empty() ? m_prefix : m_key;
  // Tokens that lapsed during this call: one is the ordinary case after a long quiet
  // spell; a cluster that refuses fresh ones again and again is refusing us.
  int lapsed_tokens = 0;
  constexpr int k_max_lapsed_tokens = 3;
  while (true) {
    for (std::size_t attempt = 0; attempt < m_etcd.endpoint_count(); ++attempt) {
      if (m_etcd.needs_token() && !authenticate(k_ordinary_timeouts)) {
        continue; // that endpoint did not answer: the next one
      }
      const std::int64_t sent_ns = monotonic_ns();
      m_etcd.start(m_main, path, body, k_ordinary_timeouts);
      pump_until([this] { return !m_main.running(); });
      Reply reply = EtcdClient::reply(m_main);
      switch (reply.kind) {
      case ReplyKind::answer:
        return {std::move(reply.answer), sent_ns, m_etcd.current()};
      case ReplyKind::unavailable:
        m_etcd.fail_over(std::move(reply.message));
        break;
      case ReplyKind::refused:
        throw Failure(proto::k_refused, refusal(reply, subject));
      case ReplyKind::token_expired:
        m_etcd.drop_token();
        if (++lapsed_tokens > k_max_lapsed_tokens) {
          throw Failure(proto::k_refused, refusal(reply, subject));
        }
        --attempt; // the same endpoint again, with a new token
        break;
      case ReplyKind::unexpected:
        if (m_lease != 0 && reply.code == 5 &&
            reply.message.find("lease not found") != std::string::npos) {
          throw Lost("the lease expired or was revoked", false);
        }
        throw Failure(proto::k_software,
                      "unexpected answer from etcd at " + m_etcd.current() + ": " + reply.message);
      }
    }
    if (!m_renewal) {
      throw Failure(proto::k_unavailable, m_etcd.unreachable_message());
    }
    pause_ms(k_retry_pause_ms);
  }
}

// One line for a refusal: who was refused, what for, which key.
std::string Session::refusal(const Reply& reply, const std::string& subject) const {
  if (reply.code == k_transport_refusal) {
    return "etcd at " + m_etcd.current() + " " + reply.message;
  }
  if (!m_etcd.user().empty()) {
    return "etcd refused user '" + m_etcd.user() + "': " + without_origin(reply.message) +
           " (key " + subject + ")";
  }
  return "etcd refused: " + reply.message + " (key " + subject + ")";
}

// Gets a token for etcd.user on the current endpoint (m_main, the main flow's transfer).
// False if that endpoint did not answer (the next one is current then); throws Failure
// when etcd refused the user or password.
bool Session::authenticate(Timeouts timeouts) {
  m_etcd.start_authenticate(m_main, timeouts);
  pump_until([this] { return !m_main.running(); });
  Reply reply = m_etcd.on_authenticated(m_main);
  switch (reply.kind) {
  case ReplyKind::answer:
    return true;
  case ReplyKind::unavailable:
    m_etcd.fail_over(std::move(reply.message));
    return false;
  case ReplyKind::refused:
  case ReplyKind::token_expired:
    throw Failure(proto::k_refused,
                  reply.code == k_transport_refusal ? refusal(reply, m_prefix) : reply.message);
  case ReplyKind::unexpected:
    break;
  }
  throw Failure(proto::k_software,
                "unexpected answer from etcd at " + m_etcd.current() + ": " + reply.message);
}

// ---- The event loop.

void Session::pump_until(const std::function<bool()>& done, std::int64_t wake_at_ns) {
  while (!done()) {
    const std::int64_t wake_ns =
        m_renewal ? std::min(wake_at_ns, m_renewal->next_wake_ns()) : wake_at_ns;
    const int timeout_ms = poll_timeout_ms(monotonic_ns(), wake_ns);
    const bool heard = m_etcd.multi().wait(m_listening ? m_channel.fd() : -1, timeout_ms);
    for (Transfer* transfer : m_etcd.multi().finished()) {
      if (m_renewal && m_renewal->owns(*transfer)) {
        if (const auto sent_ns = m_renewal->on_finished(monotonic_ns())) {
          tell({proto::k_renewed, std::to_string(*sent_ns)});
        }
      }
    }
    if (heard) {
      listen();
    }
    if (m_renewal) {
      m_renewal->tick(monotonic_ns());
    }
  }
}

void Session::pause_ms(std::int64_t milliseconds) {
  const std::int64_t until_ns = monotonic_ns() + milliseconds * k_ns_per_ms;
  pump_until([until_ns] { return monotonic_ns() >= until_ns; }, until_ns);
}

void Session::listen() {
  switch (m_channel.receive()) {
  case Channel::Heard::release:
    throw ReleaseAsked{};
  case Channel::Heard::end:
    throw LotoGone{};
  case Channel::Heard::nothing:
    break;
  }
}

void Session::tell(std::initializer_list<std::string_view> fields) {
  if (!m_channel.send(fields)) {
    throw LotoGone{};
  }
}

// ---- Endings.

// loto gave the lock up. A request in flight is abandoned: before the grant no key can
// exist (a lease granted meanwhile, unknown to us, expires with nothing attached), so the
// answer is at once.
int Session::end_released() {
  stop_background();
  revoke_lease(k_release_timeouts);
  m_channel.send({proto::k_released});
  return 0;
}

int Session::end_loto_gone() {
  if (m_acquired) {
    // Holding: the job loto ran may still be running; the lock stays taken until the
    // lease expires, so that no other host starts the same job beside it.
    return 0;
  }
  stop_background();
  revoke_lease(k_release_timeouts);
  return 0;
}

int Session::end_lost(const Lost& lost) {
  stop_background();
  m_channel.send({proto::k_lost, lost.what()});
  if (lost.revoke) {
    revoke_lease(k_cleanup_timeouts);
  }
  return k_exit_lost;
}

int Session::end_failed(const Failure& failure) {
  stop_background();
  m_channel.send({proto::k_failed, std::to_string(failure.code), failure.what()});
  revoke_lease(k_cleanup_timeouts);
  return failure.code;
}

void Session::stop_background() {
  m_listening = false;
  m_renewal.reset();
  m_etcd.multi().stop(m_main);
  m_etcd.multi().stop(m_watch);
}

// Revokes the lease, which deletes our key with it. Best effort: each endpoint once (and
// once more with a new token if ours lapsed: a lease left to expire holds the lock a TTL).
void Session::revoke_lease(Timeouts timeouts) {
  if (m_lease == 0) {
    return;
  }
  try {
    bool reauthenticated = false;
    for (std::size_t attempt = 0; attempt < m_etcd.endpoint_count(); ++attempt) {
      if (m_etcd.needs_token() && !authenticate(timeouts)) {
        continue;
      }
      m_etcd.start(m_main, "/v3/lease/revoke", lease_request(m_lease), timeouts);
      pump_until([this] { return !m_main.running(); });
      const Reply reply = EtcdClient::reply(m_main);
      if (reply.kind == ReplyKind::token_expired && !reauthenticated) {
        reauthenticated = true;
        m_etcd.drop_token();
        --attempt;
        continue;
      }
      if (reply.kind != ReplyKind::unavailable) {
        return; // revoked, or gone already (404, code 5), or refused: nothing more to do
      }
      m_etcd.fail_over(reply.message);
    }
  } catch (const std::exception&) { // NOLINT(bugprone-empty-catch): we are leaving anyway
  }
}

} // namespace loto::etcd_helper
