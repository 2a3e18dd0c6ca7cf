#include "broker/group_lease_table.h"

#include <doctest/doctest.h>

#include <map>
#include <random>

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

TEST_CASE("lease table: a run is cut only where an ack, NACK or give-back ends part of it") {
  group_lease_table t(0, quick());
  t.take(a, 0, 100, 1000);  // 0..99 to a: one run
  t.take(b, 0, 100, 1000);  // 100..199 to b: one run
  CHECK(t.lease_runs() == 2);
  CHECK(t.leased() == 200);
  // An ack in the middle of a's run leaves two pieces; b's acks for a's offsets change nothing.
  CHECK(t.ack(b, 10, 19) == 0);
  CHECK(t.lease_runs() == 2);
  CHECK(t.ack(a, 10, 19) == 10);
  CHECK(t.lease_runs() == 3);
  CHECK(t.leased() == 190);
  // An ack range spanning both members' runs completes only the caller's records, and
  // does not cut the other member's run.
  CHECK(t.ack(a, 90, 149) == 10);
  CHECK(t.lease_runs() == 3);
  CHECK(t.leased() == 180);
  // A NACK of one record in b's run: three pieces, the record waits for redelivery.
  group_lease_table::released r;
  REQUIRE(t.nack(b, 150, 0, r));
  CHECK(r.offset == 150);
  CHECK(r.member == b);
  CHECK(t.lease_runs() == 4);
  CHECK(t.leased() == 179);
  CHECK(t.waiting() == 1);
  CHECK_FALSE(t.nack(b, 150, 0, r));  // no longer b's
  CHECK(t.committed() == 0);
  CHECK(t.ack(a, 0, 9) == 10);
  CHECK(t.committed() == 20);
  // Acks of every piece empty the table; the NACKed record holds the position.
  CHECK(t.ack(a, 0, 99) == 70);
  CHECK(t.ack(b, 100, 199) == 99);
  CHECK(t.leased() == 0);
  CHECK(t.lease_runs() == 0);
  CHECK(t.committed() == 150);
}

TEST_CASE("lease table: expiry and a member leaving end every record of their runs") {
  group_lease_table t(0, quick());
  t.take(a, 0, 5, 100);    // 0..4, deadline 1000
  t.take(b, 500, 5, 100);  // 5..9, deadline 1500
  REQUIRE(t.ack(a, 2, 2) == 1);
  auto ended = t.expire(1000);
  REQUIRE(ended.size() == 4);
  CHECK(ended[0].offset == 0);
  CHECK(ended[1].offset == 1);
  CHECK(ended[2].offset == 3);
  CHECK(ended[3].offset == 4);
  CHECK(t.leased() == 5);
  CHECK(t.waiting() == 4);
  // The redeliveries come back as runs of consecutive offsets: 0..1 and 3..4.
  auto again = t.take(a, 1000, 10, 10);
  REQUIRE(again.size() == 2);
  CHECK(again[0].first == 0);
  CHECK(again[0].count == 2);
  CHECK(again[0].deliveries == 2);
  CHECK(again[1].first == 3);
  CHECK(again[1].count == 2);
  CHECK(t.leased() == 9);
  auto left = t.release_member(b);
  REQUIRE(left.size() == 5);
  CHECK(left.front().offset == 5);
  CHECK(left.back().offset == 9);
  CHECK(t.leased() == 4);
  CHECK(t.committed() == 0);
}

TEST_CASE("lease table: give_back of the tail of a run keeps its head leased") {
  group_lease_table t(0, quick());
  t.take(a, 0, 10, 100);  // 0..9
  t.give_back(6, 10, 1);  // 6..9 could not be sent: back to the cursor
  CHECK(t.leased() == 6);
  CHECK(t.cursor() == 6);
  CHECK(t.ack(a, 0, 9) == 6);
  auto next = t.take(b, 0, 10, 100);
  REQUIRE(next.size() == 1);
  CHECK(next[0].first == 6);
  CHECK(next[0].count == 10);
}

namespace {

// The table's rules, one map node per record: what the run-based table must agree with.
struct per_record_model {
  struct l {
    member_id m;
    std::int64_t deadline;
    std::uint16_t deliveries;
  };
  std::map<std::uint64_t, l> leases;
  std::map<std::uint64_t, std::pair<std::int64_t, std::uint16_t>> waiting;  // ready_at, deliveries
  std::uint64_t cursor = 0;
  std::uint32_t max_deliver = 3;
  std::int64_t ack_wait = 1000;

  std::uint32_t take(const member_id& m, std::int64_t now, std::uint32_t max, std::uint64_t end) {
    std::uint32_t n = 0;
    for (auto it = waiting.begin(); it != waiting.end() && n < max;) {
      if (it->second.first > now) {
        ++it;
        continue;
      }
      leases[it->first] = {m, now + ack_wait, static_cast<std::uint16_t>(it->second.second + 1)};
      it = waiting.erase(it);
      ++n;
    }
    for (; n < max && cursor < end; ++n) leases[cursor++] = {m, now + ack_wait, 1};
    return n;
  }
  std::uint32_t ack(const member_id& m, std::uint64_t first, std::uint64_t last) {
    std::uint32_t n = 0;
    for (auto it = leases.lower_bound(first); it != leases.end() && it->first <= last;) {
      if (it->second.m == m) {
        it = leases.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }
  std::size_t end(std::int64_t now, const member_id* who) {
    std::size_t n = 0;
    for (auto it = leases.begin(); it != leases.end();) {
      const bool ends = who != nullptr ? it->second.m == *who : it->second.deadline <= now;
      if (!ends) {
        ++it;
        continue;
      }
      if (it->second.deliveries < max_deliver) waiting[it->first] = {who != nullptr ? 0 : now, it->second.deliveries};
      it = leases.erase(it);
      ++n;
    }
    return n;
  }
  std::uint64_t committed() const {
    std::uint64_t c = cursor;
    if (!leases.empty()) c = std::min(c, leases.begin()->first);
    if (!waiting.empty()) c = std::min(c, waiting.begin()->first);
    return c;
  }
};

}  // namespace

TEST_CASE("lease table: runs agree with one lease per record over random takes, acks, NACKs, expiries and leaves") {
  std::mt19937_64 rng(12345);
  const member_id members[] = {a, b, {2, 3, 1}};
  for (int round = 0; round < 20; ++round) {
    group_lease_table t(0, quick());
    per_record_model model;
    std::uint64_t end = 0;
    std::int64_t now = 0;
    for (int step = 0; step < 400; ++step) {
      const member_id& m = members[rng() % 3];
      end += rng() % 20;
      now += static_cast<std::int64_t>(rng() % 200);
      switch (rng() % 6) {
        case 0:
        case 1: {
          const auto max = static_cast<std::uint32_t>(1 + rng() % 40);
          std::uint32_t got = 0;
          for (const auto& r : t.take(m, now, max, end)) got += r.count;
          REQUIRE(got == model.take(m, now, max, end));
          break;
        }
        case 2: {
          const std::uint64_t first = end == 0 ? 0 : rng() % end;
          const std::uint64_t last = first + rng() % 30;
          REQUIRE(t.ack(m, first, last) == model.ack(m, first, last));
          break;
        }
        case 3: {
          const std::uint64_t o = end == 0 ? 0 : rng() % end;
          group_lease_table::released r;
          const bool held = model.leases.count(o) != 0 && model.leases[o].m == m;
          REQUIRE(t.nack(m, o, now + 50, r) == held);
          if (held) {
            if (model.leases[o].deliveries < model.max_deliver) model.waiting[o] = {now + 50, model.leases[o].deliveries};
            model.leases.erase(o);
            if (r.dead) t.dead_lettered(o);
          }
          break;
        }
        case 4: {
          auto ended = t.expire(now);
          REQUIRE(ended.size() == model.end(now, nullptr));
          for (const auto& r : ended) {
            if (r.dead) t.dead_lettered(r.offset);
          }
          break;
        }
        default: {
          auto ended = t.release_member(m);
          REQUIRE(ended.size() == model.end(now, &m));
          for (const auto& r : ended) {
            if (r.dead) t.dead_lettered(r.offset);
          }
          break;
        }
      }
      REQUIRE(t.leased() == model.leases.size());
      REQUIRE(t.waiting() == model.waiting.size());
      REQUIRE(t.committed() == model.committed());
      REQUIRE(t.lease_runs() <= t.leased());
    }
  }
}
