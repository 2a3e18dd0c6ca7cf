#pragma once
// What a partition remembers of its idempotent producers, so that a batch resent
// after a reconnect (or after a broker restart) is answered with the offsets it
// was stored at instead of being stored twice (docs/storage.md "Idempotent
// producers").
//
// Per producer id: the last sequence stored and the most recent *runs* — stretches
// of records with consecutive sequences stored at consecutive offsets. A batch is
// one run; back-to-back batches of one producer merge into one run, which is also
// what a scan of the log sees after a restart (batch edges are not stored), so the
// live state and the recovered state answer the same questions the same way.
//
// Bounds: `max_runs` runs per producer, `max_producers` producers per partition
// (the least recently active is forgotten first). Sequences are u32 and do not
// wrap: a producer takes a new id before 2^32 records to one partition.
//
// Thread: owned by one partition_log, used by its owner thread.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

namespace mcp::storage {

class producer_state {
 public:
  static constexpr std::size_t max_runs = 16;
  static constexpr std::size_t max_producers = 8192;

  enum class verdict {
    append,             // new: store it
    duplicate,          // stored before, at `first_offset`
    duplicate_unknown,  // stored before, but where is no longer remembered
    out_of_order,       // its first sequence leaves a gap after the last one stored
  };
  struct decision {
    verdict what = verdict::append;
    std::uint64_t first_offset = 0;  // for duplicate
  };

  // What to do with a batch of `count` records from `producer` whose sequences start at `first_seq`.
  decision check(std::uint64_t producer, std::uint32_t first_seq, std::uint32_t count) const noexcept;
  // Notes records [first_seq, first_seq + count) stored at offsets from `first_offset`.
  void record(std::uint64_t producer, std::uint32_t first_seq, std::uint32_t count, std::uint64_t first_offset);

  std::size_t producers() const noexcept { return producers_.size(); }
  void clear() noexcept { producers_.clear(); }

 private:
  struct run {
    std::uint64_t first_seq = 0;  // widened: the end of a run may be 2^32
    std::uint64_t first_offset = 0;
    std::uint64_t count = 0;
  };
  struct entry {
    std::deque<run> runs;  // oldest first
    std::uint64_t last_active = 0;
  };

  std::unordered_map<std::uint64_t, entry> producers_;
  std::uint64_t clock_ = 0;
};

}  // namespace mcp::storage
