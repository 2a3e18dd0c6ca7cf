#include "storage/segment_index.h"

#include <doctest/doctest.h>

#include "storage/time_index.h"

using namespace mcp::storage;

TEST_CASE("offset index lookups at every boundary") {
  segment_index idx(8);
  REQUIRE(idx.append({10, 1000}));
  REQUIRE(idx.append({20, 2000}));
  REQUIRE(idx.append({30, 3000}));
  CHECK(idx.floor(0).pos == 0);
  CHECK(idx.floor(9).pos == 0);
  CHECK(idx.floor(10).pos == 1000);
  CHECK(idx.floor(11).pos == 1000);
  CHECK(idx.floor(19).pos == 1000);
  CHECK(idx.floor(20).pos == 2000);
  CHECK(idx.floor(30).pos == 3000);
  CHECK(idx.floor(1'000'000).pos == 3000);
  CHECK(idx.floor_position(999).rel == 0);
  CHECK(idx.floor_position(1000).rel == 10);
  CHECK(idx.floor_position(2999).rel == 20);
  CHECK(idx.floor_position(5000).rel == 30);
}

TEST_CASE("the offset index refuses entries that do not increase, and stops when full") {
  segment_index idx(2);
  CHECK(idx.append({5, 500}));
  CHECK_FALSE(idx.append({5, 600}));
  CHECK_FALSE(idx.append({6, 500}));
  CHECK(idx.append({6, 600}));
  CHECK_FALSE(idx.append({7, 700}));
  CHECK(idx.size() == 2);
}

TEST_CASE("parsing an index file ignores a torn entry and stops at the first non-increasing one") {
  segment_index idx(4);
  idx.append({1, 100});
  idx.append({2, 200});
  std::vector<std::byte> file;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    const auto b = idx.bytes_of(i);
    file.insert(file.end(), b.begin(), b.end());
  }
  CHECK(segment_index::parse(file).size() == 2);
  auto torn = file;
  torn.resize(torn.size() + 5, std::byte{0x7F});
  CHECK(segment_index::parse(torn).size() == 2);
  auto garbage = file;
  garbage.insert(garbage.end(), file.begin(), file.begin() + 8);  // repeats entry 0
  CHECK(segment_index::parse(garbage).size() == 2);
}

TEST_CASE("time index: where to start scanning for timestamp T") {
  time_index t(8);
  REQUIRE(t.append({100, 10}));   // records before offset 10 have ts <= 100
  REQUIRE(t.append({200, 20}));
  REQUIRE(t.append({200, 30}));
  REQUIRE(t.append({350, 40}));
  CHECK(t.scan_start(50) == 0);
  CHECK(t.scan_start(100) == 0);
  CHECK(t.scan_start(101) == 10);
  CHECK(t.scan_start(200) == 10);
  CHECK(t.scan_start(201) == 30);
  CHECK(t.scan_start(351) == 40);
  CHECK_FALSE(t.append({300, 50}));  // max timestamps never go down
  std::vector<std::byte> file;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto b = t.bytes_of(i);
    file.insert(file.end(), b.begin(), b.end());
  }
  const auto parsed = time_index::parse(file);
  REQUIRE(parsed.size() == 4);
  CHECK(parsed[3].max_ts == 350);
  CHECK(parsed[3].rel == 40);
}
