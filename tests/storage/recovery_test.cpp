// Crash cases of docs/storage.md "Recovery": each recovers to exactly the end of
// the last complete batch (a batch is stored whole or not at all; records stored
// one per append are batches of one), or is reported with the segment and position.

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "storage/partition_log.h"
#include "storage/recovery_point.h"
#include "storage/sync_file_io.h"
#include "tests/support/deferred_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;
using mcp::test::make_batch;
using mcp::test::temp_dir;

namespace {

log_options opts(std::uint64_t segment_bytes = 1 << 20) {
  log_options o;
  o.segment_bytes = segment_bytes;
  o.index_interval = 512;
  o.level.level = durability::kind::none;
  return o;
}

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

void write_file(const fs::path& p, std::span<const std::byte> bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Writes `batches` batches of `per_batch` records (100-byte values), then one of
// `last_batch` records if not 0, and closes the log. Returns the byte size of the
// last segment and where its last batch and its last record start.
struct built {
  std::uint64_t size = 0;
  std::uint64_t last_batch_pos = 0;
  std::uint64_t last_record_pos = 0;
  std::uint64_t records = 0;
  std::uint32_t last_batch_records = 0;
};

built build(const fs::path& dir, int batches, std::uint64_t segment_bytes = 1 << 20, std::uint32_t per_batch = 5,
            std::uint32_t last_batch = 0) {
  sync_file_io io;
  auto log = partition_log::open(dir, opts(segment_bytes), io, 1);
  REQUIRE(log.has_value());
  built b;
  for (int i = 0; i < batches; ++i) {
    auto batch = make_batch(per_batch);
    REQUIRE((*log)->append(batch.bytes, per_batch, 1, nullptr).has_value());
  }
  b.last_batch_records = per_batch;
  if (last_batch != 0) {
    auto batch = make_batch(last_batch);
    REQUIRE((*log)->append(batch.bytes, last_batch, 1, nullptr).has_value());
    b.last_batch_records = last_batch;
  }
  (*log)->write_indexes();  // as a clean shutdown does
  b.records = (*log)->high_watermark();
  b.size = (*log)->segment_at((*log)->segment_count() - 1).size();
  b.last_batch_pos = (*log)->locate(b.records - b.last_batch_records, 1).value().position;
  b.last_record_pos = (*log)->locate(b.records - 1, 1).value().position;
  return b;
}

std::size_t logs_in(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".log" ? 1 : 0;
  return n;
}

fs::path seg_file(const fs::path& dir, std::uint64_t base, const char* suffix) {
  return dir / (segment_stem(base) + suffix);
}

// Opens the log and checks it holds exactly `records` intact records.
void expect_records(const fs::path& dir, std::uint64_t records) {
  sync_file_io io;
  auto log = partition_log::open(dir, opts(), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->high_watermark() == records);
  CHECK((*log)->verify().has_value());
  // And the log goes on from there.
  auto batch = make_batch(1);
  CHECK((*log)->append(batch.bytes, 1, 2, nullptr).value() == records);
}

}  // namespace

// Cuts the segment at every byte from `from` to its end (indexes restored each
// time) and expects `records` after reopening.
void cut_everywhere(const fs::path& dir, std::uint64_t from, std::uint64_t records) {
  const auto log_path = seg_file(dir, 0, ".log");
  const auto original = read_file(log_path);
  const auto idx = read_file(seg_file(dir, 0, ".idx"));
  const auto tix = read_file(seg_file(dir, 0, ".tix"));
  for (std::uint64_t cut = from; cut < original.size(); ++cut) {
    CAPTURE(cut);
    write_file(log_path, std::span(original).first(cut));
    write_file(seg_file(dir, 0, ".idx"), idx);
    write_file(seg_file(dir, 0, ".tix"), tix);
    expect_records(dir, records);
  }
}

TEST_CASE("a tail cut at every byte position of the last batch recovers to the batch before it") {
  temp_dir dir;
  const built b = build(dir.path(), 10);
  REQUIRE(b.last_batch_records == 5);
  // Cuts at the record boundaries inside the batch leave whole records, of a
  // batch whose end is missing: they go too (the batch was never acknowledged).
  cut_everywhere(dir.path(), b.last_batch_pos, b.records - 5);
}

TEST_CASE("records appended one at a time (batches of one) recover to the last complete record") {
  // Also what a log written before batches were marked looks like: no record
  // carries the batch-continues attribute.
  temp_dir dir;
  const built b = build(dir.path(), 40, 1 << 20, 1);
  cut_everywhere(dir.path(), b.last_record_pos, b.records - 1);
}

TEST_CASE("a batch cut short that spans index entries goes whole, and so do the entries inside it") {
  // 40 records of ~150 bytes: entries every 512 bytes fall inside the batch, so
  // the scan from the last entry meets no batch end and must start further back.
  temp_dir dir;
  const built b = build(dir.path(), 10, 1 << 20, 5, 40);
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(), io, 1);
    REQUIRE(log.has_value());
    REQUIRE((*log)->segment_at(0).index().size() > 0);
    REQUIRE((*log)->segment_at(0).index().entries().back().pos > b.last_batch_pos + 2048);
  }
  for (const std::uint64_t keep : {1u, 17u, 39u}) {  // whole records of the big batch left
    CAPTURE(keep);
    temp_dir copy;
    fs::copy(dir.path(), copy.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    std::uint64_t cut = 0;
    {
      sync_file_io io;
      auto log = partition_log::open(copy.path(), opts(), io, 1);
      cut = (*log)->locate(b.records - b.last_batch_records + keep, 1).value().position;
    }
    const auto log_path = seg_file(copy.path(), 0, ".log");
    const auto bytes = read_file(log_path);
    for (const std::uint64_t at : {cut, cut + 7}) {
      write_file(log_path, std::span(bytes).first(at));
      sync_file_io io;
      auto log = partition_log::open(copy.path(), opts(), io, 2);
      REQUIRE(log.has_value());
      CHECK((*log)->high_watermark() == b.records - b.last_batch_records);
      CHECK((*log)->segment_at(0).size() == b.last_batch_pos);
      for (const auto& e : (*log)->segment_at(0).index().entries()) CHECK(e.pos < b.last_batch_pos);
      CHECK((*log)->verify().has_value());
    }
  }
}

TEST_CASE("a zeroed tail (preallocated or lost pages) is cut off") {
  temp_dir dir;
  const built b = build(dir.path(), 10);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(log_path);
  bytes.resize(bytes.size() + 8192);
  write_file(log_path, bytes);
  expect_records(dir.path(), b.records);
}

TEST_CASE("a bit flip in the last record drops its batch") {
  temp_dir dir;
  const built b = build(dir.path(), 10);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  const auto original = read_file(log_path);
  for (std::uint64_t at : {b.last_record_pos + 20, b.last_record_pos + 100, b.size - 1}) {
    CAPTURE(at);
    auto bytes = original;
    bytes[at] ^= std::byte{0x04};
    write_file(log_path, bytes);
    expect_records(dir.path(), b.records - 5);
  }
}

TEST_CASE("a missing index is rebuilt from the log") {
  temp_dir dir;
  const built b = build(dir.path(), 40);
  const auto idx_path = seg_file(dir.path(), 0, ".idx");
  const auto before = read_file(idx_path);
  REQUIRE(before.size() > 0);
  fs::remove(idx_path);
  fs::remove(seg_file(dir.path(), 0, ".tix"));
  expect_records(dir.path(), b.records);  // appends one more record after reopening
  const auto rebuilt = read_file(idx_path);
  REQUIRE(rebuilt.size() >= before.size());
  CHECK(std::equal(before.begin(), before.end(), rebuilt.begin()));
}

TEST_CASE("a stale index (entries past the end, or garbage) is cut back and rebuilt") {
  temp_dir dir;
  const built b = build(dir.path(), 40);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  const auto idx_path = seg_file(dir.path(), 0, ".idx");
  SUBCASE("log truncated below indexed positions") {
    // Keep the first 100 records' bytes: the index still names later ones.
    sync_file_io io;
    std::uint64_t cut = 0;
    {
      auto log = partition_log::open(dir.path(), opts(), io, 1);
      REQUIRE(log.has_value());
      cut = (*log)->locate(100, 1).value().position;
    }
    auto bytes = read_file(log_path);
    write_file(log_path, std::span(bytes).first(cut));
    expect_records(dir.path(), 100);
  }
  SUBCASE("index entries pointing inside records") {
    auto idx = read_file(idx_path);
    REQUIRE(idx.size() >= 16);
    idx[idx.size() - 4] ^= std::byte{0x01};  // last entry's position off by one
    write_file(idx_path, idx);
    expect_records(dir.path(), b.records);
  }
}

TEST_CASE("opening scans only from the last index entry, not the whole active segment") {
  temp_dir dir;
  build(dir.path(), 400);  // ~300 KiB
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(), io, 2);
  REQUIRE(log.has_value());
  const auto& s = (*log)->segment_at(0);
  CHECK(s.size() > 200'000);
  CHECK(s.recovery_bytes_scanned() <= 512 + 5 * 160);
}

TEST_CASE("index entries are written in batches; a log closed without writing the last ones recovers them") {
  temp_dir dir;
  std::size_t in_memory = 0;
  std::uint64_t records = 0;
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(), io, 1);
    REQUIRE(log.has_value());
    for (int i = 0; i < 400; ++i) {
      auto batch = make_batch(5);
      REQUIRE((*log)->append(batch.bytes, 5, 1, nullptr).has_value());
    }
    records = (*log)->high_watermark();
    const auto& s = (*log)->segment_at(0);
    in_memory = s.index().size();
    REQUIRE(in_memory > 2 * partition_log::index_batch_entries);
    // Fewer than a batch are still to be written, and they are not on disk.
    const auto written = s.index_entries_written();
    CHECK(in_memory - written.offsets < partition_log::index_batch_entries);
    CHECK(written.offsets > 0);
    CHECK(fs::file_size(seg_file(dir.path(), 0, ".idx")) == written.offsets * offset_entry_size);
    CHECK(fs::file_size(seg_file(dir.path(), 0, ".tix")) == written.times * time_entry_size);
  }  // closed without write_indexes(): a crash, as far as the indexes go
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->high_watermark() == records);
  const auto& s = (*log)->segment_at(0);
  // Recovery scanned from the last entry on disk and put the missing ones back.
  CHECK(s.index().size() == in_memory);
  CHECK(s.recovery_bytes_scanned() <= (partition_log::index_batch_entries + 1) * 512 + 5 * 160);
  CHECK(fs::file_size(seg_file(dir.path(), 0, ".idx")) == in_memory * offset_entry_size);
  for (std::uint64_t o = 0; o < records; o += 97) {
    auto at = (*log)->locate(o, 1);
    REQUIRE(at.has_value());
    CHECK(at->first_offset == o);
  }
}

TEST_CASE("a roll writes the sealed segment's last index entries") {
  temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(64 << 10), io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < 200; ++i) {
    auto batch = make_batch(5);
    REQUIRE((*log)->append(batch.bytes, 5, 1, nullptr).has_value());
  }
  REQUIRE((*log)->segment_count() >= 3);
  for (std::size_t i = 0; i + 1 < (*log)->segment_count(); ++i) {
    const auto& s = (*log)->segment_at(i);
    CAPTURE(i);
    CHECK_FALSE(s.index_entries_unwritten());
    CHECK(fs::file_size(seg_file(dir.path(), s.base(), ".idx")) == s.index().size() * offset_entry_size);
  }
}

TEST_CASE("a bit flip inside a sealed segment is reported with the segment and byte position") {
  temp_dir dir;
  build(dir.path(), 40, 4096);  // several sealed segments
  const auto first_log = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(first_log);
  bytes[1000] ^= std::byte{0x10};
  write_file(first_log, bytes);
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(4096), io, 2);
  REQUIRE(log.has_value());  // opening reads sealed segments' tails only
  const auto v = (*log)->verify();
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().code == errc::corrupt);
  CHECK(v.error().message.find(first_log.string()) != std::string::npos);
  CHECK(v.error().message.find("at byte") != std::string::npos);
}

// A sealed segment a crash cut short: the process died during a roll, with
// writes to the old segment still in flight while the new one was written. Acks
// go in log order, so nothing after its last whole batch was acknowledged.
TEST_CASE("a sealed segment a crash cut short ends the log there; the later segments go") {
  temp_dir dir;
  build(dir.path(), 40, 4096);  // 5-record batches, several segments
  std::uint64_t seg0_end = 0, last_batch = 0, last_record = 0, segments = 0;
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(4096), io, 1);
    REQUIRE(log.has_value());
    segments = (*log)->segment_count();
    REQUIRE(segments >= 3);
    seg0_end = (*log)->segment_at(1).base();
    last_batch = (*log)->locate(seg0_end - 5, 1).value().position;
    last_record = (*log)->locate(seg0_end - 1, 1).value().position;
  }
  const auto first_log = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(first_log);
  std::uint64_t expect_end = seg0_end - 5;  // the last batch of segment 0 goes
  SUBCASE("inside its last record") { bytes.resize(bytes.size() - 7); }
  SUBCASE("at a record boundary inside its last batch") { bytes.resize(last_record); }
  SUBCASE("zeros where its last batch was") { std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(last_batch), bytes.end(), std::byte{0}); }
  SUBCASE("at a batch boundary: whole, but short of the next segment") {
    bytes.resize(last_batch);
  }
  write_file(first_log, bytes);

  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(4096), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->segment_count() == 1);
  CHECK((*log)->high_watermark() == expect_end);
  CHECK(fs::file_size(first_log) == last_batch);
  CHECK_FALSE(fs::exists(seg_file(dir.path(), seg0_end, ".log")));
  CHECK_FALSE(fs::exists(seg_file(dir.path(), seg0_end, ".idx")));
  REQUIRE((*log)->recovery_notes().size() == 1);
  CHECK((*log)->recovery_notes()[0].find(first_log.string()) != std::string::npos);
  CHECK((*log)->recovery_notes()[0].find(std::to_string(segments - 1) + " later segment(s)") != std::string::npos);
  CHECK((*log)->verify().has_value());
  auto batch = make_batch(1);
  CHECK((*log)->append(batch.bytes, 1, 2, nullptr).value() == expect_end);
}

TEST_CASE("a bad record with data after it in a sealed segment still fails the open, with the segment named") {
  temp_dir dir;
  build(dir.path(), 40, 4096);
  const auto first_log = seg_file(dir.path(), 0, ".log");
  const auto logs_before = logs_in(dir.path());
  REQUIRE(logs_before >= 3);
  // Without its index the whole segment is scanned at open, so the damage is met there.
  fs::remove(seg_file(dir.path(), 0, ".idx"));
  fs::remove(seg_file(dir.path(), 0, ".tix"));
  auto bytes = read_file(first_log);
  bytes[bytes.size() / 2] ^= std::byte{0x10};
  write_file(first_log, bytes);
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(4096), io, 2);
  REQUIRE_FALSE(log.has_value());
  CHECK(log.error().code == errc::corrupt);
  CHECK(log.error().message.find(first_log.string()) != std::string::npos);
  // Nothing was removed or cut on the strength of damage.
  CHECK(logs_in(dir.path()) == logs_before);
  CHECK(fs::file_size(first_log) == bytes.size());
}

// After a machine crash (storage/run_marker.h) the disk may hold a file's later
// pages without an earlier one: a lost page, zeros, with records after it. Only
// unsynced data can be lost that way, and synced data is a prefix of the log, so
// the log ends where the lost page begins.
namespace {

// The first offset of the batch (of 5) holding the record that `pos` falls in or
// before: where a log damaged at `pos` must end.
std::uint64_t batch_start_at(partition_log& log, std::uint64_t seg_base, std::uint64_t seg_end, std::uint64_t pos) {
  for (std::uint64_t o = seg_base; o < seg_end; ++o) {
    const auto sl = log.locate(o, 1).value();
    if (sl.position + sl.bytes > pos) return o - o % 5;
  }
  FAIL("no record at byte ", pos);
  return 0;
}

log_options after_crash(std::uint64_t segment_bytes) {
  log_options o = opts(segment_bytes);
  o.after_machine_crash = true;
  return o;
}

void zero_page(const fs::path& file, std::uint64_t page) {
  auto bytes = read_file(file);
  REQUIRE(bytes.size() > (page + 1) * 4096);
  std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(page * 4096), 4096, std::byte{0});
  write_file(file, bytes);
}

}  // namespace

TEST_CASE("after a machine crash, a lost page in the middle of the active segment ends the log there") {
  temp_dir dir;
  const auto b = build(dir.path(), 200);  // one segment, ~130 KB, index entries every 512 bytes
  std::uint64_t expect_end = 0;
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(), io, 1);
    REQUIRE(log.has_value());
    expect_end = batch_start_at(**log, 0, b.records, 8 * 4096);
  }
  REQUIRE(expect_end > 0);
  REQUIRE(expect_end < b.records - 50);
  zero_page(seg_file(dir.path(), 0, ".log"), 8);
  {
    // Without the flag the open trusts the index and checks the tail only: the
    // lost page goes unseen (verify() finds it).
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(), io, 2);
    REQUIRE(log.has_value());
    CHECK((*log)->high_watermark() == b.records);
    CHECK_FALSE((*log)->verify().has_value());
  }
  sync_file_io io;
  auto log = partition_log::open(dir.path(), after_crash(1 << 20), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->high_watermark() == expect_end);
  CHECK((*log)->verify().has_value());
  REQUIRE((*log)->recovery_notes().size() == 1);
  CHECK((*log)->recovery_notes()[0].find("cut at byte") != std::string::npos);
  auto batch = make_batch(1);
  CHECK((*log)->append(batch.bytes, 1, 2, nullptr).value() == expect_end);
}

namespace {

// Completes every held operation but the fdatasyncs of the segment files `held`
// names, over and over (completions issue more), as a disk that is slow to sync
// those files would.
template <class Held>
void release_all_but(mcp::test::deferred_file_io& io, Held&& held) {
  for (bool more = true; more;) {
    more = false;
    for (std::size_t i = 0; i < io.ops.size(); ++i) {
      if (io.ops[i].is_sync && held(io.ops[i].fd)) continue;
      io.complete(i);
      more = true;
      break;
    }
  }
}

std::uint64_t stored_point(const fs::path& dir) {
  auto p = read_recovery_point(dir);
  REQUIRE(p.has_value());
  REQUIRE(p->has_value());
  return **p;
}

}  // namespace

TEST_CASE("after a machine crash, every segment from the oldest unfinished seal on is validated, however many rolls") {
  // Seals slower than rolls: segments 2 and up all wait on their sealing
  // fdatasync while the log goes on to roll several more.
  temp_dir dir;
  temp_dir disk;  // what the disk holds when the machine goes down
  std::vector<std::uint64_t> bases;
  std::uint64_t expect_end = 0;
  {
    mcp::test::deferred_file_io io;
    auto opened = partition_log::open(dir.path(), opts(16384), io, 1);
    REQUIRE(opened.has_value());
    partition_log& log = **opened;
    const auto held = [&log](int fd) {
      for (std::size_t i = 2; i < log.segment_count(); ++i) {
        if (log.segment_at(i).log_fd() == fd) return true;
      }
      return false;
    };
    for (int i = 0; i < 200; ++i) {
      auto batch = make_batch(5);
      REQUIRE(log.append(batch.bytes, 5, 1, nullptr).has_value());
      release_all_but(io, held);
    }
    REQUIRE(log.segment_count() >= 7);
    for (std::size_t i = 0; i < log.segment_count(); ++i) bases.push_back(log.segment_at(i).base());
    // Segments 0 and 1 are synced whole: the point is the oldest one waiting.
    CHECK(log.recovery_point() == bases[2]);
    CHECK(stored_point(dir.path()) == bases[2]);
    fs::copy(dir.path(), disk.path());
    expect_end = batch_start_at(log, bases[3], bases[4], 4096);
    io.complete_all();
    CHECK(log.idle());
    CHECK(log.recovery_point() == bases.back());
    CHECK(stored_point(dir.path()) == bases.back());
  }
  // A page segment 3 never got (not one of the newest two) ends the log there.
  // Damage below the point is not a crash's doing and is not looked for.
  const auto lost_in = seg_file(disk.path(), bases[3], ".log");
  zero_page(lost_in, 1);
  zero_page(seg_file(disk.path(), bases[1], ".log"), 1);
  sync_file_io io;
  auto log = partition_log::open(disk.path(), after_crash(16384), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->segment_count() == 4);
  CHECK((*log)->high_watermark() == expect_end);
  CHECK_FALSE(fs::exists(seg_file(disk.path(), bases[4], ".log")));
  CHECK_FALSE(fs::exists(seg_file(disk.path(), bases.back(), ".log")));
  REQUIRE((*log)->recovery_notes().size() == 1);
  CHECK((*log)->recovery_notes()[0].find(lost_in.string()) != std::string::npos);
  // The sealed segments it kept were synced at the open: the point is the active segment.
  CHECK((*log)->recovery_point() == bases[3]);
  CHECK(stored_point(disk.path()) == bases[3]);
  const auto v = (*log)->verify();
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().message.find(seg_file(disk.path(), bases[1], ".log").string()) != std::string::npos);
}

TEST_CASE("at sync, the point stays at the segment holding the oldest unsynced record") {
  temp_dir dir;
  temp_dir disk;
  std::vector<std::uint64_t> bases;
  std::uint64_t expect_end = 0;
  {
    mcp::test::deferred_file_io io;
    log_options o = opts(16384);
    o.level.level = durability::kind::sync;
    auto opened = partition_log::open(dir.path(), o, io, 1);
    REQUIRE(opened.has_value());
    partition_log& log = **opened;
    unsigned acked = 0;
    struct counter final : append_callback {
      unsigned* n;
      explicit counter(unsigned* c) : n(c) {}
      void append_done(std::uint64_t, std::uint32_t, const error* e) noexcept override { *n += e == nullptr ? 1 : 0; }
    } cb(&acked);
    const auto all_syncs = [](int) { return true; };
    // One sync round, stuck, while the writes go on across several rolls.
    for (int i = 0; i < 120; ++i) {
      auto batch = make_batch(5);
      REQUIRE(log.append(batch.bytes, 5, 1, &cb).has_value());
      release_all_but(io, all_syncs);
    }
    REQUIRE(log.segment_count() >= 4);
    CHECK(acked == 0);
    CHECK(log.recovery_point() == 0);
    fs::copy(dir.path(), disk.path());
    for (std::size_t i = 0; i < log.segment_count(); ++i) bases.push_back(log.segment_at(i).base());
    io.complete_all();
    CHECK(acked == 120);
    expect_end = batch_start_at(log, bases[1], bases[2], 4096);
    CHECK(log.recovery_point() == bases.back());
    CHECK(stored_point(dir.path()) == bases.back());
  }
  // Nothing was acknowledged: a page lost in the second segment (of four or
  // more) may end the log there.
  zero_page(seg_file(disk.path(), bases[1], ".log"), 1);
  sync_file_io io;
  auto log = partition_log::open(disk.path(), after_crash(16384), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->segment_count() == 2);
  CHECK((*log)->high_watermark() == expect_end);
  CHECK((*log)->verify().has_value());
}

TEST_CASE("after a machine crash, a missing or damaged recovery point means every segment is validated") {
  temp_dir dir;
  build(dir.path(), 200, 16384);
  std::uint64_t active = 0;
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(16384), io, 1);
    REQUIRE(log.has_value());
    REQUIRE((*log)->segment_count() >= 4);
    active = (*log)->segment_at((*log)->segment_count() - 1).base();
    CHECK((*log)->recovery_point() == active);
  }
  const fs::path point = dir.path() / recovery_point_name;
  SUBCASE("missing") { fs::remove(point); }
  SUBCASE("a bit flip") {
    auto bytes = read_file(point);
    bytes[9] ^= std::byte{0x01};
    write_file(point, bytes);
  }
  SUBCASE("torn short") {
    auto bytes = read_file(point);
    write_file(point, std::span(bytes).first(7));
  }
  zero_page(seg_file(dir.path(), 0, ".log"), 1);  // in the oldest segment
  sync_file_io io;
  auto log = partition_log::open(dir.path(), after_crash(16384), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->segment_count() == 1);
  REQUIRE((*log)->recovery_notes().size() == 2);
  CHECK((*log)->recovery_notes()[0].find("recovery-point") != std::string::npos);
  CHECK((*log)->recovery_notes()[0].find("every segment was validated in full") != std::string::npos);
  CHECK((*log)->verify().has_value());
  CHECK(stored_point(dir.path()) == 0);
}

TEST_CASE("a damaged recovery point without a machine crash is noted and written again") {
  temp_dir dir;
  build(dir.path(), 200, 16384);
  const fs::path point = dir.path() / recovery_point_name;
  write_file(point, std::vector<std::byte>(recovery_point_size + 3, std::byte{0x5A}));
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(16384), io, 2);
  REQUIRE(log.has_value());
  REQUIRE((*log)->recovery_notes().size() == 1);
  CHECK((*log)->recovery_notes()[0].find("it was written again") != std::string::npos);
  CHECK(fs::file_size(point) == recovery_point_size);
  CHECK(stored_point(dir.path()) == (*log)->segment_at((*log)->segment_count() - 1).base());
}

TEST_CASE("after a machine crash, damage that is not a lost page is still reported, in the active segment too") {
  temp_dir dir;
  const auto b = build(dir.path(), 200);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(log_path);
  REQUIRE(bytes.size() == b.size);
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(), io, 1);
    REQUIRE(log.has_value());
    const auto sl = (*log)->locate(batch_start_at(**log, 0, b.records, 8 * 4096) + 7, 1).value();
    bytes[sl.position + sl.bytes - 20] ^= std::byte{0x04};  // a bit flip in a value, well before the tail
  }
  write_file(log_path, bytes);
  sync_file_io io;
  auto log = partition_log::open(dir.path(), after_crash(1 << 20), io, 2);
  REQUIRE_FALSE(log.has_value());
  CHECK(log.error().code == errc::corrupt);
  CHECK(log.error().message.find(log_path.string()) != std::string::npos);
  CHECK(fs::file_size(log_path) == b.size);  // nothing cut on the strength of damage
}

TEST_CASE("after a machine crash, a clean log opens unchanged, older sealed segments are not read in full") {
  temp_dir dir;
  const auto b = build(dir.path(), 200, 16384);
  std::uint64_t in_value = 0;  // a byte inside the value of record 30 (segment 0)
  {
    sync_file_io io;
    auto log = partition_log::open(dir.path(), opts(16384), io, 1);
    REQUIRE(log.has_value());
    REQUIRE((*log)->segment_at(1).base() > 30);
    const auto sl = (*log)->locate(30, 1).value();
    in_value = sl.position + sl.bytes - 20;
  }
  // Damage in an old sealed segment, synced at its seal long ago: not scanned (verify() finds it).
  const auto first_log = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(first_log);
  bytes[in_value] ^= std::byte{0x04};
  write_file(first_log, bytes);
  sync_file_io io;
  auto log = partition_log::open(dir.path(), after_crash(16384), io, 2);
  REQUIRE(log.has_value());
  CHECK((*log)->high_watermark() == b.records);
  CHECK((*log)->recovery_notes().empty());
  CHECK_FALSE((*log)->verify().has_value());
}
