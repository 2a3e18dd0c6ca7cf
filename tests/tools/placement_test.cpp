#include "tools/bench/placement.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <vector>

using mcp::bench::placement;
using mcp::bench::share_partitions;
using mcp::bench::thread_share;

namespace {

std::set<std::uint32_t> covered(const std::vector<thread_share>& shares) {
  std::set<std::uint32_t> out;
  for (const auto& s : shares) out.insert(s.partitions.begin(), s.partitions.end());
  return out;
}

// Partitions 0..n-1, owned as `owners` says.
std::map<std::uint32_t, unsigned> owned(const std::vector<unsigned>& owners) {
  std::map<std::uint32_t, unsigned> m;
  for (std::uint32_t p = 0; p < owners.size(); ++p) m[p] = owners[p];
  return m;
}

}  // namespace

TEST_CASE("shard placement: each thread serves one shard's partitions and is pinned to its core") {
  const auto owner = owned({1, 0, 0, 1, 1});  // shard 0: {1, 2}; shard 1: {0, 3, 4}
  const auto shares = share_partitions(placement::shard, 2, owner, 2);
  REQUIRE(shares.size() == 2);
  CHECK(shares[0].partitions == std::vector<std::uint32_t>{1, 2});
  CHECK(shares[0].core == 0u);
  CHECK(shares[1].partitions == std::vector<std::uint32_t>{0, 3, 4});
  CHECK(shares[1].core == 1u);
}

TEST_CASE("shard placement: threads of one shard split its partitions, each partition served once") {
  const auto owner = owned({0, 1, 0, 1, 0, 1, 0, 1});
  const auto shares = share_partitions(placement::shard, 4, owner, 2);
  REQUIRE(shares.size() == 4);
  std::multiset<std::uint32_t> all;
  for (const auto& s : shares) {
    REQUIRE(s.core.has_value());
    for (const auto p : s.partitions) {
      CHECK(owner.at(p) == *s.core);  // two shards on two cores: shard s on core s
      all.insert(p);
    }
    CHECK(s.partitions.size() == 2);
  }
  CHECK(all.size() == 8);
  CHECK(std::set<std::uint32_t>(all.begin(), all.end()).size() == 8);
}

TEST_CASE("shard placement: more threads than a shard's partitions share them; cores wrap") {
  const auto owner = owned({0, 3});  // shards 0 and 3 on a 2-core machine
  const auto shares = share_partitions(placement::shard, 5, owner, 2);
  REQUIRE(shares.size() == 5);
  for (const auto& s : shares) {
    REQUIRE(s.partitions.size() == 1);
    CHECK(s.core == owner.at(s.partitions[0]) % 2);
  }
  CHECK(covered(shares) == std::set<std::uint32_t>{0, 1});
}

TEST_CASE("shard placement with fewer threads than shards falls back to spread, unpinned") {
  const auto owner = owned({0, 1, 2, 0, 1, 2});
  const auto shares = share_partitions(placement::shard, 2, owner, 4);
  REQUIRE(shares.size() == 2);
  for (const auto& s : shares) CHECK_FALSE(s.core.has_value());
  CHECK(shares[0].partitions == std::vector<std::uint32_t>{0, 2, 4});
  CHECK(shares[1].partitions == std::vector<std::uint32_t>{1, 3, 5});
}

TEST_CASE("spread placement deals partitions round robin, one each when threads outnumber them") {
  const auto owner = owned({0, 0, 0, 0});
  auto shares = share_partitions(placement::spread, 3, owner, 2);
  CHECK(shares[0].partitions == std::vector<std::uint32_t>{0, 3});
  CHECK(shares[1].partitions == std::vector<std::uint32_t>{1});
  CHECK(shares[2].partitions == std::vector<std::uint32_t>{2});
  for (const auto& s : shares) CHECK_FALSE(s.core.has_value());
  shares = share_partitions(placement::spread, 6, owner, 2);
  CHECK(shares[5].partitions == std::vector<std::uint32_t>{1});
  CHECK(covered(shares).size() == 4);
}

TEST_CASE("no threads, or no partitions, give nothing to do") {
  CHECK(share_partitions(placement::shard, 0, owned({0, 1}), 2).empty());
  const auto shares = share_partitions(placement::shard, 2, {}, 2);
  REQUIRE(shares.size() == 2);
  for (const auto& s : shares) CHECK(s.partitions.empty());
}
