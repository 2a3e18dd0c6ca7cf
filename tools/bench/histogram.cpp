#include "tools/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace mcp::bench {

unsigned histogram::index_of(std::uint64_t v) noexcept {
  if (v < sub_count) return static_cast<unsigned>(v);
  // v in [2^msb, 2^(msb+1)), msb >= sub_bits: drop `shift` low bits so 64 <= v >> shift < 128.
  const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
  const unsigned shift = msb - sub_bits;
  if (shift > max_shift) return bucket_count - 1;
  return (shift + 1) * sub_count + static_cast<unsigned>((v >> shift) - sub_count);
}

std::uint64_t histogram::upper_bound_of(unsigned index) noexcept {
  if (index < sub_count) return index;
  const unsigned shift = index / sub_count - 1;
  const std::uint64_t sub = index % sub_count;
  return ((sub_count + sub + 1) << shift) - 1;
}

void histogram::record(std::uint64_t v) noexcept {
  buckets_[index_of(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t m = max_.load(std::memory_order_relaxed);
  while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
}

std::uint64_t histogram::percentile(double q) const noexcept {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  const auto target = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n)));
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < bucket_count; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= std::max<std::uint64_t>(target, 1)) return std::min(upper_bound_of(i), max());
  }
  return max();
}

void histogram::merge_into(histogram& out) const noexcept {
  for (unsigned i = 0; i < bucket_count; ++i) {
    const auto b = buckets_[i].load(std::memory_order_relaxed);
    if (b != 0) out.buckets_[i].fetch_add(b, std::memory_order_relaxed);
  }
  out.count_.fetch_add(count(), std::memory_order_relaxed);
  std::uint64_t m = out.max_.load(std::memory_order_relaxed);
  const std::uint64_t mine = max();
  while (mine > m && !out.max_.compare_exchange_weak(m, mine, std::memory_order_relaxed)) {
  }
}

}  // namespace mcp::bench
