// Crash cases of docs/storage.md "Recovery": each recovers to exactly the last
// complete record, or is reported with the segment and position.

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
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

// Writes `batches` batches of 5 records (100-byte values) and closes the log.
// Returns the byte size of the single segment and where its last record starts.
struct built {
  std::uint64_t size = 0;
  std::uint64_t last_record_pos = 0;
  std::uint64_t records = 0;
};

built build(const fs::path& dir, int batches, std::uint64_t segment_bytes = 1 << 20) {
  sync_file_io io;
  auto log = partition_log::open(dir, opts(segment_bytes), io, 1);
  REQUIRE(log.has_value());
  built b;
  for (int i = 0; i < batches; ++i) {
    auto batch = make_batch(5);
    REQUIRE((*log)->append(batch.bytes, 5, 1, nullptr).has_value());
  }
  (*log)->write_indexes();  // as a clean shutdown does
  b.records = (*log)->high_watermark();
  b.size = (*log)->segment_at((*log)->segment_count() - 1).size();
  auto last = (*log)->locate(b.records - 1, 1);
  REQUIRE(last.has_value());
  b.last_record_pos = last->position;
  return b;
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

TEST_CASE("a tail cut at every byte position of the last record recovers to the record before it") {
  temp_dir dir;
  const built b = build(dir.path(), 10);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  const auto original = read_file(log_path);
  const auto idx = read_file(seg_file(dir.path(), 0, ".idx"));
  const auto tix = read_file(seg_file(dir.path(), 0, ".tix"));
  REQUIRE(original.size() == b.size);
  for (std::uint64_t cut = b.last_record_pos; cut < b.size; ++cut) {
    CAPTURE(cut);
    write_file(log_path, std::span(original).first(cut));
    write_file(seg_file(dir.path(), 0, ".idx"), idx);
    write_file(seg_file(dir.path(), 0, ".tix"), tix);
    expect_records(dir.path(), b.records - 1);
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

TEST_CASE("a bit flip in the last record drops exactly that record") {
  temp_dir dir;
  const built b = build(dir.path(), 10);
  const auto log_path = seg_file(dir.path(), 0, ".log");
  const auto original = read_file(log_path);
  for (std::uint64_t at : {b.last_record_pos + 20, b.last_record_pos + 100, b.size - 1}) {
    CAPTURE(at);
    auto bytes = original;
    bytes[at] ^= std::byte{0x04};
    write_file(log_path, bytes);
    expect_records(dir.path(), b.records - 1);
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

TEST_CASE("a torn tail in a sealed segment fails the open with the segment named") {
  temp_dir dir;
  build(dir.path(), 40, 4096);
  const auto first_log = seg_file(dir.path(), 0, ".log");
  auto bytes = read_file(first_log);
  write_file(first_log, std::span(bytes).first(bytes.size() - 7));
  sync_file_io io;
  auto log = partition_log::open(dir.path(), opts(4096), io, 2);
  REQUIRE_FALSE(log.has_value());
  CHECK(log.error().code == errc::corrupt);
  CHECK(log.error().message.find(first_log.string()) != std::string::npos);
}
