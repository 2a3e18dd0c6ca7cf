#pragma once
// A log-linear latency histogram (HdrHistogram-style): values below 64 get a
// bucket each; above, each power of two is split into 64 buckets, so any
// reported percentile is within 1/64 (1.6 %) of the true value. Buckets are
// relaxed atomics: one thread records, another may read a live snapshot.

#include <array>
#include <atomic>
#include <cstdint>

namespace mcp::bench {

class histogram {
 public:
  static constexpr unsigned sub_bits = 6;
  static constexpr unsigned sub_count = 1u << sub_bits;
  static constexpr unsigned max_shift = 40;  // values up to 2^46 (~2.2 years in µs)
  static constexpr unsigned bucket_count = (max_shift + 2) * sub_count;

  void record(std::uint64_t v) noexcept;
  // The value at or below which `q` (0..1) of the recorded values lie (bucket upper bound).
  std::uint64_t percentile(double q) const noexcept;
  std::uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  void merge_into(histogram& out) const noexcept;

  static unsigned index_of(std::uint64_t v) noexcept;
  static std::uint64_t upper_bound_of(unsigned index) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace mcp::bench
