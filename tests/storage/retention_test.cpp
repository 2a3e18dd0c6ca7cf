#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "storage/log_format.h"
#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
#include "tests/support/deferred_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;

namespace {

log_options retention_opts(std::int64_t bytes, std::int64_t ms) {
  log_options o;
  o.segment_bytes = 4096;
  o.index_interval = 1024;
  o.level.level = durability::kind::none;
  o.retention_bytes = bytes;
  o.retention_ms = ms;
  return o;
}

}  // namespace

TEST_CASE("retention by bytes deletes the oldest whole sealed segments and moves the log start") {
  mcp::test::temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), retention_opts(10'000, -1), io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < 40; ++i) {
    auto b = mcp::test::make_batch(4);
    REQUIRE((*log)->append(b.bytes, 4, 1, nullptr).has_value());
  }
  const auto segments_before = (*log)->segment_count();
  REQUIRE(segments_before > 5);
  const auto removed = (*log)->apply_retention(2);
  REQUIRE(removed.has_value());
  CHECK(*removed > 0);
  CHECK((*log)->segment_count() == segments_before - *removed);
  CHECK((*log)->size_bytes() <= 10'000);
  CHECK((*log)->log_start() == (*log)->segment_at(0).base());
  CHECK((*log)->log_start() > 0);
  CHECK((*log)->high_watermark() == 160);
  // Offsets before the start are gone; from the start on, everything reads.
  CHECK((*log)->locate(0, 100).error().code == errc::out_of_range);
  CHECK((*log)->locate((*log)->log_start(), 100).has_value());
  // Reopening sees the same start.
  const auto start = (*log)->log_start();
  log->reset();
  auto again = partition_log::open(dir.path(), retention_opts(10'000, -1), io, 3);
  REQUIRE(again.has_value());
  CHECK((*again)->log_start() == start);
}

TEST_CASE("retention by bytes never deletes the active segment, whatever the limit") {
  mcp::test::temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), retention_opts(0, -1), io, 1);
  REQUIRE(log.has_value());
  auto b = mcp::test::make_batch(4);
  REQUIRE((*log)->append(b.bytes, 4, 1, nullptr).has_value());
  CHECK((*log)->apply_retention(1'000'000).value() == 0);
  CHECK((*log)->segment_count() == 1);
  CHECK((*log)->high_watermark() == 4);
}

TEST_CASE("retention by age deletes segments whose newest record is older than the limit") {
  mcp::test::temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), retention_opts(-1, 1000), io, 1);
  REQUIRE(log.has_value());
  // Old records (timestamp 5000..) fill a few segments, then new ones (timestamp 100000..).
  for (int i = 0; i < 20; ++i) {
    auto b = mcp::test::make_batch(4, 100, "old", 5000 + i * 4);
    REQUIRE((*log)->append(b.bytes, 4, 5000, nullptr).has_value());
  }
  const std::uint64_t first_new = (*log)->log_end();
  for (int i = 0; i < 20; ++i) {
    auto b = mcp::test::make_batch(4, 100, "new", 100000 + i * 4);
    REQUIRE((*log)->append(b.bytes, 4, 100000, nullptr).has_value());
  }
  const auto removed = (*log)->apply_retention(100500);
  REQUIRE(removed.has_value());
  CHECK(*removed > 0);
  // Only segments holding nothing but old records went.
  CHECK((*log)->log_start() <= first_new);
  CHECK((*log)->segment_at(0).max_ts() >= 100000 - 1000);
  CHECK((*log)->apply_retention(100500).value() == 0);
}

TEST_CASE("a quiet log ages out: an active segment wholly past retention_ms is rolled, then deleted") {
  mcp::test::temp_dir dir;
  sync_file_io io;
  auto log = partition_log::open(dir.path(), retention_opts(-1, 1000), io, 1);
  REQUIRE(log.has_value());
  auto b = mcp::test::make_batch(4, 100, "v", 5000);
  REQUIRE((*log)->append(b.bytes, 4, 5000, nullptr).has_value());
  REQUIRE((*log)->segment_count() == 1);
  // Not yet past retention: nothing happens.
  CHECK((*log)->apply_retention(5500).value() == 0);
  CHECK((*log)->segment_count() == 1);
  // Past it: the first call seals it behind an empty active segment, the next deletes it.
  CHECK((*log)->apply_retention(7000).value() == 0);
  CHECK((*log)->segment_count() == 2);
  CHECK((*log)->segment_at(1).size() == 0);
  CHECK((*log)->apply_retention(7001).value() == 1);
  CHECK((*log)->segment_count() == 1);
  CHECK((*log)->log_start() == 4);
  CHECK((*log)->high_watermark() == 4);
  CHECK((*log)->locate(4, 100).value().bytes == 0);  // readers at the end wait, as before
  // An empty active segment is never rolled again, and appends go on from offset 4.
  CHECK((*log)->apply_retention(100000).value() == 0);
  CHECK((*log)->segment_count() == 1);
  auto more = mcp::test::make_batch(2, 100, "w", 100000);
  CHECK((*log)->append(more.bytes, 2, 100000, nullptr).value() == 4);
  // Reopening sees the same start.
  log->reset();
  auto again = partition_log::open(dir.path(), retention_opts(-1, 1000), io, 100001);
  REQUIRE(again.has_value());
  CHECK((*again)->log_start() == 4);
  CHECK((*again)->high_watermark() == 6);
}

TEST_CASE("an idle active segment rolls by segment_ms without waiting for the next append") {
  mcp::test::temp_dir dir;
  sync_file_io io;
  auto o = retention_opts(-1, -1);
  o.segment_ms = 1000;
  auto log = partition_log::open(dir.path(), o, io, 1);
  REQUIRE(log.has_value());
  auto b = mcp::test::make_batch(3);
  REQUIRE((*log)->append(b.bytes, 3, 10, nullptr).has_value());
  CHECK((*log)->apply_retention(500).value() == 0);
  CHECK((*log)->segment_count() == 1);
  CHECK((*log)->apply_retention(1001).value() == 0);
  CHECK((*log)->segment_count() == 2);  // sealed, and kept: no retention limit
  CHECK((*log)->apply_retention(5000).value() == 0);
  CHECK((*log)->segment_count() == 2);
  CHECK((*log)->verify().has_value());
}

namespace {

// Fills a log (durability none, 4 KiB segments) through a deferred backend and
// completes every write.
std::unique_ptr<partition_log> filled(const std::filesystem::path& dir, mcp::test::deferred_file_io& io) {
  auto log = partition_log::open(dir, retention_opts(10'000, -1), io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < 40; ++i) {
    auto b = mcp::test::make_batch(4);
    REQUIRE((*log)->append(b.bytes, 4, 1, nullptr).has_value());
    io.complete_all();
  }
  REQUIRE((*log)->idle());
  return std::move(*log);
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Files of segments (.log, .idx, .tix) in `dir`: not the recovery point.
std::size_t segment_files_in(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().filename() == std::filesystem::path(recovery_point_name) ? 0 : 1;
  }
  return n;
}

}  // namespace

TEST_CASE("retention unlinks dropped segments' files through the backend, one at a time: indexes, then log") {
  mcp::test::temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = filled(dir.path(), io);
  const std::uint64_t first_base = log->segment_at(0).base();
  const auto removed = log->apply_retention(2);
  REQUIRE(removed.has_value());
  REQUIRE(*removed > 1);
  // Gone from the log at once; the files go one by one and keep the log busy.
  CHECK(log->log_start() == log->segment_at(0).base());
  CHECK(log->files_to_remove() == 3 * *removed);
  CHECK_FALSE(log->idle());
  const std::string first = std::filesystem::path(dir.path() / segment_stem(first_base)).string();
  const char* order[] = {".idx", ".tix", ".log"};
  for (const char* suffix : order) {
    REQUIRE(io.ops.size() == 1);
    CHECK(io.ops[0].is_remove);
    CHECK(io.ops[0].path == first + suffix);
    io.complete(0);
  }
  // Then the next segment, and so on.
  REQUIRE(io.ops.size() == 1);
  CHECK(ends_with(io.ops[0].path, ".idx"));
  CHECK(io.ops[0].path != first + ".idx");
  while (!io.ops.empty()) io.complete_all();
  CHECK(log->idle());
  CHECK(log->files_to_remove() == 0);
  CHECK(io.removes == 3 * *removed);
  CHECK(segment_files_in(dir.path()) == 3 * log->segment_count());
}

TEST_CASE("a failed removal stops the ones behind it, is reported by the next pass, and is retried there") {
  mcp::test::temp_dir dir;
  mcp::test::deferred_file_io io;
  auto log = filled(dir.path(), io);
  const std::uint64_t first_base = log->segment_at(0).base();
  io.fail_operation(2, EACCES);  // the first segment's .tix
  const auto removed = log->apply_retention(2);
  REQUIRE(removed.has_value());
  REQUIRE(*removed > 1);
  while (!io.ops.empty()) io.complete_all();
  CHECK(log->idle());
  CHECK(io.removes == 2);
  CHECK(log->files_to_remove() == 3 * *removed - 1);
  // What is left on disk is whole segments from first_base up, with no gap: a
  // reopen (of a copy: opening rebuilds the missing index) takes them back.
  {
    mcp::test::temp_dir copy;
    std::filesystem::copy(dir.path(), copy.path());
    sync_file_io sio;
    auto peek = partition_log::open(copy.path(), retention_opts(-1, -1), sio, 5);
    REQUIRE(peek.has_value());
    CHECK((*peek)->log_start() == first_base);
    CHECK((*peek)->verify().has_value());
  }
  const auto next = log->apply_retention(3);
  REQUIRE_FALSE(next.has_value());
  CHECK(next.error().code == errc::io_error);
  CHECK(next.error().message.find(".tix") != std::string::npos);
  CHECK(next.error().message.find(std::strerror(EACCES)) != std::string::npos);
  // That pass retried: now everything goes.
  while (!io.ops.empty()) io.complete_all();
  CHECK(log->files_to_remove() == 0);
  CHECK(log->apply_retention(4).value() == 0);
  CHECK(segment_files_in(dir.path()) == 3 * log->segment_count());
}
