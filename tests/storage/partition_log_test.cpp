#include "storage/partition_log.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "codec/frame_decoder.h"
#include "codec/record.h"
#include "storage/sync_file_io.h"
#include "tests/support/deferred_file_io.h"
#include "tests/support/page_cache.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
using mcp::test::make_batch;
using mcp::test::temp_dir;

namespace {

struct acks final : append_callback {
  struct done {
    std::uint64_t first;
    std::uint32_t count;
    bool ok;
  };
  std::vector<done> seen;
  void append_done(std::uint64_t first, std::uint32_t count, const error* err) noexcept override {
    seen.push_back({first, count, err == nullptr});
  }
};

log_options small_segments(durability::kind k = durability::kind::none) {
  log_options o;
  o.segment_bytes = 8192;
  o.index_interval = 1024;
  o.level.level = k;
  return o;
}

// Reads the slice's bytes and decodes them as records; checks continuity.
std::vector<mcp::codec::record_view> read_slice(const log_slice& s, std::vector<std::byte>& storage) {
  storage.resize(s.bytes);
  REQUIRE(::pread(s.fd, storage.data(), s.bytes, static_cast<off_t>(s.position)) == static_cast<ssize_t>(s.bytes));
  std::vector<mcp::codec::record_view> out;
  std::span<const std::byte> rest = storage;
  while (!rest.empty()) {
    const auto f = mcp::codec::parse_frame(rest, {});
    REQUIRE(f.status == mcp::codec::errc::ok);
    auto r = mcp::codec::decode_record(f.frame.body);
    REQUIRE(r.has_value());
    out.push_back(*r);
    rest = rest.subspan(f.frame.bytes.size());
  }
  return out;
}

// Reads every record from `from` to the high watermark through locate.
std::vector<std::string> read_all(const partition_log& log, std::uint64_t from, std::uint64_t max_bytes = 3000) {
  std::vector<std::string> values;
  std::uint64_t next = from;
  std::vector<std::byte> buf;
  while (next < log.high_watermark()) {
    auto s = log.locate(next, max_bytes);
    REQUIRE(s.has_value());
    REQUIRE(s->bytes > 0);
    REQUIRE(s->first_offset == next);
    const auto recs = read_slice(*s, buf);
    REQUIRE(recs.size() == s->count());
    for (const auto& r : recs) {
      CHECK(r.offset == next);
      ++next;
      values.emplace_back(mcp::test::as_string(r.value));
    }
    CHECK(next == s->last_offset + 1);
  }
  return values;
}

}  // namespace

TEST_CASE("append assigns dense offsets and reads back byte-exact across segment rolls") {
  temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(), io, 1000);
  REQUIRE(log.has_value());
  acks a;
  std::vector<std::string> expected;
  for (int b = 0; b < 30; ++b) {
    auto batch = make_batch(7, 100, "b" + std::to_string(b) + "-");
    const auto first = (*log)->append(batch.bytes, batch.count, 1000, &a);
    REQUIRE(first.has_value());
    CHECK(*first == static_cast<std::uint64_t>(b) * 7);
    for (int i = 0; i < 7; ++i) {
      std::string v = "b" + std::to_string(b) + "-" + std::to_string(i);
      v.resize(100, '.');
      expected.push_back(v);
    }
  }
  CHECK((*log)->segment_count() > 3);
  CHECK((*log)->high_watermark() == 210);
  CHECK((*log)->log_end() == 210);
  REQUIRE(a.seen.size() == 30);
  for (std::size_t i = 0; i < a.seen.size(); ++i) {
    CHECK(a.seen[i].ok);
    CHECK(a.seen[i].first == i * 7);
  }
  CHECK(read_all(**log, 0) == expected);
  // Starting anywhere, with any budget, gives the same records from there.
  for (std::uint64_t from : {1ull, 6ull, 7ull, 50ull, 99ull, 209ull}) {
    for (std::uint64_t budget : {1ull, 156ull, 157ull, 1000ull, 100000ull}) {
      CAPTURE(from);
      CAPTURE(budget);
      const auto got = read_all(**log, from, budget);
      CHECK(got == std::vector<std::string>(expected.begin() + static_cast<std::ptrdiff_t>(from), expected.end()));
    }
  }
}

TEST_CASE("lookups walk record headers across read chunks and over records larger than a chunk") {
  // A sparse index (one entry per 1 MiB) makes every lookup a long walk: many
  // 16 KiB read chunks, with 40 KiB records in between that the walk skips over.
  temp_dir dir;
  sync_file_io io;
  log_options o;
  o.index_interval = 1u << 20;
  o.level.level = durability::kind::none;
  auto log = partition_log::open(dir.path(), o, io, 1);
  REQUIRE(log.has_value());
  std::vector<std::string> expected;
  for (int b = 0; b < 40; ++b) {
    const std::size_t size = b % 5 == 4 ? 40000 : 100;
    auto batch = make_batch(b % 5 == 4 ? 1 : 50, size, "b" + std::to_string(b) + "-");
    REQUIRE((*log)->append(batch.bytes, batch.count, 1, nullptr).has_value());
    for (std::uint32_t i = 0; i < batch.count; ++i) {
      std::string v = "b" + std::to_string(b) + "-" + std::to_string(i);
      v.resize(size, '.');
      expected.push_back(v);
    }
  }
  const std::uint64_t n = (*log)->high_watermark();
  REQUIRE(n == expected.size());
  for (const std::uint64_t from : std::vector<std::uint64_t>{0, 1, 199, 200, 201, 555, n - 1}) {
    for (std::uint64_t budget : {1ull, 5000ull, 40000ull, 70000ull, 1ull << 20}) {
      CAPTURE(from);
      CAPTURE(budget);
      CHECK(read_all(**log, from, budget) ==
            std::vector<std::string>(expected.begin() + static_cast<std::ptrdiff_t>(from), expected.end()));
    }
    for (std::uint32_t max_records : {1u, 7u, 300u}) {
      auto s = (*log)->locate_records(from, max_records);
      REQUIRE(s.has_value());
      std::vector<std::byte> buf;
      const auto recs = read_slice(*s, buf);
      REQUIRE(recs.size() == std::min<std::uint64_t>(max_records, n - from));
      for (std::size_t i = 0; i < recs.size(); ++i) {
        CHECK(mcp::test::as_string(recs[i].value) == expected[from + i]);
      }
    }
  }
}

TEST_CASE("locate: the first record goes whole even over budget; the end gives an empty slice; past it is an error") {
  temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(), io, 1);
  REQUIRE(log.has_value());
  auto big = make_batch(1, 5000);
  REQUIRE((*log)->append(big.bytes, 1, 1, nullptr).has_value());
  auto s = (*log)->locate(0, 10);
  REQUIRE(s.has_value());
  CHECK(s->bytes == big.bytes.size());
  CHECK(s->count() == 1);
  auto end = (*log)->locate(1, 100);
  REQUIRE(end.has_value());
  CHECK(end->bytes == 0);
  CHECK(end->first_offset == 1);
  CHECK((*log)->locate(2, 100).error().code == errc::out_of_range);
}

TEST_CASE("records reopen intact and offsets continue after a clean reopen") {
  temp_dir dir;
  sync_file_io io;
  {
    auto log = partition_log::open(dir.path(), small_segments(), io, 1);
    REQUIRE(log.has_value());
    for (int b = 0; b < 10; ++b) {
      auto batch = make_batch(5);
      REQUIRE((*log)->append(batch.bytes, 5, 1, nullptr).has_value());
    }
  }
  auto log = partition_log::open(dir.path(), small_segments(), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->high_watermark() == 50);
  auto batch = make_batch(5);
  CHECK((*log)->append(batch.bytes, 5, 2, nullptr).value() == 50);
  CHECK(read_all(**log, 0).size() == 55);
}

TEST_CASE("timestamp lookup finds the first record at or after T, across segments") {
  temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(), io, 1);
  REQUIRE(log.has_value());
  // Offsets 0..99 get timestamps 10000, 10010, ... (batches of 10, step 10 within).
  for (int b = 0; b < 10; ++b) {
    auto batch = make_batch(10, 100, "t", 0);
    for (std::uint32_t i = 0; i < 10; ++i) {
      // Rewrite each record's timestamp through a fresh encode: ts = 10000 + 10 * offset.
      (void)i;
    }
    mcp::test::batch custom;
    custom.count = 10;
    for (int i = 0; i < 10; ++i) {
      const std::string v(100, 'x');
      mcp::codec::record_input in;
      in.timestamp_ms = 10000 + 10 * (b * 10 + i);
      in.value = mcp::test::as_bytes(v);
      const std::size_t at = custom.bytes.size();
      custom.bytes.resize(at + mcp::codec::record_frame_size(in));
      mcp::codec::encode_record(std::span(custom.bytes).subspan(at), in);
    }
    REQUIRE((*log)->append(custom.bytes, 10, 5, nullptr).has_value());
  }
  CHECK((*log)->offset_for_timestamp(0).value() == 0);
  CHECK((*log)->offset_for_timestamp(10000).value() == 0);
  CHECK((*log)->offset_for_timestamp(10001).value() == 1);
  CHECK((*log)->offset_for_timestamp(10010).value() == 1);
  CHECK((*log)->offset_for_timestamp(10555).value() == 56);
  CHECK((*log)->offset_for_timestamp(10990).value() == 99);
  CHECK((*log)->offset_for_timestamp(10991).value() == 100);  // nothing yet: the high watermark
  for (std::uint64_t o = 0; o < 100; ++o) {
    CHECK((*log)->offset_for_timestamp(static_cast<std::int64_t>(10000 + 10 * o)).value() == o);
  }
}

TEST_CASE("a producer-less timestamp is stamped with the append time") {
  temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(), io, 1);
  REQUIRE(log.has_value());
  auto batch = make_batch(3);
  REQUIRE((*log)->append(batch.bytes, 3, 123456, nullptr).has_value());
  std::vector<std::byte> buf;
  const auto recs = read_slice((*log)->locate(0, 10000).value(), buf);
  REQUIRE(recs.size() == 3);
  for (const auto& r : recs) CHECK(r.timestamp_ms == 123456);
}

TEST_CASE("none: each append completes when its write does, in offset order even if writes finish out of order") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::none), io, 1);
  REQUIRE(log.has_value());
  acks a;
  auto b1 = make_batch(2), b2 = make_batch(3), b3 = make_batch(1);
  REQUIRE((*log)->append(b1.bytes, 2, 1, &a).has_value());
  REQUIRE((*log)->append(b2.bytes, 3, 1, &a).has_value());
  REQUIRE((*log)->append(b3.bytes, 1, 1, &a).has_value());
  REQUIRE(io.ops.size() == 3);
  io.complete(2);  // third write first: nothing may complete yet
  CHECK(a.seen.empty());
  CHECK((*log)->high_watermark() == 0);
  io.complete(1);  // second
  CHECK(a.seen.empty());
  io.complete(0);  // first: now all three, in order
  REQUIRE(a.seen.size() == 3);
  CHECK(a.seen[0].first == 0);
  CHECK(a.seen[1].first == 2);
  CHECK(a.seen[2].first == 5);
  CHECK((*log)->high_watermark() == 6);
  CHECK(io.syncs == 0);
}

TEST_CASE("sync: appends complete only after an fdatasync, and waiting appends share one (group commit)") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::sync), io, 1);
  REQUIRE(log.has_value());
  acks a;
  std::vector<mcp::test::batch> batches;
  for (int i = 0; i < 5; ++i) batches.push_back(make_batch(2));
  REQUIRE((*log)->append(batches[0].bytes, 2, 1, &a).has_value());
  io.complete(0);  // write 0 done -> sync #1 issued, covering batch 0
  REQUIRE(io.ops.size() == 1);
  CHECK(io.ops[0].is_sync);
  CHECK(a.seen.empty());
  CHECK((*log)->high_watermark() == 0);
  // While sync #1 is in flight, four more batches are written.
  for (int i = 1; i < 5; ++i) REQUIRE((*log)->append(batches[i].bytes, 2, 1, &a).has_value());
  while (io.ops.size() > 1) io.complete(1);  // their writes
  CHECK(a.seen.empty());
  CHECK(io.syncs == 1);
  io.complete(0);  // sync #1 completes: batch 0 only; sync #2 covers the other four
  REQUIRE(a.seen.size() == 1);
  CHECK(io.syncs == 2);
  CHECK((*log)->high_watermark() == 2);
  io.complete_all();
  REQUIRE(a.seen.size() == 5);
  CHECK(io.syncs == 2);  // four appends, one sync
  CHECK((*log)->high_watermark() == 10);
  for (const auto& d : a.seen) CHECK(d.ok);
}

TEST_CASE("sync: a round starts after the completions at hand, so writes done in one batch share it") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  io.hold_defers = true;  // as the broker's ring: a deferred call runs at the end of the batch
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::sync), io, 1);
  REQUIRE(log.has_value());
  acks a;
  std::vector<mcp::test::batch> batches;
  for (int i = 0; i < 3; ++i) batches.push_back(make_batch(2));
  for (int i = 0; i < 3; ++i) REQUIRE((*log)->append(batches[i].bytes, 2, 1, &a).has_value());
  // One batch of completions: the three writes. The first asks for a round, which
  // waits behind the other two instead of starting without them.
  io.complete(0);
  REQUIRE(io.ops.size() == 3);
  CHECK(io.ops[2].is_defer);
  CHECK(io.syncs == 0);
  io.complete(0);
  io.complete(0);
  REQUIRE(io.ops.size() == 1);
  CHECK(!(*log)->idle());  // a round is due
  io.complete(0);          // end of the batch: one round for all three
  REQUIRE(io.ops.size() == 1);
  CHECK(io.ops[0].is_sync);
  CHECK(io.syncs == 1);
  CHECK(a.seen.empty());
  // A write completing while that round is in flight asks for nothing yet; the
  // round's completion asks for the next one, again behind the batch.
  batches.push_back(make_batch(2));
  REQUIRE((*log)->append(batches[3].bytes, 2, 1, &a).has_value());
  io.complete(1);  // its write
  REQUIRE(io.ops.size() == 1);
  io.complete(0);  // the round: the first three are durable
  CHECK(a.seen.size() == 3);
  CHECK((*log)->high_watermark() == 6);
  REQUIRE(io.ops.size() == 1);
  CHECK(io.ops[0].is_defer);
  io.complete_all();
  CHECK(io.syncs == 2);
  REQUIRE(a.seen.size() == 4);
  CHECK((*log)->high_watermark() == 8);
  CHECK((*log)->idle());
  for (const auto& d : a.seen) CHECK(d.ok);
}

TEST_CASE("sync: a log that failed while a round was due starts none") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  io.hold_defers = true;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::sync), io, 1);
  REQUIRE(log.has_value());
  acks a;
  auto b0 = make_batch(2);
  auto b1 = make_batch(2);
  REQUIRE((*log)->append(b0.bytes, 2, 1, &a).has_value());
  io.fail_operation(1, EIO);  // the next operation, the second write, fails
  REQUIRE((*log)->append(b1.bytes, 2, 1, &a).has_value());
  io.complete(0);  // first write: a round is due
  REQUIRE(io.ops.size() == 2);
  io.complete(0);  // second write fails: the log fails
  CHECK((*log)->failed());
  io.complete_all();  // the deferred call: no round
  CHECK(io.syncs == 0);
  REQUIRE(a.seen.size() == 2);
  CHECK(!a.seen[0].ok);
  CHECK(!a.seen[1].ok);
  CHECK((*log)->idle());
}

TEST_CASE("interval: appends complete at write; tick syncs once the interval has passed") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  log_options o = small_segments(durability::kind::interval);
  o.level.interval_ms = 50;
  auto log = partition_log::open(dir.path(), o, io, 1000);
  REQUIRE(log.has_value());
  acks a;
  auto b = make_batch(4);
  REQUIRE((*log)->append(b.bytes, 4, 1000, &a).has_value());
  io.complete_all();
  CHECK(a.seen.size() == 1);
  CHECK(io.syncs == 0);
  (*log)->tick(1020);
  CHECK(io.syncs == 0);
  (*log)->tick(1050);
  CHECK(io.syncs == 1);
  io.complete_all();
  (*log)->tick(1200);  // nothing unsynced: no sync
  CHECK(io.syncs == 1);
}

TEST_CASE("a failed write fails that append and every later one; nothing after it is acknowledged") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::none), io, 1);
  REQUIRE(log.has_value());
  acks a;
  auto b1 = make_batch(1), b2 = make_batch(1), b3 = make_batch(1);
  REQUIRE((*log)->append(b1.bytes, 1, 1, &a).has_value());
  io.fail_operation(1, EIO);
  REQUIRE((*log)->append(b2.bytes, 1, 1, &a).has_value());
  REQUIRE((*log)->append(b3.bytes, 1, 1, &a).has_value());
  io.complete_all();
  REQUIRE(a.seen.size() == 3);
  CHECK(a.seen[0].ok);
  CHECK_FALSE(a.seen[1].ok);
  CHECK_FALSE(a.seen[2].ok);
  CHECK((*log)->failed());
  CHECK((*log)->high_watermark() == 1);
  auto b4 = make_batch(1);
  const auto r = (*log)->append(b4.bytes, 1, 1, &a);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::failed);
  CHECK(r.error().message.find("Input/output error") != std::string::npos);
}

TEST_CASE("a failed fdatasync acknowledges nothing it was to cover") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::sync), io, 1);
  REQUIRE(log.has_value());
  acks a;
  auto b1 = make_batch(2);
  REQUIRE((*log)->append(b1.bytes, 2, 1, &a).has_value());
  io.fail_operation(1, EIO);  // the next operation is the sync the write triggers
  io.complete_all();
  REQUIRE(a.seen.size() == 1);
  CHECK_FALSE(a.seen[0].ok);
  CHECK((*log)->high_watermark() == 0);
}

TEST_CASE("segments roll by age too") {
  temp_dir dir;
  sync_file_io io;
  log_options o = small_segments();
  o.segment_bytes = 1 << 20;
  o.segment_ms = 100;
  auto log = partition_log::open(dir.path(), o, io, 0);
  REQUIRE(log.has_value());
  auto b = make_batch(1);
  REQUIRE((*log)->append(b.bytes, 1, 0, nullptr).has_value());
  auto c = make_batch(1);
  REQUIRE((*log)->append(c.bytes, 1, 50, nullptr).has_value());
  CHECK((*log)->segment_count() == 1);
  auto d = make_batch(1);
  REQUIRE((*log)->append(d.bytes, 1, 150, nullptr).has_value());
  CHECK((*log)->segment_count() == 2);
  CHECK((*log)->segment_at(1).base() == 2);
}

TEST_CASE("none and interval start writeback of each writeback_bytes of a segment as it is written; sync does not") {
  for (const auto level : {durability::kind::none, durability::kind::interval, durability::kind::sync}) {
    CAPTURE(static_cast<int>(level));
    temp_dir dir;
    mcp::test::deferred_file_io io;
    log_options o = small_segments(level);
    o.segment_bytes = 64 << 10;
    o.writeback_bytes = 8 << 10;
    o.level.interval_ms = 1'000'000;
    auto log = partition_log::open(dir.path(), o, io, 1);
    REQUIRE(log.has_value());
    std::vector<mcp::test::batch> batches;
    for (int i = 0; i < 60; ++i) batches.push_back(make_batch(10));  // ~2.6 KB each: ~25 per segment
    std::vector<std::uint64_t> ends;  // file position after each batch, per segment
    std::size_t held_writebacks = 0;
    for (auto& b : batches) {
      REQUIRE((*log)->append(b.bytes, b.count, 1, nullptr).has_value());
      // Complete the writes (and any sync), but hold the writebacks.
      for (std::size_t i = 0; i < io.ops.size();) {
        if (io.ops[i].is_writeback) {
          ++i;
          continue;
        }
        io.complete(i);
        i = 0;
      }
      held_writebacks = io.ops.size();
    }
    CHECK(held_writebacks == io.writebacks.size());
    if (level == durability::kind::sync) {
      CHECK(io.writebacks.empty());
      CHECK((*log)->idle());
      continue;
    }
    REQUIRE((*log)->segment_count() >= 2);
    REQUIRE(io.writebacks.size() >= 10);
    // Held writebacks keep the log busy.
    CHECK_FALSE((*log)->idle());
    // Within a segment they are back to back from position 0, each at least
    // writeback_bytes and ending at a page boundary; a new segment starts at 0.
    std::uint64_t expect_pos = 0;
    std::size_t segments_seen = 1;
    for (const auto& [pos, len] : io.writebacks) {
      if (pos == 0 && expect_pos != 0) {
        ++segments_seen;
        expect_pos = 0;
      }
      CHECK(pos == expect_pos);
      CHECK(len >= o.writeback_bytes);
      CHECK(len < o.writeback_bytes + batches[0].bytes.size() + 4096);
      CHECK((pos + len) % 4096 == 0);
      expect_pos = pos + len;
    }
    CHECK(segments_seen == (*log)->segment_count());
    io.complete_all();
    CHECK((*log)->idle());
    CHECK((*log)->high_watermark() == 600);
  }
}

TEST_CASE("nowait reads: a locate over bytes not in the page cache is would_block naming the range; after reading it, the same slice") {
  temp_dir dir;
  sync_file_io io;
  log_options o;  // one 256 MiB segment: index entries every 4 KiB
  o.level.level = durability::kind::none;
  auto log = partition_log::open(dir.path(), o, io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < 200; ++i) {
    auto b = make_batch(16);
    REQUIRE((*log)->append(b.bytes, 16, 1, nullptr).has_value());
  }
  // Everything is in the page cache: nowait and blocking agree.
  const auto warm = (*log)->locate(1000, 64 << 10, read_mode::nowait);
  REQUIRE(warm.has_value());
  const auto blocking = (*log)->locate(1000, 64 << 10);
  REQUIRE(blocking.has_value());
  CHECK(warm->position == blocking->position);
  CHECK(warm->bytes == blocking->bytes);
  CHECK(warm->last_offset == blocking->last_offset);
  const int fd = blocking->fd;
  if (!mcp::test::evict_file(fd)) {
    MESSAGE("this file system keeps the pages (tmpfs?): the would_block half is not exercised");
    return;
  }
  // Readahead started by earlier reads (a nowait miss starts one too; read_ahead_kb
  // can be MiBs) may refill the cache after an eviction: evict and try again.
  // A loaded machine (a CI run) can keep readahead going for a while: up to ~3 s of tries.
  const auto when_cold = [&](auto read) {
    auto r = read();
    for (int tries = 0; tries < 60 && r; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(tries < 20 ? 20 : 100));
      REQUIRE(mcp::test::evict_file(fd));
      r = read();
    }
    return r;
  };
  // Cold: nothing waits for the disk; the error names what to read first.
  auto cold = when_cold([&] { return (*log)->locate(1000, 64 << 10, read_mode::nowait); });
  REQUIRE_FALSE(cold.has_value());
  CHECK(cold.error().code == errc::would_block);
  CHECK(cold.error().fd == fd);
  CHECK(cold.error().length > 0);
  CHECK(cold.error().position + cold.error().length <= (*log)->size_bytes());
  // The walk runs from an index entry at or before the start to the slice's end, and
  // names the first range it misses there: the start's own page, or a later one when
  // readahead has refilled part of the file since the eviction.
  CHECK(cold.error().position < blocking->position + blocking->bytes);
  for (int rounds = 0; rounds < 4 && !cold; ++rounds) {
    // What a shard does through its ring: read the range, then try again.
    std::vector<std::byte> scratch(cold.error().length);
    REQUIRE(::pread(fd, scratch.data(), scratch.size(), static_cast<off_t>(cold.error().position)) ==
            static_cast<ssize_t>(scratch.size()));
    cold = (*log)->locate(1000, 64 << 10, read_mode::nowait);
    if (!cold) CHECK(cold.error().code == errc::would_block);
  }
  REQUIRE(cold.has_value());
  CHECK(cold->position == blocking->position);
  CHECK(cold->bytes == blocking->bytes);
  CHECK(cold->last_offset == blocking->last_offset);
  // locate_records and offset_for_timestamp go the same way.
  REQUIRE(mcp::test::evict_file(fd));
  const auto ts = when_cold([&] { return (*log)->offset_for_timestamp(1, read_mode::nowait); });
  REQUIRE_FALSE(ts.has_value());
  CHECK(ts.error().code == errc::would_block);
  CHECK((*log)->offset_for_timestamp(1).value() == 0);
  REQUIRE(mcp::test::evict_file(fd));
  const auto recs = when_cold([&] { return (*log)->locate_records(2000, 100, read_mode::nowait); });
  REQUIRE_FALSE(recs.has_value());
  CHECK(recs.error().code == errc::would_block);
  CHECK((*log)->locate_records(2000, 100).has_value());  // blocking still reads
  // read_record too: cold is would_block; once its range is read, the same bytes as blocking.
  const auto want = (*log)->read_record(2500);
  REQUIRE(want.has_value());
  // Readahead started by the reads above (a nowait miss starts one too) can bring
  // the pages back after an eviction: evict again until the miss is seen.
  REQUIRE(mcp::test::evict_file(fd));
  auto rec = when_cold([&] { return (*log)->read_record(2500, read_mode::nowait); });
  REQUIRE_FALSE(rec.has_value());
  CHECK(rec.error().code == errc::would_block);
  CHECK(rec.error().fd == fd);
  for (int rounds = 0; rounds < 4 && !rec; ++rounds) {
    std::vector<std::byte> scratch(rec.error().length);
    REQUIRE(::pread(fd, scratch.data(), scratch.size(), static_cast<off_t>(rec.error().position)) ==
            static_cast<ssize_t>(scratch.size()));
    rec = (*log)->read_record(2500, read_mode::nowait);
  }
  REQUIRE(rec.has_value());
  CHECK(*rec == *want);
  CHECK(mcp::codec::record_offset(*rec) == 2500);
}

namespace {

bool is_directory_fd(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

TEST_CASE("sync: the first appends to a new segment are acked only once the directory holding its name is synced") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::sync), io, 1);
  REQUIRE(log.has_value());
  acks a;
  std::vector<mcp::test::batch> batches;
  // Fill the first segment, every operation completing, until an append rolls.
  while ((*log)->segment_count() < 2) {
    batches.push_back(make_batch(4));
    REQUIRE((*log)->append(batches.back().bytes, 4, 1, &a).has_value());
    if ((*log)->segment_count() < 2) {
      while (!io.ops.empty()) io.complete_all();
    }
  }
  const std::size_t acked_before = a.seen.size();
  REQUIRE(acked_before == batches.size() - 1);
  // Complete everything except a sync of the directory; the new segment's batch must wait for it.
  bool saw_dir_sync = false;
  for (int round = 0; round < 20; ++round) {
    for (std::size_t i = 0; i < io.ops.size();) {
      if (io.ops[i].is_sync && is_directory_fd(io.ops[i].fd)) {
        saw_dir_sync = true;
        ++i;
      } else {
        io.complete(i);
      }
    }
  }
  REQUIRE(saw_dir_sync);
  CHECK(a.seen.size() == acked_before);
  CHECK((*log)->high_watermark() == 4 * acked_before);
  while (!io.ops.empty()) io.complete_all();
  REQUIRE(a.seen.size() == batches.size());
  CHECK(a.seen.back().ok);
  CHECK(a.seen.back().first == 4 * acked_before);
}

TEST_CASE("none: a roll does not sync the directory (nothing waits for durability)") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::none), io, 1);
  REQUIRE(log.has_value());
  std::vector<mcp::test::batch> batches;
  bool dir_sync = false;
  while ((*log)->segment_count() < 3) {
    batches.push_back(make_batch(4));
    REQUIRE((*log)->append(batches.back().bytes, 4, 1, nullptr).has_value());
    for (const auto& op : io.ops) dir_sync = dir_sync || (op.is_sync && is_directory_fd(op.fd));
    while (!io.ops.empty()) io.complete_all();
  }
  CHECK_FALSE(dir_sync);
}

namespace {

bool sync_held_on(const mcp::test::deferred_file_io& io, int fd) {
  for (const auto& op : io.ops) {
    if (op.is_sync && op.fd == fd) return true;
  }
  return false;
}

// Appends 4-record batches, completing every operation but syncs of the first
// segment, until the log has rolled once. Returns the first segment's descriptor.
int fill_until_roll_holding_its_seal(partition_log& log, mcp::test::deferred_file_io& io,
                                     std::vector<mcp::test::batch>& batches) {
  while (log.segment_count() < 2) {
    batches.push_back(make_batch(4));
    REQUIRE(log.append(batches.back().bytes, 4, 1, nullptr).has_value());
    const int old_fd = log.segment_at(0).log_fd();
    for (std::size_t i = 0; i < io.ops.size();) {
      if (io.ops[i].is_sync && io.ops[i].fd == old_fd) {
        ++i;
      } else {
        io.complete(i);
      }
    }
  }
  return log.segment_at(0).log_fd();
}

}  // namespace

TEST_CASE("none and interval: a roll's sealing fdatasync is issued only after the sealed segment's writes complete") {
  for (const auto level : {durability::kind::none, durability::kind::interval}) {
    CAPTURE(static_cast<int>(level));
    temp_dir dir;
    mcp::test::deferred_file_io io;
    auto log = partition_log::open(dir.path(), small_segments(level), io, 1);
    REQUIRE(log.has_value());
    // Nothing completes: the writes to the first segment are all in flight when it rolls.
    std::vector<mcp::test::batch> batches;
    while ((*log)->segment_count() < 2) {
      batches.push_back(make_batch(4));
      REQUIRE((*log)->append(batches.back().bytes, 4, 1, nullptr).has_value());
    }
    const int old_fd = (*log)->segment_at(0).log_fd();
    // A sync issued now might not cover them (io_uring orders nothing between SQEs).
    CHECK_FALSE(sync_held_on(io, old_fd));
    // Complete the first segment's writes one by one, oldest first; the seal
    // comes after the last of them and not before.
    std::size_t writes_left = 0;
    for (const auto& op : io.ops) writes_left += (!op.is_sync && !op.is_remove && !op.is_writeback && op.fd == old_fd);
    REQUIRE(writes_left > 1);
    while (writes_left > 0) {
      CHECK_FALSE(sync_held_on(io, old_fd));
      std::size_t i = 0;
      while (io.ops[i].is_sync || io.ops[i].is_writeback || io.ops[i].fd != old_fd) ++i;
      io.complete(i);
      --writes_left;
    }
    CHECK(sync_held_on(io, old_fd));
    CHECK_FALSE((*log)->idle());
    io.complete_all();
    CHECK((*log)->idle());
    CHECK_FALSE((*log)->failed());
  }
}

TEST_CASE("none: a failed sealing fdatasync fails the log; later appends are refused with the reason") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = partition_log::open(dir.path(), small_segments(durability::kind::none), io, 1);
  REQUIRE(log.has_value());
  std::vector<mcp::test::batch> batches;
  const int old_fd = fill_until_roll_holding_its_seal(**log, io, batches);
  REQUIRE(sync_held_on(io, old_fd));
  CHECK_FALSE((*log)->failed());
  for (auto& op : io.ops) {
    if (op.is_sync && op.fd == old_fd) op.result = -EIO;
  }
  io.complete_all();
  CHECK((*log)->failed());
  CHECK((*log)->failure().find("sealing") != std::string::npos);
  auto more = make_batch(1);
  auto r = (*log)->append(more.bytes, 1, 1, nullptr);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::failed);
  CHECK((*log)->idle());
}

TEST_CASE("retention does not remove a sealed segment whose sealing fdatasync is in flight") {
  temp_dir dir;
  mcp::test::deferred_file_io io;
  log_options o = small_segments(durability::kind::none);
  o.retention_bytes = 0;
  auto log = partition_log::open(dir.path(), o, io, 1);
  REQUIRE(log.has_value());
  std::vector<mcp::test::batch> batches;
  const int old_fd = fill_until_roll_holding_its_seal(**log, io, batches);
  REQUIRE(sync_held_on(io, old_fd));
  auto held = (*log)->apply_retention(2);
  REQUIRE(held.has_value());
  CHECK(*held == 0);
  CHECK((*log)->segment_count() == 2);
  io.complete_all();
  auto removed = (*log)->apply_retention(3);
  REQUIRE(removed.has_value());
  CHECK(*removed == 1);
  CHECK((*log)->segment_count() == 1);
  io.complete_all();
  CHECK((*log)->idle());
}
