#pragma once
// The recovery point of a partition log: the base offset of its oldest segment
// that may hold data no fdatasync has covered yet. Every segment below it is on
// the disk whole; after a machine crash (storage/run_marker.h) partition_log::open
// validates in full every segment from it on, however many rolls happened while
// seals were slow (docs/storage.md "After a machine crash").
//
// The file `<partition dir>/recovery-point`, 20 bytes, overwritten in place:
//
//   | off | size | field                                   |
//   |   0 |    4 | magic 0x5052434D ("MCRP" little-endian) |
//   |   4 |    2 | format version, 1                       |
//   |   6 |    2 | reserved, 0                             |
//   |   8 |    8 | base offset                             |
//   |  16 |    4 | CRC32C of bytes 0..15                   |
//
// The point only ever names a segment once everything below it is synced, so a
// write of it that a crash loses leaves an older, lower point: more to validate,
// never less. A torn or unreadable file means "validate every segment".

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>

#include "storage/errc.h"

namespace mcp::storage {

inline constexpr std::size_t recovery_point_size = 20;
inline constexpr std::uint32_t recovery_point_magic = 0x5052434D;
inline constexpr std::uint16_t recovery_point_format = 1;
inline constexpr std::string_view recovery_point_name = "recovery-point";

std::array<std::byte, recovery_point_size> encode_recovery_point(std::uint64_t base) noexcept;
// corrupt, saying what is wrong, for anything encode_recovery_point did not make.
result<std::uint64_t> decode_recovery_point(std::span<const std::byte> bytes);

// The point stored in `dir`: nullopt when there is no file (a log older than the
// file, or one never opened); corrupt (naming the file) when it is bad. Blocking.
result<std::optional<std::uint64_t>> read_recovery_point(const std::filesystem::path& dir);

// Opens `dir`'s file for later in-place writes, creating it if needed, and makes
// `base` durable in it unless `stored` already says so. A new file's name is made
// durable by fsync of `dir_fd` (the log's directory), as are the others' when
// `sync_dir` (a new log's first segment). Returns the open descriptor (the
// caller closes it). Blocking: for partition_log::open.
result<int> open_recovery_point(const std::filesystem::path& dir, int dir_fd, std::uint64_t base,
                                std::optional<std::uint64_t> stored, bool sync_dir);

}  // namespace mcp::storage
