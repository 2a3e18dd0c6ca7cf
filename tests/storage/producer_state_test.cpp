#include "storage/producer_state.h"

#include <doctest/doctest.h>

#include <vector>

#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
#include "tests/support/deferred_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
using mcp::test::make_batch;
using mcp::test::temp_dir;
using verdict = producer_state::verdict;

TEST_CASE("producer_state: an unknown producer may start at any sequence") {
  producer_state s;
  CHECK(s.check(7, 0, 10).what == verdict::append);
  CHECK(s.check(7, 500, 10).what == verdict::append);
  CHECK(s.check(0, 0, 1).what == verdict::append);
}

TEST_CASE("producer_state: the next sequence appends, a gap is out of order") {
  producer_state s;
  s.record(7, 0, 10, 100);
  CHECK(s.check(7, 10, 5).what == verdict::append);
  CHECK(s.check(7, 11, 5).what == verdict::out_of_order);
  CHECK(s.check(8, 11, 5).what == verdict::append);  // other producers are independent
}

TEST_CASE("producer_state: a resent batch is a duplicate with its original offsets") {
  producer_state s;
  s.record(7, 0, 10, 100);
  s.record(9, 0, 4, 110);  // another producer in between: producer 7's next run is separate
  s.record(7, 10, 10, 114);
  auto d = s.check(7, 0, 10);
  CHECK(d.what == verdict::duplicate);
  CHECK(d.first_offset == 100);
  d = s.check(7, 10, 10);
  CHECK(d.what == verdict::duplicate);
  CHECK(d.first_offset == 114);
  d = s.check(7, 12, 3);  // a part of a stored batch
  CHECK(d.what == verdict::duplicate);
  CHECK(d.first_offset == 116);
  // Straddling two runs that are not contiguous in the log: stored, but not at one place.
  CHECK(s.check(7, 8, 4).what == verdict::duplicate_unknown);
}

TEST_CASE("producer_state: back-to-back batches merge, as a log scan would see them") {
  producer_state live, scanned;
  live.record(7, 0, 64, 0);
  live.record(7, 64, 64, 64);
  for (std::uint32_t i = 0; i < 128; ++i) scanned.record(7, i, 1, i);
  for (const auto* s : {&live, &scanned}) {
    const auto d = s->check(7, 64, 64);
    CHECK(d.what == verdict::duplicate);
    CHECK(d.first_offset == 64);
    CHECK(s->check(7, 128, 1).what == verdict::append);
  }
}

TEST_CASE("producer_state: runs older than the window are duplicates of unknown place") {
  producer_state s;
  std::uint64_t offset = 0;
  for (std::uint32_t b = 0; b < producer_state::max_runs + 4; ++b) {
    s.record(7, b * 10, 10, offset);
    offset += 20;  // someone else's 10 records after each batch
  }
  CHECK(s.check(7, 0, 10).what == verdict::duplicate_unknown);
  const std::uint32_t last = (producer_state::max_runs + 3) * 10;
  CHECK(s.check(7, last, 10).what == verdict::duplicate);
}

TEST_CASE("producer_state: the least recently active producer is forgotten first") {
  producer_state s;
  for (std::uint64_t p = 1; p <= producer_state::max_producers; ++p) s.record(p, 0, 1, p);
  s.record(1, 1, 1, 100000);  // producer 1 active again: 2 is now the oldest
  s.record(producer_state::max_producers + 1, 0, 1, 100001);
  CHECK(s.producers() == producer_state::max_producers);
  CHECK(s.check(1, 0, 1).what == verdict::duplicate);
  CHECK(s.check(2, 5, 1).what == verdict::append);  // forgotten: any sequence is new
  CHECK(s.check(3, 0, 1).what == verdict::duplicate);
}

TEST_CASE("partition_log: appends record producers and open() rebuilds them from the log") {
  temp_dir dir;
  sync_file_io io;
  log_options o;
  o.segment_bytes = 8192;  // several segments
  o.index_interval = 512;
  {
    auto log = partition_log::open(dir.path(), o, io, 1000);
    REQUIRE(log);
    for (std::uint32_t b = 0; b < 30; ++b) {
      auto mine = make_batch(4, 100, "a", 0, 0xAB, b * 4);
      REQUIRE((*log)->append(mine.bytes, mine.count, 1000, nullptr));
      auto other = make_batch(2, 100, "o", 0, 0xCD, b * 2);
      REQUIRE((*log)->append(other.bytes, other.count, 1000, nullptr));
    }
    const auto d = (*log)->producers().check(0xAB, 116, 4);
    CHECK(d.what == verdict::duplicate);
    CHECK(d.first_offset == 29 * 6);
    REQUIRE((*log)->segment_count() > 2);
  }
  auto log = partition_log::open(dir.path(), o, io, 2000);
  REQUIRE(log);
  CHECK((*log)->producers().producers() == 2);
  auto d = (*log)->producers().check(0xAB, 116, 4);
  CHECK(d.what == verdict::duplicate);
  CHECK(d.first_offset == 29 * 6);
  d = (*log)->producers().check(0xCD, 58, 2);
  CHECK(d.what == verdict::duplicate);
  CHECK(d.first_offset == 29 * 6 + 4);
  CHECK((*log)->producers().check(0xAB, 120, 4).what == verdict::append);
  CHECK((*log)->producers().check(0xAB, 124, 4).what == verdict::out_of_order);
}

TEST_CASE("partition_log: open() scans only producer_scan_bytes of the tail") {
  temp_dir dir;
  sync_file_io io;
  log_options o;
  o.index_interval = 256;
  {
    auto log = partition_log::open(dir.path(), o, io, 1000);
    REQUIRE(log);
    auto early = make_batch(4, 100, "e", 0, 0x11, 0);
    REQUIRE((*log)->append(early.bytes, early.count, 1000, nullptr));
    for (int i = 0; i < 200; ++i) {
      auto filler = make_batch(4, 1000);
      REQUIRE((*log)->append(filler.bytes, filler.count, 1000, nullptr));
    }
    auto late = make_batch(4, 100, "l", 0, 0x22, 0);
    REQUIRE((*log)->append(late.bytes, late.count, 1000, nullptr));
  }
  o.producer_scan_bytes = 64 << 10;
  auto log = partition_log::open(dir.path(), o, io, 2000);
  REQUIRE(log);
  CHECK((*log)->producer_scan_bytes_read() < (80u << 10));
  CHECK((*log)->producers().check(0x22, 0, 4).what == verdict::duplicate);
  // Beyond the scanned tail: forgotten (the documented bound), so not recognised.
  CHECK((*log)->producers().check(0x11, 0, 4).what == verdict::append);
}

namespace {
struct order final : append_callback {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> seen;
  void append_done(std::uint64_t first, std::uint32_t count, const error* err) noexcept override {
    CHECK(err == nullptr);
    seen.emplace_back(first, count);
  }
};
}  // namespace

TEST_CASE("partition_log: a barrier completes only after every append before it") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  log_options o;
  o.level.level = durability::kind::sync;
  auto log = partition_log::open(dir.path(), o, io, 1000);
  REQUIRE(log);
  order done;
  auto b = make_batch(3);
  REQUIRE((*log)->append(b.bytes, b.count, 1000, &done));
  REQUIRE((*log)->append_barrier(&done));
  CHECK(done.seen.empty());
  io.complete_all();  // the write, then the sync it starts
  io.complete_all();
  REQUIRE(done.seen.size() == 2);
  CHECK(done.seen[0] == std::pair<std::uint64_t, std::uint32_t>{0, 3});
  CHECK(done.seen[1] == std::pair<std::uint64_t, std::uint32_t>{3, 0});
  CHECK((*log)->high_watermark() == 3);
  // With nothing in flight a barrier completes at once.
  REQUIRE((*log)->append_barrier(&done));
  CHECK(done.seen.size() == 3);
  CHECK(io.syncs == 1);
}
