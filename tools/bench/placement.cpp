#include "tools/bench/placement.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace mcp::bench {

namespace {

// Thread `i` of `n` sharing `items`: every item dealt round robin, or, with more
// threads than items, one item each.
std::vector<std::uint32_t> deal(unsigned i, unsigned n, const std::vector<std::uint32_t>& items) {
  std::vector<std::uint32_t> out;
  if (items.empty()) return out;
  if (n > items.size()) {
    out.push_back(items[i % items.size()]);
    return out;
  }
  for (std::size_t k = i; k < items.size(); k += n) out.push_back(items[k]);
  return out;
}

}  // namespace

std::vector<thread_share> share_partitions(placement how, unsigned threads,
                                           const std::map<std::uint32_t, unsigned>& owner, unsigned cores) {
  std::vector<thread_share> out(threads);
  std::vector<std::uint32_t> all;
  std::map<unsigned, std::vector<std::uint32_t>> by_shard;  // only shards that own a partition
  for (const auto& [p, s] : owner) {
    all.push_back(p);
    by_shard[s].push_back(p);
  }
  const auto shard_count = static_cast<unsigned>(by_shard.size());
  if (shard_count == 0) return out;
  if (how == placement::spread || threads < shard_count) {
    // Too few threads for one shard each: no thread can stay on one core, so
    // they are not pinned at all.
    for (unsigned i = 0; i < threads; ++i) out[i].partitions = deal(i, threads, all);
    return out;
  }
  std::vector<unsigned> shards;
  for (const auto& [s, ps] : by_shard) shards.push_back(s);
  for (unsigned i = 0; i < threads; ++i) {
    const unsigned k = i % shard_count;
    // Threads k, k + S, k + 2S, ... serve shard k: this is number i / S of them.
    const unsigned of = threads / shard_count + (k < threads % shard_count ? 1 : 0);
    out[i].partitions = deal(i / shard_count, of, by_shard[shards[k]]);
    out[i].core = shards[k] % std::max(1u, cores);
  }
  return out;
}

bool pin_this_thread(unsigned core) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
}

}  // namespace mcp::bench
