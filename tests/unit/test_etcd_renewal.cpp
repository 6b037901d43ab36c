// Unit tests for the helper's lease renewal (src/lock/etcd/helper/renewal.cpp) against a
// scripted loopback server: when each renewal is due and what it sends, what a reply makes
// of it (renewed, lost, tried again elsewhere), when it gives up and with which code, and
// the token of etcd.user. The clock is the test's: tick() and on_finished() are told the
// time; only the HTTP exchanges are real.
#include "fake_http_server.hpp"
#include "lock/etcd/helper/codec.hpp"
#include "lock/etcd/helper/etcd_api.hpp"
#include "lock/etcd/helper/etcd_client.hpp"
#include "lock/etcd/helper/outcome.hpp"
#include "lock/etcd/helper/renewal.hpp"
#include "lock/etcd/protocol.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace loto::etcd_helper;
using namespace loto::etcd_helper::testing;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

constexpr std::int64_t k_lease = 4660;
constexpr std::int64_t k_ttl_ms = 4000; // renewals every 1000 ms
// When the lease grant was sent: an arbitrary point of the monotonic clock.
constexpr std::int64_t k_granted_ns = 1'000'000 * k_ns_per_ms;

// `ms` milliseconds after the grant was sent.
constexpr std::int64_t at_ms(std::int64_t ms) {
  return k_granted_ns + ms * k_ns_per_ms;
}

const std::string k_alive =
    ok_answer(R"({"result":{"header":{"revision":"5"},"ID":"4660","TTL":"4"}})");
// The gateway's answer for a lease etcd no longer has: 200, and no TTL.
const std::string k_lease_gone = ok_answer(R"({"result":{"header":{"revision":"5"},"ID":"4660"}})");
const std::string k_no_key = ok_answer(R"({"header":{"revision":"9"}})");

// A range answer: `key` exists under `lease`.
std::string held_by(std::string_view key, std::int64_t lease) {
  return ok_answer(R"({"header":{"revision":"9"},"kvs":[{"key":")" + base64_encode(key) +
                   R"(","create_revision":"3","mod_revision":"3","version":"1","lease":")" +
                   std::to_string(lease) + R"("}],"count":"1"})");
}

// Answers the requests in turn with `in_order`, and every later one with its last.
FakeServer::Respond answers(std::vector<std::string> in_order) {
  return [in_order = std::move(in_order)](std::size_t index) {
    return Canned{{in_order[std::min(index, in_order.size() - 1)]}};
  };
}

// "/v3/lease/keepalive" of "POST /v3/lease/keepalive HTTP/1.1\r\n..."
std::string path_of(const std::string& request) {
  const auto start = request.find(' ') + 1;
  return request.substr(start, request.find(' ', start) - start);
}

std::string body_of(const std::string& request) {
  return request.substr(request.find("\r\n\r\n") + 4);
}

std::vector<std::string> paths(const FakeServer& server) {
  std::vector<std::string> sent;
  for (const std::string& request : server.requests()) {
    sent.push_back(path_of(request));
  }
  return sent;
}

// Runs etcd's transfers until the renewal's request finished, then tells the renewal so at
// `now_ns`: the SENT_NS of a renewal that succeeded, or nothing.
std::optional<std::int64_t> finish(EtcdClient& etcd, Renewal& renewal, std::int64_t now_ns) {
  const auto until = Clock::now() + 5s;
  while (Clock::now() < until) {
    etcd.multi().wait(-1, 20);
    for (Transfer* done : etcd.multi().finished()) {
      if (renewal.owns(*done)) {
        return renewal.on_finished(now_ns);
      }
    }
  }
  FAIL("the renewal's request did not finish within 5 s");
  return std::nullopt;
}

// The renewal due at `now_ns`, which takes `requests` (a keepalive, then one per key):
// what the last one came to.
std::optional<std::int64_t>
renew(EtcdClient& etcd, Renewal& renewal, std::int64_t now_ns, std::size_t requests = 1) {
  renewal.tick(now_ns);
  std::optional<std::int64_t> sent;
  for (std::size_t request = 0; request < requests; ++request) {
    sent = finish(etcd, renewal, now_ns);
  }
  return sent;
}

// The Lost that a renewal at 1000 ms ends in when etcd answers `in_order`.
std::optional<Lost> lost_in_renewal(std::vector<std::string> in_order,
                                    const std::vector<std::string>& keys) {
  FakeServer server(answers(std::move(in_order)));
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  if (!keys.empty()) {
    renewal.check_keys(keys);
  }
  try {
    static_cast<void>(renew(etcd, renewal, at_ms(1000), 1 + keys.size()));
  } catch (const Lost& lost) {
    return lost;
  }
  return std::nullopt;
}

// What the renewal throws at the lease's deadline (4000 ms) after its renewal at 1000 ms
// got `failed` (then the renewal that was tried again at 3999 ms gets nothing at all).
template <typename Thrown>
std::optional<Thrown> given_up(const std::string& failed, std::vector<std::string> keys = {}) {
  FakeServer server([&failed](std::size_t index) {
    return index == 0 ? Canned{{failed}} : Canned{{}, 0ms, false, true};
  });
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  if (!keys.empty()) {
    renewal.check_keys(std::move(keys));
  }
  CHECK_FALSE(renew(etcd, renewal, at_ms(1000)));
  CHECK_NOTHROW(renewal.tick(at_ms(3999))); // in time: tried again, once
  try {
    renewal.tick(at_ms(4000));
  } catch (const Thrown& thrown) {
    return thrown;
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("Renewal: a keepalive every TTL/4 from the grant, reported with the time it was sent",
          "[renewal]") {
  FakeServer server(answers({k_alive}));
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  CHECK(renewal.next_wake_ns() == at_ms(1000));
  renewal.tick(at_ms(999));
  CHECK(renewal.next_wake_ns() == at_ms(1000)); // not due: nothing sent

  renewal.tick(at_ms(1000));
  CHECK(renewal.next_wake_ns() == at_ms(4000)); // in flight: only the deadline
  CHECK(finish(etcd, renewal, at_ms(1010)) == at_ms(1000));
  CHECK(renewal.next_wake_ns() == at_ms(2000));

  // Late (a busy machine): the next one counts from when this one went.
  CHECK(renew(etcd, renewal, at_ms(2100)) == at_ms(2100));
  CHECK(renewal.next_wake_ns() == at_ms(3100));

  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(path_of(requests[0]) == "/v3/lease/keepalive");
  CHECK(body_of(requests[0]) == lease_request(k_lease));
}

TEST_CASE("Renewal: once held, each renewal also reads the lock key, then the slot key",
          "[renewal]") {
  const std::string lock_key = held_by("loto/x/a", k_lease);
  const std::string slot_key = held_by("loto/x/slot/1", k_lease);
  FakeServer server(answers({k_alive, lock_key, slot_key, k_alive, lock_key, slot_key}));
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  renewal.check_keys({"loto/x/a", "loto/x/slot/1"});
  CHECK(renew(etcd, renewal, at_ms(1000), 3) == at_ms(1000));
  CHECK(renewal.next_wake_ns() == at_ms(2000));
  CHECK(renew(etcd, renewal, at_ms(2000), 3) == at_ms(2000)); // both keys again
  const auto requests = server.requests();
  REQUIRE(requests.size() == 6);
  for (std::size_t round = 0; round < 2; ++round) {
    CHECK(path_of(requests[3 * round]) == "/v3/lease/keepalive");
    CHECK(path_of(requests[3 * round + 1]) == "/v3/kv/range");
    CHECK(body_of(requests[3 * round + 1]) == key_request("loto/x/a"));
    CHECK(path_of(requests[3 * round + 2]) == "/v3/kv/range");
    CHECK(body_of(requests[3 * round + 2]) == key_request("loto/x/slot/1"));
  }
}

TEST_CASE("Renewal: a lease etcd no longer has, or a key gone from under it, is lost",
          "[renewal]") {
  const std::vector<std::string> keys = {"loto/x/a", "loto/x/slot/1"};

  // A TTL, however short, is a live lease.
  CHECK_FALSE(lost_in_renewal(
      {ok_answer(R"({"result":{"header":{"revision":"5"},"ID":"4660","TTL":"1"}})")}, {}));

  const auto lease_gone = lost_in_renewal({k_lease_gone}, {});
  REQUIRE(lease_gone);
  CHECK(std::string(lease_gone->what()) == "the lease expired or was revoked");
  CHECK_FALSE(lease_gone->revoke); // nothing left to revoke

  const auto lock_key_deleted = lost_in_renewal({k_alive, k_no_key}, keys);
  REQUIRE(lock_key_deleted);
  CHECK(std::string(lock_key_deleted->what()) == "the lock key loto/x/a was deleted");
  CHECK(lock_key_deleted->revoke); // the lease may still hold other keys of ours

  // Deleted and made again by someone else: under another lease.
  const auto lock_key_taken = lost_in_renewal({k_alive, held_by("loto/x/a", 999)}, keys);
  REQUIRE(lock_key_taken);
  CHECK(std::string(lock_key_taken->what()) == "the lock key loto/x/a was deleted");

  const auto slot_key_taken =
      lost_in_renewal({k_alive, held_by("loto/x/a", k_lease), held_by("loto/x/slot/1", 999)}, keys);
  REQUIRE(slot_key_taken);
  CHECK(std::string(slot_key_taken->what()) == "the slot key loto/x/slot/1 was deleted");
  CHECK(slot_key_taken->revoke);
}

TEST_CASE("Renewal: a failed try goes to the next endpoint at once, and a round of failures pauses "
          "100 ms",
          "[renewal]") {
  FakeServer server(answers({k_unavailable_answer, k_alive}));
  const std::string refusing = silent_endpoint();
  EtcdClient etcd({refusing, server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);

  renewal.tick(at_ms(1000));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1005))); // refused: the other endpoint, at once
  CHECK(renewal.next_wake_ns() == at_ms(1005));
  renewal.tick(at_ms(1005));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1010))); // 503: both failed, a pause
  CHECK(renewal.next_wake_ns() == at_ms(1110));
  renewal.tick(at_ms(1109));
  CHECK(server.requests().size() == 1); // not yet
  renewal.tick(at_ms(1110));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1115))); // refused again: the server at once
  CHECK(renewal.next_wake_ns() == at_ms(1115));
  CHECK(renew(etcd, renewal, at_ms(1115)) == at_ms(1115));
  CHECK(renewal.next_wake_ns() == at_ms(2115));
  CHECK(paths(server) == std::vector<std::string>{"/v3/lease/keepalive", "/v3/lease/keepalive"});
}

TEST_CASE("Renewal: with three endpoints, two failures in a row go on at once", "[renewal]") {
  FakeServer server(answers({k_alive}));
  const std::string refusing = silent_endpoint();
  EtcdClient etcd({refusing, refusing, server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  renewal.tick(at_ms(1000));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1001)));
  CHECK(renewal.next_wake_ns() == at_ms(1001));
  renewal.tick(at_ms(1001));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1002)));
  CHECK(renewal.next_wake_ns() == at_ms(1002));
  CHECK(renew(etcd, renewal, at_ms(1002)) == at_ms(1002));
}

TEST_CASE("Renewal: the deadline counts from the last renewal that succeeded", "[renewal]") {
  FakeServer server(answers({k_alive, k_unavailable_answer}));
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  CHECK(renew(etcd, renewal, at_ms(1000)) == at_ms(1000));
  CHECK_FALSE(renew(etcd, renewal, at_ms(2000)));
  CHECK(renewal.next_wake_ns() == at_ms(2100)); // one endpoint: each failure is a round
  CHECK_NOTHROW(renewal.tick(at_ms(4999)));
  CHECK(renewal.next_wake_ns() == at_ms(5000)); // in flight until the deadline
  CHECK_FALSE(finish(etcd, renewal, at_ms(4999)));
  CHECK_THROWS_AS(renewal.tick(at_ms(5000)), Failure);
}

TEST_CASE("Renewal: past its deadline with no failed try (the helper was stopped), it asks etcd "
          "first",
          "[renewal]") {
  FakeServer server(answers({k_unavailable_answer, k_alive}));
  EtcdClient etcd({server.url()});
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
  CHECK_FALSE(renew(etcd, renewal, at_ms(1000)));
  CHECK(renew(etcd, renewal, at_ms(1100)) == at_ms(1100)); // the count of failures is reset
  CHECK(renew(etcd, renewal, at_ms(9000)) == at_ms(9000)); // 7.9 s without a tick
  CHECK(renewal.next_wake_ns() == at_ms(10000));
}

TEST_CASE("Renewal: gives up at the deadline with the reason of the last failure", "[renewal]") {
  SECTION("no answer: 69 while queued, naming the endpoints") {
    const auto failure = given_up<Failure>(k_unavailable_answer);
    REQUIRE(failure);
    CHECK(failure->code == loto::etcd_protocol::k_unavailable);
    CHECK_THAT(failure->what(), StartsWith("cannot reach etcd at http://127.0.0.1:"));
    CHECK_THAT(failure->what(), Contains("transport is closing"));
  }
  SECTION("no answer while holding: the lock is lost, and the lease revoked if it is there") {
    const auto lost = given_up<Lost>(k_unavailable_answer, {"loto/x/a"});
    REQUIRE(lost);
    CHECK_THAT(lost->what(),
               StartsWith("no renewal of the lease succeeded for 4000 ms (cannot reach etcd at "));
    CHECK(lost->revoke);
  }
  SECTION("permission denied: 77") {
    const auto failure = given_up<Failure>(answer_with(
        403,
        "Forbidden",
        R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})"));
    REQUIRE(failure);
    CHECK(failure->code == loto::etcd_protocol::k_refused);
    CHECK_THAT(failure->what(), StartsWith("etcd refused: "));
    CHECK_THAT(failure->what(), Contains("permission denied"));
  }
  SECTION("an answer that is not etcd's: 70, naming the endpoint") {
    const auto failure = given_up<Failure>(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n404 page not found\n");
    REQUIRE(failure);
    CHECK(failure->code == loto::etcd_protocol::k_software);
    CHECK_THAT(failure->what(),
               StartsWith("unexpected answer from etcd at http://127.0.0.1:") &&
                   Contains(": HTTP 404: 404 page not found"));
  }
  SECTION("a keepalive answer without its result: 70") {
    const auto failure = given_up<Failure>(ok_answer(R"({"header":{}})"));
    REQUIRE(failure);
    CHECK(failure->code == loto::etcd_protocol::k_software);
    CHECK_THAT(failure->what(), StartsWith("unexpected answer from etcd at http://127.0.0.1:"));
  }
}

TEST_CASE("Renewal with etcd.user: a token first, and a lapsed one is fetched again at once",
          "[renewal][auth]") {
  const PasswordFile password;
  FakeServer server(answers(
      {token_answer("tok1"), k_alive, k_token_expired_answer, token_answer("tok2"), k_alive}));
  Credentials credentials;
  credentials.user = "root";
  credentials.password_file = password.path();
  EtcdClient etcd({server.url()}, credentials);
  Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);

  renewal.tick(at_ms(1000));
  CHECK_FALSE(finish(etcd, renewal, at_ms(1010))); // the token: the keepalive goes at 1010
  CHECK(finish(etcd, renewal, at_ms(1020)) == at_ms(1010));
  CHECK(renewal.next_wake_ns() == at_ms(2010));

  CHECK_FALSE(renew(etcd, renewal, at_ms(2010))); // the token lapsed: again at once
  CHECK(renewal.next_wake_ns() == at_ms(2010));
  renewal.tick(at_ms(2010));
  CHECK_FALSE(finish(etcd, renewal, at_ms(2030)));
  CHECK(finish(etcd, renewal, at_ms(2040)) == at_ms(2030));

  CHECK(paths(server) == std::vector<std::string>{"/v3/auth/authenticate",
                                                  "/v3/lease/keepalive",
                                                  "/v3/lease/keepalive",
                                                  "/v3/auth/authenticate",
                                                  "/v3/lease/keepalive"});
  const auto requests = server.requests();
  REQUIRE(requests.size() == 5);
  CHECK_THAT(requests[0], Contains(R"("password":"secret")"));
  CHECK_THAT(requests[2], Contains("Authorization: tok1\r\n"));
  CHECK_THAT(requests[4], Contains("Authorization: tok2\r\n"));
}

TEST_CASE("Renewal with etcd.user: a token etcd keeps refusing, or a wrong password, gives 77",
          "[renewal][auth]") {
  const PasswordFile password;
  Credentials credentials;
  credentials.user = "root";
  credentials.password_file = password.path();

  SECTION("every token lapses at once") {
    FakeServer server(answers({token_answer("tok1"), k_token_expired_answer}));
    EtcdClient etcd({server.url()}, credentials);
    Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
    renewal.tick(at_ms(1000));
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000)));
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000)));
    try {
      renewal.tick(at_ms(4000));
      FAIL("no Failure at the deadline");
    } catch (const Failure& failure) {
      CHECK(failure.code == loto::etcd_protocol::k_refused);
      CHECK_THAT(failure.what(), StartsWith("etcd refused: ") && Contains("invalid auth token"));
    }
  }
  SECTION("a lapsed token, then no answer: each counts as a failure") {
    FakeServer server(
        answers({token_answer("tok1"), k_token_expired_answer, k_unavailable_answer}));
    EtcdClient etcd({server.url()}, credentials);
    Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
    renewal.tick(at_ms(1000));
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000))); // the token
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000))); // the keepalive: the token lapsed
    renewal.tick(at_ms(1000));
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000))); // a new token: 503
    CHECK_THROWS_AS(renewal.tick(at_ms(4000)), Failure);
  }
  SECTION("the password is wrong") {
    FakeServer server(answers({answer_with(
        400,
        "Bad Request",
        R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})")}));
    EtcdClient etcd({server.url()}, credentials);
    Renewal renewal(etcd, k_lease, k_ttl_ms, k_granted_ns);
    renewal.tick(at_ms(1000));
    CHECK_FALSE(finish(etcd, renewal, at_ms(1000)));
    CHECK(renewal.next_wake_ns() == at_ms(1100));
    try {
      renewal.tick(at_ms(4000));
      FAIL("no Failure at the deadline");
    } catch (const Failure& failure) {
      CHECK(failure.code == loto::etcd_protocol::k_refused);
      CHECK_THAT(failure.what(), StartsWith("etcd refused: etcd refused user 'root': "));
    }
  }
}
