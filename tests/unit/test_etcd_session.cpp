// Unit tests for one helper run (src/lock/etcd/helper/session.cpp) against a scripted etcd
// on loopback and a scripted loto on a socket pair: what is asked of etcd in which order,
// what loto is told, and how each ending cleans up (the lease revoked, or left to expire
// while loto's job may still run). The end-to-end tests (tests/e2e/etcd*.bats) run the same
// flows against a real etcd; these pin what a real cluster cannot be made to do on cue.
#include "fake_http_server.hpp"
#include "lock/etcd/helper/channel.hpp"
#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/options.hpp"
#include "lock/etcd/helper/outcome.hpp"
#include "lock/etcd/helper/session.hpp"
#include "lock/etcd/protocol.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace loto::etcd_helper;
using namespace loto::etcd_helper::testing;
using nlohmann::json;
namespace proto = loto::etcd_protocol;

namespace {

constexpr std::int64_t k_lease = 4660; // 0x1234
const std::string k_name = "loto/x";
const std::string k_my_key = "loto/x/1234";
constexpr std::int64_t k_my_revision = 10;

// ---- What the scripted etcd is asked.

enum class Asked {
  grant,
  enqueue,
  claim,
  ahead,
  own_key,
  queue,
  watch,
  revoke,
  keepalive,
  authenticate,
  other
};

struct Request {
  std::string path;
  std::string token; // its Authorization header, "" without one
  json body;
  Asked asked = Asked::other;
};

std::string decoded(const json& field) {
  return base64_decode(field.get<std::string>()).value_or("");
}

Request parse_request(const std::string& raw) {
  Request request;
  const auto start = raw.find(' ') + 1;
  request.path = raw.substr(start, raw.find(' ', start) - start);
  request.body = json::parse(raw.substr(raw.find("\r\n\r\n") + 4), nullptr, false);
  constexpr std::string_view k_authorization = "\r\nAuthorization: ";
  if (const auto field = raw.find(k_authorization); field != std::string::npos) {
    const auto value = field + k_authorization.size();
    request.token = raw.substr(value, raw.find("\r\n", value) - value);
  }
  const json& body = request.body;
  if (request.path == "/v3/lease/grant") {
    request.asked = Asked::grant;
  } else if (request.path == "/v3/lease/revoke") {
    request.asked = Asked::revoke;
  } else if (request.path == "/v3/lease/keepalive") {
    request.asked = Asked::keepalive;
  } else if (request.path == "/v3/auth/authenticate") {
    request.asked = Asked::authenticate;
  } else if (request.path == "/v3/watch") {
    request.asked = Asked::watch;
  } else if (request.path == "/v3/kv/txn") {
    const std::string put = decoded(body["success"][0]["request_put"]["key"]);
    request.asked = put.find("/slot/") == std::string::npos ? Asked::enqueue : Asked::claim;
  } else if (request.path == "/v3/kv/range") {
    request.asked = body.contains("max_create_revision") ? Asked::ahead
                    : body.contains("range_end")         ? Asked::queue
                                                         : Asked::own_key;
  }
  return request;
}

// ---- Answers, as etcd's JSON gateway gives them.

std::string kv(std::string_view key,
               std::int64_t create_revision,
               std::int64_t lease,
               std::string_view value = "") {
  return R"({"key":")" + base64_encode(key) + R"(","create_revision":")" +
         std::to_string(create_revision) + R"(","mod_revision":")" +
         std::to_string(create_revision) + R"(","version":"1","value":")" + base64_encode(value) +
         R"(","lease":")" + std::to_string(lease) + R"("})";
}

std::string kv_list(const std::vector<std::string>& kvs) {
  std::string list;
  for (const std::string& one : kvs) {
    list += (list.empty() ? "" : ",") + one;
  }
  return list;
}

std::string range_json(std::int64_t revision, const std::vector<std::string>& kvs) {
  return R"({"header":{"revision":")" + std::to_string(revision) + R"("},"kvs":[)" + kv_list(kvs) +
         R"(],"count":")" + std::to_string(kvs.size()) + R"("})";
}

Canned answer(const std::string& body) {
  return Canned{{ok_answer(body)}};
}

Canned granted(std::int64_t ttl_seconds) {
  return answer(R"({"header":{"revision":"5"},"ID":")" + std::to_string(k_lease) + R"(","TTL":")" +
                std::to_string(ttl_seconds) + R"("})");
}

// The enqueue txn created our key at k_my_revision and read `queue` under the name.
Canned enqueued(const std::vector<std::string>& queue) {
  const std::string revision = std::to_string(k_my_revision);
  return answer(R"({"header":{"revision":")" + revision + R"("},"succeeded":true,"responses":[)" +
                R"({"response_put":{"header":{"revision":")" + revision + R"("}}},)" +
                R"({"response_range":)" + range_json(k_my_revision, queue) + "}]}");
}

Canned range(std::int64_t revision, const std::vector<std::string>& kvs) {
  return answer(range_json(revision, kvs));
}

const std::string k_mine = kv(k_my_key, k_my_revision, k_lease);
const std::string k_holder_key = "loto/x/99";
const std::string k_holder_record =
    R"({"host":"web1","pid":4242,"user":"root","since":"2026-11-30T06:00:00Z","command":"backup.sh"})";
const std::string k_holder = kv(k_holder_key, 7, 153, k_holder_record);
// A second key, after the holder's and before ours.
const std::string k_second = kv("loto/x/98", 8, 154);

// The revoke's answer, `late` if asked (loto may act meanwhile).
Canned revoked(std::chrono::milliseconds late = 0ms) {
  return Canned{{"", ok_answer(R"({"header":{"revision":"12"}})")}, late};
}

std::string chunk(std::string_view line) {
  const std::string text = std::string(line) + "\n";
  char size[16];
  static_cast<void>(std::snprintf(size, sizeof size, "%zx", text.size()));
  return std::string(size) + "\r\n" + text + "\r\n";
}

const std::string k_stream_head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const std::string k_watch_created = R"({"result":{"header":{"revision":"11"},"created":true}})";
const std::string k_watch_deleted = R"({"result":{"header":{"revision":"12"},"events":[)"
                                    R"({"type":"DELETE","kv":{"key":"bG90by94Lzk5"}}]}})";

// A watch stream that is created, stays quiet for `quiet`, then reports a deletion (and
// stays open until the helper closes it).
Canned deletion_after(std::chrono::milliseconds quiet) {
  return Canned{
      {k_stream_head, chunk(k_watch_created), chunk(k_watch_deleted)}, quiet / 2, false, true};
}

// A watch stream that is created and then stays quiet.
Canned quiet_watch() {
  return Canned{{k_stream_head, chunk(k_watch_created)}, 0ms, false, true};
}

// ---- The scripted etcd.

// `script` answers each request; every connection is served at once, as the helper keeps
// one per kind of request (the main flow, the watch, the renewal).
class FakeEtcd {
public:
  using Script = std::function<Canned(const Request&)>;

  explicit FakeEtcd(Script script)
      : m_script(std::move(script)), m_server(
                                         [this](std::size_t, const std::string& raw) {
                                           Request request = parse_request(raw);
                                           const std::lock_guard<std::mutex> lock(m_mutex);
                                           m_log.push_back(request);
                                           m_when.push_back(Clock::now());
                                           return m_script(request);
                                         },
                                         FakeServer::Connections::at_once) {}

  std::string url() const {
    return m_server.url();
  }
  std::vector<Request> requests() const {
    const std::lock_guard<std::mutex> lock(m_mutex);
    return m_log;
  }
  // When each request came, in the order of requests().
  std::vector<Clock::time_point> times() const {
    const std::lock_guard<std::mutex> lock(m_mutex);
    return m_when;
  }
  std::vector<Asked> asked() const {
    std::vector<Asked> kinds;
    for (const Request& request : requests()) {
      kinds.push_back(request.asked);
    }
    return kinds;
  }
  std::size_t count(Asked kind) const {
    const std::vector<Asked> kinds = asked();
    return static_cast<std::size_t>(std::count(kinds.begin(), kinds.end(), kind));
  }
  // The first request of `kind` (a test that asks for it expects one).
  Request first(Asked kind) const {
    for (const Request& request : requests()) {
      if (request.asked == kind) {
        return request;
      }
    }
    FAIL("etcd was not asked for that");
    return {};
  }

private:
  mutable std::mutex m_mutex; // the script runs on the thread of each connection
  Script m_script;
  std::vector<Request> m_log;
  std::vector<Clock::time_point> m_when;
  FakeServer m_server; // last: its threads stop before the rest goes
};

// ---- The scripted loto.

enum class LotoDoes { nothing, release, hang_up };

// loto's end of descriptor 3, read on a thread of its own: every message is kept, and
// `react` answers each one. If the helper is still running after `limit`, loto hangs up,
// which ends any run (the test then fails on what it expected).
class FakeLoto {
public:
  using React = std::function<LotoDoes(std::string_view message)>;

  explicit FakeLoto(React react, std::chrono::milliseconds limit = 10s)
      : m_react(std::move(react)) {
    static_cast<void>(std::signal(SIGPIPE, SIG_IGN)); // a write to a closed socket fails
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m_fds) == 0);
    m_thread = std::thread([this, limit] { listen(Clock::now() + limit); });
  }
  ~FakeLoto() {
    finish();
  }
  FakeLoto(const FakeLoto&) = delete;
  FakeLoto& operator=(const FakeLoto&) = delete;

  int helper_fd() const {
    return m_fds[1];
  }
  // Once the helper is done: its end closes, and every message it sent.
  std::vector<std::string> finish() {
    if (m_fds[1] >= 0) {
      ::close(m_fds[1]);
      m_fds[1] = -1;
    }
    if (m_thread.joinable()) {
      m_thread.join();
    }
    return m_messages;
  }

private:
  void listen(Clock::time_point limit) {
    std::string pending;
    while (true) {
      pollfd entry{m_fds[0], POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - Clock::now());
      if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) == 0) {
        break; // too long: hang up
      }
      char buffer[512];
      const ssize_t count = ::read(m_fds[0], buffer, sizeof buffer);
      if (count <= 0) {
        break;
      }
      pending.append(buffer, static_cast<std::size_t>(count));
      for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
        const std::string message = pending.substr(0, end);
        pending.erase(0, end + 1);
        m_messages.push_back(message);
        const LotoDoes does = m_react(message);
        if (does == LotoDoes::release) {
          static_cast<void>(::write(m_fds[0], "release\n", 8));
        } else if (does == LotoDoes::hang_up) {
          ::close(m_fds[0]);
          m_fds[0] = -1;
          return;
        }
      }
    }
    ::close(m_fds[0]);
    m_fds[0] = -1;
  }

  React m_react;
  int m_fds[2] = {-1, -1}; // loto's end, the helper's end
  std::vector<std::string> m_messages;
  std::thread m_thread;
};

// The message's kind: its first field.
std::string kind_of(std::string_view message) {
  return std::string(message.substr(0, message.find('\t')));
}

std::vector<std::string> kinds(const std::vector<std::string>& messages) {
  std::vector<std::string> result;
  for (const std::string& message : messages) {
    result.push_back(kind_of(message));
  }
  return result;
}

// The message's fields, split at tabs.
std::vector<std::string> fields(std::string_view message) {
  std::vector<std::string> result;
  std::size_t start = 0;
  while (true) {
    const auto end = message.find('\t', start);
    result.emplace_back(message.substr(start, end - start));
    if (end == std::string_view::npos) {
      return result;
    }
    start = end + 1;
  }
}

// The first message of `kind`, split into fields.
std::vector<std::string> told(const std::vector<std::string>& messages, std::string_view kind) {
  for (const std::string& message : messages) {
    if (kind_of(message) == kind) {
      return fields(message);
    }
  }
  FAIL("loto was not told " << kind);
  return {};
}

// Releases the lock as soon as it is acquired.
LotoDoes release_once_acquired(std::string_view message) {
  return kind_of(message) == proto::k_acquired ? LotoDoes::release : LotoDoes::nothing;
}

LotoDoes hang_up_on(std::string_view kind, std::string_view message) {
  return kind_of(message) == kind ? LotoDoes::hang_up : LotoDoes::nothing;
}

Options options_for(const FakeEtcd& etcd, Mode mode, int slots = 1) {
  Options options;
  options.endpoints = {etcd.url()};
  options.ttl_ms = mode == Mode::inspect ? 0 : 60'000;
  options.name = k_name;
  options.mode = mode;
  options.slots = slots;
  options.holder = HolderRecord{"host1", 77, "root", "job.sh"};
  return options;
}

struct Ran {
  int status = -1;
  std::vector<std::string> messages;
};

Ran run_session(Options options, const FakeLoto::React& react) {
  FakeLoto loto(react);
  Channel channel(loto.helper_fd());
  Session session(std::move(options), channel);
  Ran ran;
  ran.status = session.run();
  ran.messages = loto.finish();
  return ran;
}

Canned unscripted() {
  return Canned{{answer_with(500, "Internal Server Error", R"({"error":"unscripted","code":2})")}};
}

// etcd's answers that are not a result: a member that cannot serve, and a refusal.
Canned unavailable() {
  return Canned{{k_unavailable_answer}};
}

Canned permission_denied() {
  return Canned{{answer_with(
      403,
      "Forbidden",
      R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})")}};
}

// A watch stream refused (the error comes inside the stream).
Canned denied_watch() {
  return Canned{{k_stream_head,
                 chunk(R"({"error":{"grpc_code":7,"http_code":403,"message":)"
                       R"("etcdserver: permission denied","http_status":"Forbidden"}})")},
                0ms,
                false,
                true};
}

// A free lock: the enqueue finds our key the oldest.
Canned free_lock(const Request& request) {
  switch (request.asked) {
  case Asked::grant:
    return granted(60);
  case Asked::enqueue:
    return enqueued({k_mine});
  case Asked::revoke:
    return revoked();
  default:
    return unscripted();
  }
}

} // namespace

TEST_CASE("poll_timeout_ms: whole milliseconds rounded up, 0 once due, a minute at most",
          "[session]") {
  constexpr std::int64_t now = 5'000 * k_ns_per_ms;
  CHECK(poll_timeout_ms(now, now) == 0);
  CHECK(poll_timeout_ms(now, now - 1) == 0);
  CHECK(poll_timeout_ms(now, 0) == 0);
  CHECK(poll_timeout_ms(now, now + 1) == 1); // waking early would spin until it is due
  CHECK(poll_timeout_ms(now, now + k_ns_per_ms - 1) == 1);
  CHECK(poll_timeout_ms(now, now + k_ns_per_ms) == 1);
  CHECK(poll_timeout_ms(now, now + k_ns_per_ms + 1) == 2);
  CHECK(poll_timeout_ms(now, now + 250 * k_ns_per_ms) == 250);
  CHECK(poll_timeout_ms(now, now + k_max_poll_ms * k_ns_per_ms) == k_max_poll_ms);
  CHECK(poll_timeout_ms(now, now + (k_max_poll_ms + 1) * k_ns_per_ms) == k_max_poll_ms);
  CHECK(poll_timeout_ms(now, std::numeric_limits<std::int64_t>::max()) == k_max_poll_ms);
}

TEST_CASE(
    "Session --try, free lock: granted, acquired with the key's revision, released on request",
    "[session]") {
  FakeEtcd etcd(free_lock);
  const auto started_ns = monotonic_ns();
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  const auto grant = told(ran.messages, proto::k_granted);
  REQUIRE(grant.size() == 4);
  CHECK(grant[1] == "1234");
  CHECK(grant[2] == "60000");
  CHECK(std::stoll(grant[3]) >= started_ns); // when the grant was sent
  CHECK(std::stoll(grant[3]) <= monotonic_ns());
  CHECK(told(ran.messages, proto::k_acquired) ==
        std::vector<std::string>{"acquired", std::to_string(k_my_revision), k_my_key});

  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant, Asked::enqueue, Asked::revoke});
  CHECK(etcd.first(Asked::grant).body["TTL"] == 60);
  const json txn = etcd.first(Asked::enqueue).body;
  const json put = txn["success"][0]["request_put"];
  CHECK(decoded(put["key"]) == k_my_key);
  CHECK(put["lease"] == std::to_string(k_lease));
  const json record = json::parse(decoded(put["value"]));
  CHECK(record["host"] == "host1");
  CHECK(record["pid"] == 77);
  CHECK(record["command"] == "job.sh");
  CHECK(txn["success"][1]["request_range"]["limit"] == "1"); // only the owner
  CHECK(etcd.first(Asked::revoke).body["ID"] == std::to_string(k_lease));
}

TEST_CASE(
    "Session: the TTL asked is rounded up to whole seconds, and a shorter one granted is kept",
    "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::grant ? granted(1) : free_lock(request);
  });
  Options options = options_for(etcd, Mode::try_once);
  options.ttl_ms = 1'500;
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(etcd.first(Asked::grant).body["TTL"] == 2);
  CHECK(told(ran.messages, proto::k_granted)[2] == "1000");
}

TEST_CASE("Session --try, held lock: busy naming the holder, and our key goes with the lease",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::enqueue ? enqueued({k_holder}) : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "busy"});
  CHECK(told(ran.messages, proto::k_busy)[1] ==
        "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh");
  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant, Asked::enqueue, Asked::revoke});
}

TEST_CASE("Session --try: a key of ours under another lease is not ours", "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::enqueue ? enqueued({kv(k_my_key, k_my_revision, 999)})
                                           : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "busy"});
}

namespace {

// A waiter's etcd: the holder's key is ahead until the watch reports its deletion after
// `quiet`; then our own key is still ours.
struct QueueScript {
  std::chrono::milliseconds quiet = 400ms;
  std::vector<std::string> mine_after_wait = {k_mine};
  bool deleted = false;
  Canned operator()(const Request& request) {
    switch (request.asked) {
    case Asked::enqueue:
      return enqueued({k_holder});
    case Asked::ahead:
      return deleted ? range(13, {}) : range(11, {k_holder});
    case Asked::watch:
      deleted = true;
      return deletion_after(quiet);
    case Asked::own_key:
      return range(13, mine_after_wait);
    default:
      return free_lock(request);
    }
  }
};

} // namespace

TEST_CASE("Session --wait: waiting, queued 1, one watch for as long as it takes, then acquired",
          "[session]") {
  FakeEtcd etcd(QueueScript{});
  const auto started = Clock::now();
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(elapsed_ms(started) >= 400);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(told(ran.messages, proto::k_waiting)[1] ==
        "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh");
  CHECK(told(ran.messages, proto::k_queued)[1] == "1");
  // One watch, quiet for 400 ms: a stream is not cut for being idle.
  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant,
                                           Asked::enqueue,
                                           Asked::ahead,
                                           Asked::watch,
                                           Asked::ahead,
                                           Asked::own_key,
                                           Asked::revoke});
  // The keys created before ours, and the deletions from just after that range.
  CHECK(etcd.first(Asked::ahead).body["max_create_revision"] == std::to_string(k_my_revision - 1));
  const json watch = etcd.first(Asked::watch).body["create_request"];
  CHECK(watch["start_revision"] == "12");
  CHECK(decoded(watch["key"]) == "loto/x/");
  CHECK(decoded(etcd.first(Asked::own_key).body["key"]) == k_my_key);
}

TEST_CASE("Session --wait: our key deleted while waiting is lost (exit 1), and the lease revoked",
          "[session]") {
  QueueScript script;
  script.quiet = 0ms;
  script.mine_after_wait = {};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == k_exit_lost);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "waiting", "queued", "lost"});
  CHECK(told(ran.messages, proto::k_lost)[1] ==
        "the lock key loto/x/1234 was deleted while waiting");
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session --wait: our key re-created under another lease while waiting is lost",
          "[session]") {
  QueueScript script;
  script.quiet = 0ms;
  script.mine_after_wait = {kv(k_my_key, k_my_revision, 999)};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == k_exit_lost);
  QueueScript again;
  again.quiet = 0ms;
  again.mine_after_wait = {kv(k_my_key, k_my_revision + 1, k_lease)};
  FakeEtcd etcd2(again);
  CHECK(run_session(options_for(etcd2, Mode::wait), release_once_acquired).status == k_exit_lost);
}

TEST_CASE("Session: loto gone while queued: the lease is revoked, so our key leaves the queue",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    QueueScript script;
    return request.asked == Asked::watch ? quiet_watch() : script(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::wait), [](std::string_view message) {
    return hang_up_on(proto::k_queued, message);
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "waiting", "queued"});
  CHECK(etcd.count(Asked::revoke) == 1); // before run() returned
}

TEST_CASE("Session: loto gone while holding: the lease is left to expire (the job may still run)",
          "[session]") {
  FakeEtcd etcd(free_lock);
  const Ran ran = run_session(options_for(etcd, Mode::try_once), [](std::string_view message) {
    return hang_up_on(proto::k_acquired, message);
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired"});
  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant, Asked::enqueue});
}

TEST_CASE("Session: loto gone while a request is in flight: it is abandoned, the lease revoked",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    // The enqueue is never answered: only loto's hang-up can end the wait for it.
    return request.asked == Asked::enqueue ? Canned{{}, 0ms, false, true} : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), [](std::string_view message) {
    return hang_up_on(proto::k_granted, message);
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted"});
  // The abandoned enqueue may reach the server after the revoke, on its own connection.
  CHECK(etcd.count(Asked::revoke) == 1);
  CHECK(etcd.count(Asked::enqueue) <= 1);
}

TEST_CASE("Session --inspect, one slot: every key under the name is a place in the queue",
          "[session]") {
  // As `etcdctl lock` sees it: with one slot, a key named NAME/slot/0 is a waiter too.
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::queue
               ? range(20, {k_holder, kv("loto/x/slot/0", 8, 153, k_holder_key)})
               : unscripted();
  });
  const Ran ran = run_session(options_for(etcd, Mode::inspect), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"holders", "entry", "entry"});
  CHECK(told(ran.messages, proto::k_holders) ==
        std::vector<std::string>{"holders",
                                 "2",
                                 "pid 4242 on web1 (root) since 2026-11-30T06:00:00Z: backup.sh",
                                 etcd.url(),
                                 "1"});
  REQUIRE(ran.messages.size() == 3);
  CHECK(fields(ran.messages[1]) == std::vector<std::string>{"entry",
                                                            "web1",
                                                            "4242",
                                                            "root",
                                                            "2026-11-30T06:00:00Z",
                                                            "backup.sh",
                                                            "pid 4242 on web1 (root) since "
                                                            "2026-11-30T06:00:00Z: backup.sh",
                                                            ""});
  CHECK(fields(ran.messages[2]).back().empty()); // no slots: no slot number
  CHECK(etcd.asked() == std::vector<Asked>{Asked::queue});
  CHECK(decoded(etcd.first(Asked::queue).body["key"]) == "loto/x/");
}

TEST_CASE("Session --inspect, two slots: the queue keys only, each with the slot it holds",
          "[session]") {
  const std::string waiter = kv("loto/x/ef", 11, 171);
  FakeEtcd etcd([&waiter](const Request& request) {
    return request.asked == Asked::queue
               ? range(20, {k_holder, kv("loto/x/slot/1", 8, 153, k_holder_key), waiter})
               : unscripted();
  });
  const Ran ran = run_session(options_for(etcd, Mode::inspect, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"holders", "entry", "entry"});
  const auto holders = told(ran.messages, proto::k_holders);
  REQUIRE(holders.size() == 5);
  CHECK(holders[1] == "2");
  CHECK(holders[4] == "2");
  REQUIRE(ran.messages.size() == 3);
  CHECK(fields(ran.messages[1])[1] == "web1");
  CHECK(fields(ran.messages[1]).back() == "1");
  CHECK(fields(ran.messages[2])[6] == std::string(k_unknown_holder));
  CHECK(fields(ran.messages[2]).back().empty()); // in a slot, with no slot key yet
}

namespace {

// A slot claim that did not take: the slot was taken first, and our queue key is `mine`
// (empty: gone).
Canned claim_not_taken(const std::vector<std::string>& mine) {
  return answer(R"({"header":{"revision":"14"},"responses":[{"response_range":)" +
                range_json(14, mine) + "}]}");
}

// Two slots: the holder 99 has slot 0; our key is second in the queue.
Canned two_slots(const Request& request) {
  switch (request.asked) {
  case Asked::enqueue:
    return enqueued({k_holder, k_mine});
  case Asked::queue:
    return range(13, {kv("loto/x/slot/0", 8, 153, k_holder_key)});
  case Asked::claim:
    return answer(R"({"header":{"revision":"14"},"succeeded":true,"responses":[)"
                  R"({"response_put":{"header":{"revision":"14"}}}]})");
  default:
    return free_lock(request);
  }
}

} // namespace

TEST_CASE("Session --try, two slots: the lowest free slot key is claimed under our lease",
          "[session]") {
  FakeEtcd etcd(two_slots);
  const Ran ran = run_session(options_for(etcd, Mode::try_once, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(told(ran.messages, proto::k_acquired) ==
        std::vector<std::string>{"acquired", std::to_string(k_my_revision), k_my_key, "1"});
  CHECK(
      etcd.asked() ==
      std::vector<Asked>{Asked::grant, Asked::enqueue, Asked::queue, Asked::claim, Asked::revoke});
  // The whole queue, not only its oldest key.
  CHECK_FALSE(etcd.first(Asked::enqueue).body["success"][1]["request_range"].contains("limit"));
  CHECK(decoded(etcd.first(Asked::queue).body["key"]) == "loto/x/slot/");
  const json claim = etcd.first(Asked::claim).body;
  CHECK(decoded(claim["success"][0]["request_put"]["key"]) == "loto/x/slot/1");
  CHECK(decoded(claim["success"][0]["request_put"]["value"]) == k_my_key);
  CHECK(claim["compare"][1]["create_revision"] == std::to_string(k_my_revision));
}

TEST_CASE("Session, two slots: a slot taken first by another is looked for again, and a key lost "
          "meanwhile is lost",
          "[session]") {
  int claims = 0;
  FakeEtcd etcd([&claims](const Request& request) {
    if (request.asked == Asked::claim && ++claims == 1) {
      return claim_not_taken({k_mine});
    }
    return two_slots(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(etcd.count(Asked::claim) == 2);
  CHECK(etcd.count(Asked::queue) == 2);

  FakeEtcd gone([](const Request& request) {
    if (request.asked == Asked::claim) {
      return claim_not_taken({});
    }
    return two_slots(request);
  });
  const Ran lost = run_session(options_for(gone, Mode::try_once, 2), release_once_acquired);
  CHECK(lost.status == k_exit_lost);
  CHECK(kinds(lost.messages) == std::vector<std::string>{"granted", "lost"});
  CHECK(gone.count(Asked::revoke) == 1);
}

TEST_CASE("Session --try, two slots, none free (a holder's slot key outlives its queue key): busy",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    if (request.asked == Asked::queue) {
      return range(13,
                   {kv("loto/x/slot/0", 8, 153, k_holder_key), kv("loto/x/slot/1", 9, 160, "x")});
    }
    return two_slots(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "busy"});
  CHECK(etcd.count(Asked::claim) == 0);
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session: no endpoint answers before the grant: failed 69 naming them, nothing to revoke",
          "[session]") {
  FakeEtcd etcd(free_lock); // never reached
  Options options = options_for(etcd, Mode::try_once);
  const std::string first = silent_endpoint();
  const std::string second = silent_endpoint();
  options.endpoints = {first, second};
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == proto::k_unavailable);
  REQUIRE(kinds(ran.messages) == std::vector<std::string>{"failed"});
  const auto failed = told(ran.messages, proto::k_failed);
  CHECK(failed[1] == "69");
  CHECK_THAT(failed[2],
             Catch::Matchers::StartsWith("cannot reach etcd at " + first + ", " + second));
}

TEST_CASE("Session: an endpoint that does not answer is passed over for the next", "[session]") {
  FakeEtcd etcd(free_lock);
  Options options = options_for(etcd, Mode::try_once);
  options.endpoints = {silent_endpoint(), etcd.url()};
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
}

TEST_CASE("Session: with a lease to keep, a request no endpoint answered is sent again after a "
          "pause",
          "[session]") {
  int enqueues = 0;
  FakeEtcd etcd([&enqueues](const Request& request) {
    if (request.asked == Asked::enqueue && ++enqueues == 1) {
      return unavailable();
    }
    return free_lock(request);
  });
  const auto started = Clock::now();
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(etcd.count(Asked::enqueue) == 2);
  CHECK(elapsed_ms(started) >= 100);
}

TEST_CASE("Session: etcd refuses: failed 77 naming the key, and the lease revoked", "[session]") {
  FakeEtcd etcd([](const Request& request) {
    if (request.asked == Asked::enqueue) {
      return permission_denied();
    }
    return free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == proto::k_refused);
  CHECK(told(ran.messages, proto::k_failed) ==
        std::vector<std::string>{
            "failed", "77", "etcd refused: etcdserver: permission denied (key loto/x/1234)"});
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session: a lease etcd no longer has is lost (exit 1), with nothing to revoke",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    if (request.asked == Asked::enqueue) {
      return Canned{{answer_with(
          404,
          "Not Found",
          R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})")}};
    }
    return free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == k_exit_lost);
  CHECK(told(ran.messages, proto::k_lost) ==
        std::vector<std::string>{"lost", "the lease expired or was revoked"});
  CHECK(etcd.count(Asked::revoke) == 0);
}

TEST_CASE("Session: an answer of the wrong shape is etcd's fault: failed 70 naming the endpoint",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::grant ? answer(R"({"header":{"revision":"5"}})")
                                         : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
  CHECK(ran.status == proto::k_software);
  CHECK(told(ran.messages, proto::k_failed) ==
        std::vector<std::string>{"failed",
                                 "70",
                                 "unexpected answer from etcd at " + etcd.url() +
                                     ": the lease grant has no lease ID or TTL"});
  CHECK(etcd.count(Asked::revoke) == 0);
}

namespace {

// A waiter's etcd told what each look at the keys ahead finds, and what each watch does,
// in turn (the last one of each again when they run out).
struct TurnScript {
  std::vector<std::vector<std::string>> aheads;
  std::vector<Canned> watches;
  std::size_t looked = 0;
  std::size_t watched = 0;
  Canned operator()(const Request& request) {
    switch (request.asked) {
    case Asked::ahead:
      return range(11, aheads[std::min(looked++, aheads.size() - 1)]);
    case Asked::watch:
      return watches[std::min(watched++, watches.size() - 1)];
    default:
      return QueueScript{}(request);
    }
  }
};

// A watch stream that is created and then ends without a deletion.
Canned ended_watch() {
  return Canned{{k_stream_head, chunk(k_watch_created), "0\r\n\r\n"}};
}

// Milliseconds from the `n`th request of `from` to the next request of `to` after it.
long gap_ms(const FakeEtcd& etcd, Asked from, std::size_t n, Asked to) {
  const std::vector<Request> requests = etcd.requests();
  const std::vector<Clock::time_point> times = etcd.times();
  std::size_t seen = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].asked == from && seen++ == n) {
      for (std::size_t j = i + 1; j < requests.size(); ++j) {
        if (requests[j].asked == to) {
          return static_cast<long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(times[j] - times[i]).count());
        }
      }
    }
  }
  FAIL("no such pair of requests");
  return -1;
}

} // namespace

TEST_CASE("Session --wait: the place in the queue is told each time it changes, and only then",
          "[session]") {
  TurnScript script;
  script.aheads = {{k_holder, k_second}, {k_holder, k_second}, {k_holder}, {}};
  script.watches = {deletion_after(0ms)};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == 0);
  REQUIRE(
      kinds(ran.messages) ==
      std::vector<std::string>{"granted", "waiting", "queued", "queued", "acquired", "released"});
  CHECK(ran.messages[2] == "queued\t2");
  CHECK(ran.messages[3] == "queued\t1");
  CHECK(etcd.count(Asked::watch) == 3);
}

TEST_CASE("Session --wait: a watch that ends without the deletion is looked at again after "
          "100 ms, then 200 ms, and a deletion starts the pauses over",
          "[session]") {
  TurnScript script;
  script.aheads = {{k_holder}, {k_holder}, {k_holder}, {k_holder}, {k_holder}, {}};
  script.watches = {
      ended_watch(), ended_watch(), deletion_after(0ms), ended_watch(), deletion_after(0ms)};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(etcd.count(Asked::watch) == 5);
  const long first = gap_ms(etcd, Asked::watch, 0, Asked::ahead);
  const long second = gap_ms(etcd, Asked::watch, 1, Asked::ahead);
  const long after_deletion = gap_ms(etcd, Asked::watch, 2, Asked::ahead);
  const long again = gap_ms(etcd, Asked::watch, 3, Asked::ahead);
  INFO("pauses: " << first << ", " << second << ", " << after_deletion << ", " << again << " ms");
  CHECK(first >= 100);
  CHECK(first < 200);
  CHECK(second >= 200);
  CHECK(after_deletion < 100); // at once
  CHECK(again >= 100);
  CHECK(again < 200);
}

TEST_CASE("Session --wait: a watch etcd refuses is failed 77 naming the keys, and the lease "
          "revoked",
          "[session]") {
  TurnScript script;
  script.aheads = {{k_holder}};
  script.watches = {denied_watch()};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == proto::k_refused);
  CHECK(told(ran.messages, proto::k_failed) ==
        std::vector<std::string>{
            "failed", "77", "etcd refused: etcdserver: permission denied (keys loto/x/)"});
  CHECK(etcd.count(Asked::watch) == 1);
  CHECK(etcd.count(Asked::revoke) == 1);
}

namespace {

// etcd with authentication on: each authenticate gets a new token (tok1, tok2, ...), and
// `script` answers the rest (`lapses` of its first requests of `kind` get "invalid auth
// token" instead).
struct AuthScript {
  FakeEtcd::Script script;
  Asked kind = Asked::other;
  int lapses = 0;
  int tokens = 0;
  Canned operator()(const Request& request) {
    if (request.asked == Asked::authenticate) {
      return Canned{{token_answer("tok" + std::to_string(++tokens))}};
    }
    if (request.asked == kind && lapses > 0) {
      --lapses;
      return Canned{{k_token_expired_answer}};
    }
    return script(request);
  }
};

Options with_user(Options options, const PasswordFile& password) {
  options.credentials.user = "loto";
  options.credentials.password_file = password.path();
  return options;
}

std::vector<std::string> tokens_sent(const FakeEtcd& etcd) {
  std::vector<std::string> tokens;
  for (const Request& request : etcd.requests()) {
    tokens.push_back(request.token);
  }
  return tokens;
}

} // namespace

TEST_CASE("Session with etcd.user: a token first, sent with every request", "[session][auth]") {
  const PasswordFile password;
  FakeEtcd etcd(AuthScript{free_lock});
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::try_once), password), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(etcd.asked() ==
        std::vector<Asked>{Asked::authenticate, Asked::grant, Asked::enqueue, Asked::revoke});
  CHECK(tokens_sent(etcd) == std::vector<std::string>{"", "tok1", "tok1", "tok1"});
  const json credentials = etcd.first(Asked::authenticate).body;
  CHECK(credentials["name"] == "loto");
  CHECK(credentials["password"] == "secret");
}

TEST_CASE("Session with etcd.user: a token that lapses is fetched again and the request sent "
          "again at once",
          "[session][auth]") {
  const PasswordFile password;
  FakeEtcd etcd(AuthScript{free_lock, Asked::enqueue, 1});
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::try_once), password), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(etcd.asked() == std::vector<Asked>{Asked::authenticate,
                                           Asked::grant,
                                           Asked::enqueue,
                                           Asked::authenticate,
                                           Asked::enqueue,
                                           Asked::revoke});
  CHECK(tokens_sent(etcd) == std::vector<std::string>{"", "tok1", "tok1", "", "tok2", "tok2"});
  // Not after the 100 ms pause of a round of endpoints that did not answer.
  CHECK(gap_ms(etcd, Asked::enqueue, 0, Asked::enqueue) < 90);
}

TEST_CASE("Session with etcd.user: tokens lapsing a 4th time in one request are a refusal (77)",
          "[session][auth]") {
  const PasswordFile password;
  AuthScript three{free_lock, Asked::enqueue, 3};
  FakeEtcd etcd_three(three);
  CHECK(run_session(with_user(options_for(etcd_three, Mode::try_once), password),
                    release_once_acquired)
            .status == 0);
  CHECK(etcd_three.count(Asked::enqueue) == 4);

  FakeEtcd etcd(AuthScript{free_lock, Asked::enqueue, 100});
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::try_once), password), release_once_acquired);
  CHECK(ran.status == proto::k_refused);
  CHECK(told(ran.messages, proto::k_failed) ==
        std::vector<std::string>{
            "failed", "77", "etcd refused user 'loto': invalid auth token (key loto/x/1234)"});
  CHECK(etcd.count(Asked::enqueue) == 4);
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session with etcd.user: a watch refused for a lapsed token gets a new token and a new "
          "look, once after each deletion",
          "[session][auth]") {
  const PasswordFile password;
  const Canned denied = denied_watch();
  TurnScript turns;
  turns.aheads = {{k_holder}, {k_holder}, {k_holder}, {k_holder}, {}};
  turns.watches = {denied, deletion_after(0ms), denied, deletion_after(0ms)};
  FakeEtcd etcd(AuthScript{turns});
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::wait), password), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(etcd.count(Asked::authenticate) == 3);
  // A new look at once, not after the 100 ms pause of a broken watch.
  CHECK(gap_ms(etcd, Asked::watch, 0, Asked::ahead) < 90);
  CHECK(etcd.count(Asked::watch) == 4);

  TurnScript twice;
  twice.aheads = {{k_holder}};
  twice.watches = {denied};
  FakeEtcd refused(AuthScript{twice});
  const Ran again =
      run_session(with_user(options_for(refused, Mode::wait), password), release_once_acquired);
  CHECK(again.status == proto::k_refused);
  CHECK(refused.count(Asked::watch) == 2);
  CHECK(told(again.messages, proto::k_failed)[2] ==
        "etcd refused: etcdserver: permission denied (keys loto/x/)");
}

TEST_CASE("Session with etcd.user: a revoke refused for a lapsed token is sent once more with a "
          "new one",
          "[session][auth]") {
  const PasswordFile password;
  FakeEtcd etcd(AuthScript{free_lock, Asked::revoke, 1});
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::try_once), password), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(etcd.asked() == std::vector<Asked>{Asked::authenticate,
                                           Asked::grant,
                                           Asked::enqueue,
                                           Asked::revoke,
                                           Asked::authenticate,
                                           Asked::revoke});
  CHECK(tokens_sent(etcd).back() == "tok2");

  FakeEtcd lapsing(AuthScript{free_lock, Asked::revoke, 100});
  const Ran still =
      run_session(with_user(options_for(lapsing, Mode::try_once), password), release_once_acquired);
  CHECK(still.status == 0);
  CHECK(kinds(still.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(lapsing.count(Asked::revoke) == 2); // best effort: not for ever
}

TEST_CASE("Session with etcd.user: a wrong password is failed 77 naming the user, nothing granted",
          "[session][auth]") {
  const PasswordFile password;
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::authenticate
               ? Canned{{answer_with(
                     400,
                     "Bad Request",
                     R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})")}}
               : free_lock(request);
  });
  const Ran ran =
      run_session(with_user(options_for(etcd, Mode::try_once), password), release_once_acquired);
  CHECK(ran.status == proto::k_refused);
  CHECK(told(ran.messages, proto::k_failed) ==
        std::vector<std::string>{
            "failed",
            "77",
            "etcd refused user 'loto': authentication failed, invalid user ID or password"});
  CHECK(etcd.asked() == std::vector<Asked>{Asked::authenticate});
}

TEST_CASE("Session with etcd.user: an endpoint that does not answer the authentication is passed "
          "over",
          "[session][auth]") {
  const PasswordFile password;
  FakeEtcd etcd(AuthScript{free_lock});
  Options options = with_user(options_for(etcd, Mode::try_once), password);
  options.endpoints = {silent_endpoint(), etcd.url()};
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(etcd.asked() ==
        std::vector<Asked>{Asked::authenticate, Asked::grant, Asked::enqueue, Asked::revoke});
}

TEST_CASE("Session --try, busy: loto hanging up at once does not cut the revoke short",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    if (request.asked == Asked::revoke) {
      return revoked(300ms); // loto has hung up by then
    }
    return request.asked == Asked::enqueue ? enqueued({k_holder}) : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), [](std::string_view message) {
    return hang_up_on(proto::k_busy, message);
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "busy"});
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session --wait, two slots: once fewer than 2 keys are ahead, the lowest free slot is "
          "claimed",
          "[session]") {
  int looks = 0;
  FakeEtcd etcd([&looks](const Request& request) {
    switch (request.asked) {
    case Asked::enqueue:
      return enqueued({k_holder, k_second, k_mine});
    case Asked::ahead:
      return ++looks == 1 ? range(11, {k_second, k_holder}) : range(13, {k_holder});
    case Asked::watch:
      return deletion_after(0ms);
    case Asked::queue: // the slot keys: the holder 99 has slot 1
      return range(13, {kv("loto/x/slot/1", 8, 153, k_holder_key)});
    default:
      return two_slots(request);
    }
  });
  const Ran ran = run_session(options_for(etcd, Mode::wait, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(told(ran.messages, proto::k_queued)[1] == "1");
  CHECK(told(ran.messages, proto::k_acquired) ==
        std::vector<std::string>{"acquired", std::to_string(k_my_revision), k_my_key, "0"});
  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant,
                                           Asked::enqueue,
                                           Asked::ahead,
                                           Asked::watch,
                                           Asked::ahead,
                                           Asked::queue,
                                           Asked::claim,
                                           Asked::revoke});
  const json claim = etcd.first(Asked::claim).body;
  CHECK(decoded(claim["success"][0]["request_put"]["key"]) == "loto/x/slot/0");
}

TEST_CASE("Session --try, two slots: our key third in the queue holds no slot: busy", "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::enqueue ? enqueued({k_holder, k_second, k_mine})
                                           : two_slots(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "busy"});
  CHECK(etcd.count(Asked::claim) == 0);
}

TEST_CASE("Session --wait, one slot: a key ahead named like a slot key is waited for, as etcdctl "
          "lock would",
          "[session]") {
  TurnScript script;
  script.aheads = {{kv("loto/x/slot/0", 8, 153)}, {}};
  script.watches = {deletion_after(0ms)};
  FakeEtcd etcd(script);
  const Ran ran = run_session(options_for(etcd, Mode::wait), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(etcd.count(Asked::watch) == 1);
}

TEST_CASE("Session --wait, two slots: slot keys among the keys ahead are not places in the queue",
          "[session]") {
  // Ahead of ours: the holder 99 and its slot key: one place, so one of 2 slots is ours.
  FakeEtcd etcd([](const Request& request) {
    switch (request.asked) {
    case Asked::enqueue:
      return enqueued({k_holder, k_second, k_mine});
    case Asked::ahead:
      return range(11, {kv("loto/x/slot/0", 9, 153, k_holder_key), k_holder});
    default:
      return two_slots(request);
    }
  });
  const Ran ran = run_session(options_for(etcd, Mode::wait, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "acquired", "released"});
  CHECK(etcd.count(Asked::watch) == 0);
}

TEST_CASE("Session --wait: a watch stream that keeps ending on one endpoint moves to the next",
          "[session]") {
  TurnScript broken;
  broken.aheads = {{k_holder}};
  broken.watches = {ended_watch()};
  FakeEtcd first(broken);
  TurnScript working;
  working.aheads = {{k_holder}, {}};
  working.watches = {deletion_after(0ms)};
  FakeEtcd second(working);
  Options options = options_for(first, Mode::wait);
  options.endpoints = {first.url(), second.url()};
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "waiting", "queued", "acquired", "released"});
  CHECK(first.count(Asked::watch) == 1);
  CHECK(second.count(Asked::watch) == 1);
}

TEST_CASE("Session --wait, two slots, none free: a watch on the slot keys from just after the "
          "look, then the freed slot is claimed",
          "[session]") {
  int looks = 0;
  FakeEtcd etcd([&looks](const Request& request) {
    switch (request.asked) {
    case Asked::queue: // both slot keys taken, then slot 1 freed
      return ++looks == 1 ? range(20,
                                  {kv("loto/x/slot/0", 8, 153, k_holder_key),
                                   kv("loto/x/slot/1", 9, 160, "loto/x/gone")})
                          : range(22, {kv("loto/x/slot/0", 8, 153, k_holder_key)});
    case Asked::watch:
      return deletion_after(0ms);
    default:
      return two_slots(request);
    }
  });
  const Ran ran = run_session(options_for(etcd, Mode::wait, 2), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(told(ran.messages, proto::k_acquired).back() == "1");
  CHECK(etcd.count(Asked::queue) == 2);
  REQUIRE(etcd.count(Asked::watch) == 1);
  const json watch = etcd.first(Asked::watch).body["create_request"];
  CHECK(decoded(watch["key"]) == "loto/x/slot/");
  CHECK(watch["start_revision"] == "21");
}

namespace {

// A lease of 1 s (renewals every 250 ms) on top of `otherwise`: each keepalive is
// answered, and each key checked is there under our lease (our queue key at its revision).
FakeEtcd::Script renewing(FakeEtcd::Script otherwise) {
  return [otherwise = std::move(otherwise)](const Request& request) {
    switch (request.asked) {
    case Asked::grant:
      return granted(1);
    case Asked::keepalive:
      return answer(R"({"result":{"header":{"revision":"15"},"ID":"4660","TTL":"1"}})");
    case Asked::own_key: {
      const std::string key = decoded(request.body["key"]);
      return range(15, {kv(key, key == k_my_key ? k_my_revision : 14, k_lease)});
    }
    default:
      return otherwise(request);
    }
  };
}

// Holds through one renewal, then releases: the keys that renewal checked.
std::vector<std::string> keys_checked_while_holding(const FakeEtcd& etcd, int slots) {
  Options options = options_for(etcd, Mode::try_once, slots);
  options.ttl_ms = 1'000;
  const Ran ran = run_session(std::move(options), [](std::string_view message) {
    return kind_of(message) == proto::k_renewed ? LotoDoes::release : LotoDoes::nothing;
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) ==
        std::vector<std::string>{"granted", "acquired", "renewed", "released"});
  std::vector<std::string> checked;
  for (const Request& request : etcd.requests()) {
    if (request.asked == Asked::own_key) {
      checked.push_back(decoded(request.body["key"]));
    }
  }
  return checked;
}

} // namespace

TEST_CASE("Session, two slots: while holding, each renewal checks our key and our slot key",
          "[session]") {
  FakeEtcd etcd(renewing(two_slots));
  CHECK(keys_checked_while_holding(etcd, 2) == std::vector<std::string>{k_my_key, "loto/x/slot/1"});
}

TEST_CASE("Session, one slot: while holding, each renewal checks our key", "[session]") {
  FakeEtcd etcd(renewing(free_lock));
  CHECK(keys_checked_while_holding(etcd, 1) == std::vector<std::string>{k_my_key});
  CHECK(etcd.asked() ==
        std::vector<Asked>{
            Asked::grant, Asked::enqueue, Asked::keepalive, Asked::own_key, Asked::revoke});
}

TEST_CASE("Session: loto releasing while the enqueue is in flight: abandoned, revoked, released",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    return request.asked == Asked::enqueue ? Canned{{}, 0ms, false, true} : free_lock(request);
  });
  const Ran ran = run_session(options_for(etcd, Mode::try_once), [](std::string_view message) {
    return kind_of(message) == proto::k_granted ? LotoDoes::release : LotoDoes::nothing;
  });
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "released"});
  CHECK(etcd.count(Asked::revoke) == 1);
}

TEST_CASE("Session: once released, the renewal stops: nothing but the revoke goes to etcd",
          "[session]") {
  FakeEtcd etcd([](const Request& request) {
    switch (request.asked) {
    case Asked::grant:
      return granted(1); // renewals every 250 ms
    case Asked::revoke:
      return revoked(600ms);
    default:
      return free_lock(request);
    }
  });
  Options options = options_for(etcd, Mode::try_once);
  options.ttl_ms = 1'000;
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
  CHECK(etcd.asked() == std::vector<Asked>{Asked::grant, Asked::enqueue, Asked::revoke});
}

TEST_CASE("Session: loto hanging up after 'lost' or 'failed' does not cut the revoke short",
          "[session]") {
  SECTION("lost") {
    QueueScript script;
    script.quiet = 0ms;
    script.mine_after_wait = {};
    FakeEtcd etcd([&script](const Request& request) {
      return request.asked == Asked::revoke ? revoked(300ms) : script(request);
    });
    const Ran ran = run_session(options_for(etcd, Mode::wait), [](std::string_view message) {
      return hang_up_on(proto::k_lost, message);
    });
    CHECK(ran.status == k_exit_lost);
    CHECK(etcd.count(Asked::revoke) == 1);
  }
  SECTION("failed") {
    FakeEtcd etcd([](const Request& request) {
      if (request.asked == Asked::enqueue) {
        return permission_denied();
      }
      return request.asked == Asked::revoke ? revoked(300ms) : free_lock(request);
    });
    const Ran ran = run_session(options_for(etcd, Mode::try_once), [](std::string_view message) {
      return hang_up_on(proto::k_failed, message);
    });
    CHECK(ran.status == proto::k_refused);
    CHECK(etcd.count(Asked::revoke) == 1);
  }
}

TEST_CASE("Session: the revoke goes to each endpoint once until one answers", "[session]") {
  const auto revoke_unanswered = [](const Request& request) {
    return request.asked == Asked::revoke ? unavailable() : free_lock(request);
  };
  SECTION("the first endpoint does not answer it: the second does") {
    FakeEtcd first(revoke_unanswered);
    FakeEtcd second(free_lock);
    Options options = options_for(first, Mode::try_once);
    options.endpoints = {first.url(), second.url()};
    const Ran ran = run_session(std::move(options), release_once_acquired);
    CHECK(ran.status == 0);
    CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
    CHECK(first.count(Asked::revoke) == 1);
    CHECK(second.asked() == std::vector<Asked>{Asked::revoke});
  }
  SECTION("the first answers it: the second is not asked") {
    FakeEtcd first(free_lock);
    FakeEtcd second(free_lock);
    Options options = options_for(first, Mode::try_once);
    options.endpoints = {first.url(), second.url()};
    const Ran ran = run_session(std::move(options), release_once_acquired);
    CHECK(ran.status == 0);
    CHECK(first.count(Asked::revoke) == 1);
    CHECK(second.requests().empty());
  }
  SECTION("none answers it: each once, and released all the same") {
    FakeEtcd etcd(revoke_unanswered);
    const Ran ran = run_session(options_for(etcd, Mode::try_once), release_once_acquired);
    CHECK(ran.status == 0);
    CHECK(kinds(ran.messages) == std::vector<std::string>{"granted", "acquired", "released"});
    CHECK(etcd.count(Asked::revoke) == 1);
  }
}

TEST_CASE("Session with etcd.user: a revoke whose new token the first endpoint does not give goes "
          "to the next",
          "[session][auth]") {
  const PasswordFile password;
  AuthScript auth{free_lock, Asked::revoke, 1};
  FakeEtcd first([&auth](const Request& request) {
    if (request.asked == Asked::authenticate && auth.tokens == 1) {
      return unavailable();
    }
    return auth(request);
  });
  FakeEtcd second(AuthScript{free_lock});
  Options options = with_user(options_for(first, Mode::try_once), password);
  options.endpoints = {first.url(), second.url()};
  const Ran ran = run_session(std::move(options), release_once_acquired);
  CHECK(ran.status == 0);
  CHECK(first.asked() ==
        std::vector<Asked>{
            Asked::authenticate, Asked::grant, Asked::enqueue, Asked::revoke, Asked::authenticate});
  CHECK(second.asked() == std::vector<Asked>{Asked::authenticate, Asked::revoke});
}
