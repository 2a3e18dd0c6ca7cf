#include "storage/segment_index.h"

#include <algorithm>
#include <cstring>

#include "storage/log_format.h"

namespace mcp::storage {

bool segment_index::append(index_entry e) {
  if (full()) return false;
  if (!entries_.empty() && (e.rel <= entries_.back().rel || e.pos <= entries_.back().pos)) return false;
  entries_.push_back(e);
  return true;
}

index_entry segment_index::floor(std::uint32_t rel) const noexcept {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), rel,
                             [](std::uint32_t r, const index_entry& e) { return r < e.rel; });
  return it == entries_.begin() ? index_entry{} : *std::prev(it);
}

const index_entry* segment_index::first_after_position(std::uint32_t pos) const noexcept {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), pos,
                             [](std::uint32_t p, const index_entry& e) { return p < e.pos; });
  return it == entries_.end() ? nullptr : &*it;
}

index_entry segment_index::floor_position(std::uint32_t pos) const noexcept {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), pos,
                             [](std::uint32_t p, const index_entry& e) { return p < e.pos; });
  return it == entries_.begin() ? index_entry{} : *std::prev(it);
}

std::vector<index_entry> segment_index::parse(std::span<const std::byte> file) {
  std::vector<index_entry> out;
  const std::size_t n = file.size() / offset_entry_size;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    index_entry e;
    std::memcpy(&e, file.data() + i * offset_entry_size, sizeof e);
    if (!out.empty() && (e.rel <= out.back().rel || e.pos <= out.back().pos)) break;
    if (out.empty() && e.pos == 0 && e.rel != 0) break;
    out.push_back(e);
  }
  return out;
}

}  // namespace mcp::storage
