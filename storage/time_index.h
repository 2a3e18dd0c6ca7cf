#pragma once
// The time index of one segment: (max timestamp so far, relative offset) pairs
// added at the same cadence as offset index entries. Timestamps of records need
// not be monotonic (producers set them), so each entry holds the largest one seen
// up to that record: the first record with timestamp >= T lies at or after the
// entry before the first entry whose max reaches T.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "storage/log_format.h"

namespace mcp::storage {

struct time_entry {
  std::int64_t max_ts = 0;
  std::uint32_t rel = 0;
};

class time_index {
 public:
  explicit time_index(std::size_t capacity);

  bool append(time_entry e);
  // Where to start scanning for the first record with timestamp >= ts: the
  // relative offset of the last entry whose max is < ts (0 if none).
  std::uint32_t scan_start(std::int64_t ts) const noexcept;
  // Whether any entry's max reaches ts (if none, only the tail after the last
  // entry may hold such a record).
  std::size_t size() const noexcept { return count_; }
  time_entry at(std::size_t i) const noexcept;
  void truncate(std::size_t n) noexcept { count_ = std::min(n, count_); }
  bool full() const noexcept { return count_ == capacity_; }
  // The on-disk bytes of entries [i, i + n).
  std::span<const std::byte> bytes_of(std::size_t i, std::size_t n = 1) const noexcept {
    return std::span(bytes_).subspan(i * time_entry_size, n * time_entry_size);
  }

  static std::vector<time_entry> parse(std::span<const std::byte> file);

 private:
  std::vector<std::byte> bytes_;  // sized once: entries never move while a write is in flight
  std::size_t count_ = 0;
  std::size_t capacity_;
};

}  // namespace mcp::storage
