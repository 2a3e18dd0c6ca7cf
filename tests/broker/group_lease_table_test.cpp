#include "broker/group_lease_table.h"

#include <doctest/doctest.h>

using mcp::broker::group_lease_table;
using mcp::broker::member_id;

namespace {
const member_id a{0, 1, 7};
const member_id b{1, 2, 7};
group_lease_table::settings quick() { return {1000, 3}; }
}  // namespace

TEST_CASE("lease table: new records are leased from the cursor up to the high watermark") {
  group_lease_table t(10, quick());
  auto runs = t.take(a, 0, 5, 12);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].first == 10);
  CHECK(runs[0].count == 2);
  CHECK(runs[0].deliveries == 1);
  CHECK(t.take(b, 0, 5, 12).empty());
  CHECK(t.committed() == 10);
  CHECK(t.leased() == 2);
}

TEST_CASE("lease table: only the holder's ack counts; the position moves past acked records") {
  group_lease_table t(0, quick());
  t.take(a, 0, 4, 100);
  t.take(b, 0, 4, 100);  // 4..7
  CHECK(t.ack(b, 0, 3) == 0);
  CHECK(t.ack(a, 0, 1) == 2);
  CHECK(t.committed() == 2);
  CHECK(t.ack(a, 2, 3) == 2);
  CHECK(t.committed() == 4);
  CHECK(t.ack(b, 0, ~0ull) == 4);
  CHECK(t.committed() == 8);
}

TEST_CASE("lease table: a NACKed record waits for its delay, then goes first, with its delivery count") {
  group_lease_table t(0, quick());
  t.take(a, 0, 2, 100);
  group_lease_table::released r;
  CHECK_FALSE(t.nack(b, 1, 50, r));  // not b's
  REQUIRE(t.nack(a, 1, 50, r));
  CHECK_FALSE(r.dead);
  CHECK(t.committed() == 0);
  auto early = t.take(b, 49, 1, 100);
  REQUIRE(early.size() == 1);
  CHECK(early[0].first == 2);  // the NACKed one is not due yet
  auto due = t.take(b, 50, 1, 100);
  REQUIRE(due.size() == 1);
  CHECK(due[0].first == 1);
  CHECK(due[0].deliveries == 2);
  CHECK(t.redeliveries() == 1);
}

TEST_CASE("lease table: leases expire after ack_wait; a member leaving releases its leases at once") {
  group_lease_table t(0, quick());
  t.take(a, 0, 3, 100);
  t.take(b, 500, 2, 100);
  auto ended = t.expire(999);
  CHECK(ended.empty());
  ended = t.expire(1000);
  CHECK(ended.size() == 3);
  for (const auto& e : ended) CHECK(e.member == a);
  auto left = t.release_member(b);
  CHECK(left.size() == 2);
  CHECK(t.leased() == 0);
  CHECK(t.waiting() == 5);
  auto again = t.take(a, 1000, 10, 5);
  REQUIRE(again.size() == 1);
  CHECK(again[0].first == 0);
  CHECK(again[0].count == 5);
  CHECK(again[0].deliveries == 2);
}

TEST_CASE("lease table: after max_deliver deliveries the record is dead and held until dead-lettered") {
  group_lease_table t(0, quick());  // max_deliver 3
  group_lease_table::released r;
  for (int i = 1; i <= 3; ++i) {
    auto runs = t.take(a, 0, 1, 1);
    REQUIRE(runs.size() == 1);
    CHECK(runs[0].deliveries == i);
    REQUIRE(t.nack(a, 0, 0, r));
  }
  CHECK(r.dead);
  CHECK(r.deliveries == 3);
  CHECK(t.take(a, 0, 1, 1).empty());
  CHECK(t.committed() == 0);  // held
  t.dead_lettered(0);
  CHECK(t.committed() == 1);
  CHECK(t.dead_letters() == 1);
}

TEST_CASE("lease table: give_back returns an unsendable tail to the cursor or the redelivery queue") {
  group_lease_table t(0, quick());
  auto runs = t.take(a, 0, 10, 10);
  t.give_back(6, 10, 1);
  CHECK(t.cursor() == 6);
  CHECK(t.leased() == 6);
  group_lease_table::released r;
  REQUIRE(t.nack(a, 2, 0, r));
  auto re = t.take(a, 0, 1, 6);
  REQUIRE(re.size() == 1);
  t.give_back(2, 3, re[0].deliveries);
  auto back = t.take(b, 0, 1, 6);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first == 2);
  CHECK(back[0].deliveries == 2);
}

TEST_CASE("lease table: retention skips what is not leased; a leased record below the log start ends without redelivery") {
  group_lease_table t(0, quick());
  t.take(a, 0, 2, 100);  // 0..1 leased to a
  group_lease_table::released r;
  REQUIRE(t.ack(a, 1, 1) == 1);
  // Offsets 0..9 are deleted: 2..9 were never delivered and are skipped; 0 stays leased.
  CHECK(t.skip_to(10) == 8);
  CHECK(t.skipped() == 8);
  CHECK(t.committed() == 0);  // 0 is still leased
  CHECK(t.skip_to(5) == 0);  // the log start never moves back
  auto next = t.take(b, 0, 3, 100);
  REQUIRE(next.size() == 1);
  CHECK(next[0].first == 10);
  // The old lease of 0 ends (NACK): it cannot be read again, so it is gone, not waiting.
  REQUIRE(t.nack(a, 0, 0, r));
  CHECK(r.gone);
  CHECK_FALSE(r.dead);
  CHECK(t.waiting() == 0);
  CHECK(t.skipped() == 9);
  CHECK(t.committed() == 10);
  CHECK(t.take(a, 0, 10, 13).empty());
}
