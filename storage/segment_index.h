#pragma once
// The sparse offset index of one segment: (relative offset, position) pairs,
// strictly increasing in both, one roughly every index_interval bytes of log.
// Lookups are binary searches. Entries are kept in memory in their on-disk form
// (little-endian u32 pairs), in storage reserved up front, so an entry's bytes can
// be handed to an asynchronous write and stay put until it completes.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "storage/errc.h"

namespace mcp::storage {

static_assert(std::endian::native == std::endian::little, "index entries are written from memory as little-endian");

struct index_entry {
  std::uint32_t rel = 0;  // offset - base offset of the segment
  std::uint32_t pos = 0;  // byte position of that record in the .log
};
static_assert(sizeof(index_entry) == 8);

class segment_index {
 public:
  explicit segment_index(std::size_t capacity) { entries_.reserve(capacity); }

  // Adds an entry past the last one. False (and nothing added) when full or not
  // increasing: the index stays sparser, lookups stay correct.
  bool append(index_entry e);
  // The last entry with rel <= `rel`, or {0, 0} (the segment start) if none.
  index_entry floor(std::uint32_t rel) const noexcept;
  // The first entry with pos > `pos`, if any.
  const index_entry* first_after_position(std::uint32_t pos) const noexcept;
  // The last entry with pos <= `pos`, or {0, 0}.
  index_entry floor_position(std::uint32_t pos) const noexcept;

  std::span<const index_entry> entries() const noexcept { return entries_; }
  std::size_t size() const noexcept { return entries_.size(); }
  bool full() const noexcept { return entries_.size() == entries_.capacity(); }
  void truncate(std::size_t n) { entries_.resize(std::min(n, entries_.size())); }
  // The on-disk bytes of entries [i, i + n).
  std::span<const std::byte> bytes_of(std::size_t i, std::size_t n = 1) const noexcept {
    return std::as_bytes(std::span(entries_).subspan(i, n));
  }

  // Parses a whole .idx file. A partial trailing entry is ignored (torn write);
  // non-increasing entries end the parse (everything after is stale).
  static std::vector<index_entry> parse(std::span<const std::byte> file);

 private:
  std::vector<index_entry> entries_;
};

}  // namespace mcp::storage
