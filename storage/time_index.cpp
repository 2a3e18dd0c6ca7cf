#include "storage/time_index.h"

#include "codec/byte_order.h"

namespace mcp::storage {

using codec::load_le;
using codec::store_le;

time_index::time_index(std::size_t capacity) : bytes_(capacity * time_entry_size), capacity_(capacity) {}

bool time_index::append(time_entry e) {
  if (full()) return false;
  if (count_ > 0) {
    const time_entry last = at(count_ - 1);
    if (e.rel <= last.rel || e.max_ts < last.max_ts) return false;
  }
  std::byte* p = bytes_.data() + count_ * time_entry_size;
  store_le<std::int64_t>(p, e.max_ts);
  store_le<std::uint32_t>(p + 8, e.rel);
  ++count_;
  return true;
}

time_entry time_index::at(std::size_t i) const noexcept {
  const std::byte* p = bytes_.data() + i * time_entry_size;
  return {load_le<std::int64_t>(p), load_le<std::uint32_t>(p + 8)};
}

std::uint32_t time_index::scan_start(std::int64_t ts) const noexcept {
  // Entries are non-decreasing in max_ts: binary search the first with max >= ts.
  std::size_t lo = 0, hi = count_;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (at(mid).max_ts < ts) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == 0 ? 0 : at(lo - 1).rel;
}

std::vector<time_entry> time_index::parse(std::span<const std::byte> file) {
  std::vector<time_entry> out;
  const std::size_t n = file.size() / time_entry_size;
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* p = file.data() + i * time_entry_size;
    const time_entry e{load_le<std::int64_t>(p), load_le<std::uint32_t>(p + 8)};
    if (!out.empty() && (e.rel <= out.back().rel || e.max_ts < out.back().max_ts)) break;
    out.push_back(e);
  }
  return out;
}

}  // namespace mcp::storage
