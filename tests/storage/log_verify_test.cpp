#include "storage/log_verify.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "storage/partition_log.h"
#include "storage/recovery_point.h"
#include "storage/sync_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

namespace {

void fill(const fs::path& dir, int batches) {
  sync_file_io io;
  log_options o;
  o.segment_bytes = 4096;
  o.index_interval = 512;
  o.level.level = durability::kind::none;
  auto log = partition_log::open(dir, o, io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < batches; ++i) {
    auto b = mcp::test::make_batch(4);
    REQUIRE((*log)->append(b.bytes, 4, 1, nullptr).has_value());
  }
}

void flip(const fs::path& p, std::size_t at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c ^= 0x20;
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("verify passes a sound partition and counts its records; dump visits them in order") {
  mcp::test::temp_dir dir;
  fill(dir.path() / "t" / "0", 30);
  const auto parts = find_partitions(dir.path());
  REQUIRE(parts.size() == 1);
  const auto rep = verify_partition(parts[0]);
  CHECK(rep.problem.empty());
  CHECK(rep.torn_tail.empty());
  CHECK(rep.records == 120);
  CHECK(rep.segments > 3);
  std::uint64_t next = 0;
  bool in_order = true;
  CHECK(for_each_record(parts[0], [&](const mcp::codec::record_view& r) { in_order = in_order && r.offset == next++; })
            .empty());
  CHECK(in_order);
  CHECK(next == 120);
}

TEST_CASE("verify names the segment and byte of a flipped bit in a sealed segment") {
  mcp::test::temp_dir dir;
  fill(dir.path(), 30);
  flip(dir.path() / (segment_stem(0) + ".log"), 700);
  const auto rep = verify_partition(dir.path());
  CHECK(rep.problem.find("00000000000000000000.log") != std::string::npos);
  CHECK(rep.problem.find("at byte 624") != std::string::npos);  // the record holding byte 700 starts at 624
}

TEST_CASE("verify reports an index entry that points at the wrong place") {
  mcp::test::temp_dir dir;
  fill(dir.path(), 30);
  flip(dir.path() / (segment_stem(0) + ".idx"), 4);  // position of the first entry
  const auto rep = verify_partition(dir.path());
  CHECK(rep.problem.find(".idx") != std::string::npos);
}

TEST_CASE("a torn tail of the last segment is told apart from corruption") {
  mcp::test::temp_dir dir;
  fill(dir.path(), 30);
  const auto parts = find_partitions(dir.path());
  const auto bases_last = [&] {
    fs::path last;
    for (const auto& e : fs::directory_iterator(dir.path())) {
      if (e.path().extension() == ".log" && (last.empty() || e.path() > last)) last = e.path();
    }
    return last;
  }();
  fs::resize_file(bases_last, fs::file_size(bases_last) - 3);
  const auto rep = verify_partition(dir.path());
  CHECK(rep.problem.empty());
  CHECK(rep.torn_tail.find("torn record") != std::string::npos);
}

TEST_CASE("a batch missing its last record is a torn tail: at the end of the log, and in a sealed segment a crash during a roll cut short") {
  mcp::test::temp_dir dir;
  fill(dir.path(), 30);  // batches of 4 records of 156 bytes
  constexpr std::uint64_t record_bytes = 156;
  SUBCASE("last segment") {
    fs::path last;
    for (const auto& e : fs::directory_iterator(dir.path())) {
      if (e.path().extension() == ".log" && (last.empty() || e.path() > last)) last = e.path();
    }
    // One whole record of the last batch left.
    fs::resize_file(last, fs::file_size(last) - 3 * record_bytes);
    const auto rep = verify_partition(dir.path());
    CHECK(rep.problem.empty());
    CHECK(rep.torn_tail.find("whose last record is missing") != std::string::npos);
  }
  SUBCASE("sealed segment") {
    fs::resize_file(dir.path() / (segment_stem(0) + ".log"), 4 * record_bytes + record_bytes);
    const auto rep = verify_partition(dir.path());
    CHECK(rep.problem.empty());
    CHECK(rep.torn_tail.find("00000000000000000000.log: at byte 624 (offset 4): records 4..4") != std::string::npos);
    CHECK(rep.torn_tail.find("whose last record is missing") != std::string::npos);
    CHECK(rep.torn_tail.find("removes 4 later segment(s)") != std::string::npos);  // as the broker's open would
  }
  SUBCASE("sealed segment ending whole but short of the next one") {
    fs::resize_file(dir.path() / (segment_stem(0) + ".log"), 4 * record_bytes);
    const auto rep = verify_partition(dir.path());
    CHECK(rep.problem.empty());
    CHECK(rep.torn_tail.find("ends at offset 4 but the next segment starts at 24") != std::string::npos);
  }
}

TEST_CASE("verify reports a damaged recovery point, or one past the last segment, apart from corruption") {
  mcp::test::temp_dir dir;
  fill(dir.path(), 30);
  CHECK(verify_partition(dir.path()).recovery_point.empty());
  const fs::path point = dir.path() / recovery_point_name;
  SUBCASE("damaged") {
    flip(point, 10);
    const auto rep = verify_partition(dir.path());
    CHECK(rep.problem.empty());
    CHECK(rep.recovery_point.find("CRC mismatch") != std::string::npos);
    CHECK(rep.recovery_point.find(point.string()) != std::string::npos);
  }
  SUBCASE("past the last segment") {
    const auto bytes = encode_recovery_point(1'000'000);
    std::ofstream(point, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto rep = verify_partition(dir.path());
    CHECK(rep.problem.empty());
    CHECK(rep.recovery_point.find("past the last segment") != std::string::npos);
  }
  SUBCASE("absent (a log from before the file): nothing to say") {
    fs::remove(point);
    CHECK(verify_partition(dir.path()).recovery_point.empty());
  }
}
