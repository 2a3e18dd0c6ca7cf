#pragma once
// Which partitions each of mcp-bench's producer (or consumer) threads serves, and
// on which core it runs.
//
// `shard` placement keeps a message's path on one core: thread i serves only
// partitions of one shard and is pinned to the core the broker pins that shard to
// (shard s on core s mod cores, broker/shard.cpp). On a 2-vCPU VM a wake-up of a
// thread on the other vCPU costs an inter-processor interrupt and, when that vCPU
// is halted, the host's time to run it again; on the same core it is a context
// switch. Measured at 100,000 msgs/s (perf/results.md, 2026-12-04): p99 315-507 µs
// against 791-1,071 µs with `spread`, for less CPU.
// `spread` deals partitions round robin over the threads and lets the kernel
// place them.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace mcp::bench {

enum class placement { shard, spread };

struct thread_share {
  std::vector<std::uint32_t> partitions;  // empty: this thread has nothing to do
  std::optional<unsigned> core;           // pin here (shard placement only)
};

// `owner` maps every partition of the topic to its shard; `cores` is the number of
// cores the broker's shards are pinned over (this machine's, for a local broker).
// Every partition is served by at least one thread when threads >= 1. With more
// threads than partitions (of a shard, under `shard`), threads share a partition,
// one each.
std::vector<thread_share> share_partitions(placement how, unsigned threads,
                                           const std::map<std::uint32_t, unsigned>& owner, unsigned cores);

// Pins the calling thread to `core`; false if the kernel refused (it then runs
// unpinned, which costs only latency).
bool pin_this_thread(unsigned core) noexcept;

}  // namespace mcp::bench
