// Unit tests for what loto reads from its etcd helper (src/lock/etcd/messages.cpp): the
// lines, the counts in them, and the deadlines by which a job whose lease may be gone is
// stopped.
#include "lock/etcd/messages.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using loto::HelperMessage;
using loto::holders_among;
using loto::LeaseTimes;
using loto::MonotonicTime;
using loto::parse_count;
using loto::parse_helper_message;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("parse_helper_message splits a line at tabs: the verb and then every field") {
  const HelperMessage acquired = parse_helper_message("acquired\t42\t/loto/cpu/1a\t2");
  CHECK(acquired.verb == "acquired");
  CHECK(acquired.fields == std::vector<std::string>{"42", "/loto/cpu/1a", "2"});

  const HelperMessage released = parse_helper_message("released");
  CHECK(released.verb == "released");
  CHECK(released.fields.empty());

  // Empty fields are kept in their places, the last one included.
  const HelperMessage entry = parse_helper_message("entry\t\tx\t");
  CHECK(entry.verb == "entry");
  CHECK(entry.fields == std::vector<std::string>{"", "x", ""});

  // A line that begins with a tab has no verb; what follows is still its fields.
  const HelperMessage headless = parse_helper_message("\tlost");
  CHECK(headless.verb.empty());
  CHECK(headless.fields == std::vector<std::string>{"lost"});

  CHECK(parse_helper_message("").verb.empty());
  CHECK(parse_helper_message("").fields.empty());
}

TEST_CASE("HelperMessage::field gives \"\" past the fields the helper sent") {
  const HelperMessage busy = parse_helper_message("busy\tpid 7 on web1");
  CHECK(busy.field(0) == "pid 7 on web1");
  CHECK(busy.field(1).empty());
  CHECK(busy.field(2).empty());
  CHECK(HelperMessage{}.field(0).empty());
}

TEST_CASE("parse_count reads a whole decimal int and gives 0 for anything else") {
  CHECK(parse_count("0") == 0);
  CHECK(parse_count("1") == 1);
  CHECK(parse_count("3") == 3);
  CHECK(parse_count("2147483647") == 2147483647);
  CHECK(parse_count("-2") == -2);
  CHECK(parse_count("") == 0);
  CHECK(parse_count("x") == 0);
  CHECK(parse_count("3x") == 0);
  CHECK(parse_count("3 ") == 0);
  CHECK(parse_count(" 3") == 0);
  CHECK(parse_count("2147483648") == 0);
  CHECK(parse_count("99999999999999999999") == 0);
}

TEST_CASE("holders_among takes HELD within 1..COUNT and 1 without it") {
  // holders COUNT HOLDER URL [HELD]
  CHECK(holders_among(parse_helper_message("holders\t5\th\tu"), 5) == 1);
  CHECK(holders_among(parse_helper_message("holders\t5\th\tu\t3"), 5) == 3);
  CHECK(holders_among(parse_helper_message("holders\t5\th\tu\t5"), 5) == 5);
  CHECK(holders_among(parse_helper_message("holders\t2\th\tu\t4"), 2) == 2);
  CHECK(holders_among(parse_helper_message("holders\t5\th\tu\t0"), 5) == 1);
  CHECK(holders_among(parse_helper_message("holders\t5\th\tu\tmany"), 5) == 1);
  CHECK(holders_among(parse_helper_message("holders\t1\th\tu\t1"), 1) == 1);
}

namespace {

MonotonicTime at(milliseconds since_epoch) {
  return MonotonicTime(since_epoch);
}

// A lease granted with TTL 10 s, its grant sent at 100 s.
LeaseTimes granted_lease() {
  LeaseTimes lease;
  lease.apply(parse_helper_message("granted\t694d7c1f\t10000\t100000000000"));
  return lease;
}

} // namespace

TEST_CASE("LeaseTimes takes the lease from \"granted\" and the latest renewal from \"renewed\"") {
  LeaseTimes lease = granted_lease();
  CHECK(lease.id_hex == "694d7c1f");
  CHECK(lease.ttl == seconds(10));
  CHECK(lease.renewed_at == at(seconds(100)));

  lease.apply(parse_helper_message("renewed\t102500000000"));
  CHECK(lease.renewed_at == at(milliseconds(102'500)));
  // A renewal answered out of order never moves the time back.
  lease.apply(parse_helper_message("renewed\t101000000000"));
  CHECK(lease.renewed_at == at(milliseconds(102'500)));
  // Other messages change nothing.
  lease.apply(parse_helper_message("queued\t200000000000"));
  lease.apply(parse_helper_message("lost\t200000000000"));
  CHECK(lease.renewed_at == at(milliseconds(102'500)));
  CHECK(lease.id_hex == "694d7c1f");
  CHECK(lease.ttl == seconds(10));
}

TEST_CASE("A live lease: SIGTERM at 0.6 TTL and SIGKILL at 0.8 TTL after the last renewal") {
  LeaseTimes lease = granted_lease();
  CHECK(lease.term_deadline(std::nullopt) == at(seconds(106)));
  CHECK(lease.kill_deadline(std::nullopt) == at(seconds(108)));
  lease.apply(parse_helper_message("renewed\t103000000000"));
  CHECK(lease.term_deadline(std::nullopt) == at(seconds(109)));
  CHECK(lease.kill_deadline(std::nullopt) == at(seconds(111)));
}

TEST_CASE("A lease etcd says is gone: SIGTERM at once and SIGKILL 0.2 TTL later but never "
          "later than for a silent lease") {
  const LeaseTimes lease = granted_lease();
  // Lost early: the loss decides.
  CHECK(lease.term_deadline(at(seconds(101))) == at(seconds(101)));
  CHECK(lease.kill_deadline(at(seconds(101))) == at(seconds(103)));
  // Lost late: the deadlines of the silent lease come first.
  CHECK(lease.term_deadline(at(seconds(107))) == at(seconds(106)));
  CHECK(lease.kill_deadline(at(seconds(107))) == at(seconds(108)));
  // In between: SIGTERM at the loss, SIGKILL by the silent lease's deadline.
  CHECK(lease.term_deadline(at(milliseconds(105'000))) == at(seconds(105)));
  CHECK(lease.kill_deadline(at(milliseconds(105'000))) == at(seconds(107)));
  CHECK(lease.kill_deadline(at(milliseconds(107'000))) == at(seconds(108)));
}
