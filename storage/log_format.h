#pragma once
// On-disk names and entry layouts of a partition directory. Spec: docs/storage.md.
//
//   <partition dir>/<base offset, 20 digits>.log   RECORD frames back to back
//                   <base offset, 20 digits>.idx   offset index entries
//                   <base offset, 20 digits>.tix   time index entries
//
// Offset index entry (8 bytes):  | 0 | 4 | relative offset (offset - base) |
//                                | 4 | 4 | byte position in .log           |
// Time index entry (12 bytes):   | 0 | 8 | max timestamp (ms) of records up to here |
//                                | 8 | 4 | relative offset of the record that follows |

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mcp::storage {

inline constexpr std::size_t offset_entry_size = 8;
inline constexpr std::size_t time_entry_size = 12;
inline constexpr std::size_t base_offset_digits = 20;

inline constexpr std::string_view log_suffix = ".log";
inline constexpr std::string_view index_suffix = ".idx";
inline constexpr std::string_view time_index_suffix = ".tix";

// "00000000000000001234" for 1234.
std::string segment_stem(std::uint64_t base_offset);
// The base offset a segment file name encodes, if `name` is "<20 digits><suffix>".
std::optional<std::uint64_t> parse_segment_name(std::string_view name, std::string_view suffix);

}  // namespace mcp::storage
