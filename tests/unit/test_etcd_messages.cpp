// Unit tests for what loto reads from its etcd helper (src/lock/etcd/messages.cpp): the
// lines, the counts in them, "failed" codes, the answers of --inspect, and the deadlines
// by which a job whose lease may be gone is stopped.
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

TEST_CASE("failure_exit_code takes CODE from \"failed\" and 69 when it is missing or 0 or junk") {
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t77\tpermission denied")) == 77);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t78\tbad CA file")) == 78);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t70\tbad answer")) == 70);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t69\tno endpoint")) == 69);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t0\tnothing")) == 69);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t\tnothing")) == 69);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\tbad\tnothing")) == 69);
  CHECK(loto::failure_exit_code(parse_helper_message("failed")) == 69);
  CHECK(loto::failure_exit_code(parse_helper_message("failed\t256\ttoo big")) == 69);
}

TEST_CASE("holder_of names the holder of a \"holders\" line and counts who waits behind it") {
  CHECK_FALSE(loto::holder_of(parse_helper_message("holders\t0\t\thttp://e:2379")));
  CHECK_FALSE(loto::holder_of(parse_helper_message("holders\t-1\th\thttp://e:2379")));
  CHECK_FALSE(loto::holder_of(parse_helper_message("holders\tjunk\th\thttp://e:2379")));

  const auto mutex = loto::holder_of(parse_helper_message("holders\t3\tpid 7 on web1\tu"));
  REQUIRE(mutex);
  CHECK(mutex->pid == 0); // on another host, maybe: only the description says
  CHECK(mutex->command.empty());
  CHECK(mutex->description == "pid 7 on web1");
  CHECK(mutex->waiting == 2);
  CHECK(mutex->ahead == 0);

  const auto alone = loto::holder_of(parse_helper_message("holders\t1\tpid 7 on web1\tu"));
  REQUIRE(alone);
  CHECK(alone->description == "pid 7 on web1");
  CHECK(alone->waiting == 0);

  const auto slots =
      loto::holder_of(parse_helper_message("holders\t5\tslot 0: a; slot 1: b\tu\t2"));
  REQUIRE(slots);
  CHECK(slots->description == "slot 0: a; slot 1: b");
  CHECK(slots->waiting == 3);
}

namespace {

std::vector<HelperMessage> entries_of(const std::vector<std::string>& lines) {
  std::vector<HelperMessage> entries;
  for (const auto& line : lines) {
    entries.push_back(parse_helper_message(line));
  }
  return entries;
}

} // namespace

TEST_CASE("lock_state_of: the holders and then the waiters in queue order from the entries") {
  const auto state = loto::lock_state_of(
      parse_helper_message("holders\t3\tpid 7 on web1\tu\t1"),
      entries_of({"entry\tweb1\t7\troot\t2026-11-30T06:00:00Z\tbackup.sh --full\tpid 7 on web1\t",
                  "entry\tweb2\t8\tann\t2026-11-30T06:00:01Z\tsleep 1\tpid 8 on web2\t",
                  "entry\tweb3\t\t\t\t\ta client that left no holder record\t"}));
  REQUIRE(state.holders.size() == 1);
  REQUIRE(state.waiters.size() == 2);
  CHECK(state.waiters_listed);
  CHECK(state.waiting == 0);
  const loto::LockParty& holder = state.holders[0];
  CHECK(holder.pid == 7);
  CHECK(holder.host == "web1");
  CHECK(holder.user == "root");
  CHECK(holder.command == "backup.sh --full");
  CHECK(holder.since == "2026-11-30T06:00:00Z");
  CHECK(holder.mode == "exclusive");
  CHECK(holder.description == "pid 7 on web1");
  CHECK(holder.slot == -1);
  CHECK(state.waiters[0].pid == 8);
  CHECK(state.waiters[0].host == "web2");
  CHECK(state.waiters[0].user == "ann");
  CHECK(state.waiters[1].pid == 0);
  CHECK(state.waiters[1].host == "web3");
  CHECK(state.waiters[1].description == "a client that left no holder record");
}

TEST_CASE("lock_state_of with slots: the first HELD entries hold and keep their slots") {
  const auto state =
      loto::lock_state_of(parse_helper_message("holders\t3\tslot 0: a; slot 1: b\tu\t2"),
                          entries_of({"entry\th1\t1\tu\ts\tc1\td1\t1",
                                      "entry\th2\t2\tu\ts\tc2\td2\t0",
                                      "entry\th3\t3\tu\ts\tc3\td3\t"}));
  REQUIRE(state.holders.size() == 2);
  REQUIRE(state.waiters.size() == 1);
  CHECK(state.holders[0].pid == 1);
  CHECK(state.holders[0].slot == 1);
  CHECK(state.holders[1].pid == 2);
  CHECK(state.holders[1].slot == 0);
  CHECK(state.waiters[0].pid == 3);
  CHECK(state.waiters[0].slot == -1);
}

TEST_CASE("lock_state_of: free with COUNT 0 and a count of waiters without one entry per key") {
  const auto free = loto::lock_state_of(parse_helper_message("holders\t0\t\tu"), {});
  CHECK(free.holders.empty());
  CHECK(free.waiters.empty());
  CHECK(free.waiting == 0);
  // COUNT 0 is free whatever else came
  const auto still_free = loto::lock_state_of(parse_helper_message("holders\t0\t\tu"),
                                              entries_of({"entry\th1\t1\tu\ts\tc1\td1\t"}));
  CHECK(still_free.holders.empty());
  CHECK(still_free.waiters.empty());
  CHECK(still_free.waiters_listed);

  // one key: its holder, nobody waiting
  const auto alone = loto::lock_state_of(parse_helper_message("holders\t1\td1\tu"),
                                         entries_of({"entry\th1\t1\tu\ts\tc1\td1\t"}));
  REQUIRE(alone.holders.size() == 1);
  CHECK(alone.holders[0].pid == 1);
  CHECK(alone.waiters.empty());
  CHECK(alone.waiting == 0);

  // no entries (a helper that sends none), or fewer than COUNT: the holder line only
  for (const auto& entries :
       {std::vector<HelperMessage>{}, entries_of({"entry\th1\t1\tu\ts\tc1\td1\t"})}) {
    const auto counted =
        loto::lock_state_of(parse_helper_message("holders\t4\tpid 7 on web1\tu"), entries);
    REQUIRE(counted.holders.size() == 1);
    CHECK(counted.holders[0].pid == 0);
    CHECK(counted.holders[0].description == "pid 7 on web1");
    CHECK(counted.holders[0].mode == "exclusive");
    CHECK(counted.holders[0].host.empty());
    CHECK(counted.waiters.empty());
    CHECK(counted.waiting == 3);
    CHECK_FALSE(counted.waiters_listed);
  }
  const auto two_slots = loto::lock_state_of(parse_helper_message("holders\t5\tslots\tu\t2"), {});
  CHECK(two_slots.waiting == 3);
}
