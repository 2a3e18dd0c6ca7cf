#pragma once
// Committed positions of consumer groups: per (group, topic, partition) the lowest
// offset the group has not finished. One file per group,
// <data dir>/groups/<group>/offsets, replaced atomically (storage/atomic_file.h);
// format in docs/storage.md "Group offsets".
//
// Thread and blocking: flush() and remove_group() fsync; the broker calls them from
// a helper thread or at checkpoints, never on a shard's hot path.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "storage/errc.h"

namespace mcp::storage {

inline constexpr std::uint32_t group_offsets_magic = 0x4F47434D;  // "MCGO" in file order
inline constexpr std::uint16_t group_offsets_format = 1;
inline constexpr std::size_t group_offsets_header = 16;

// 1..249 bytes of [A-Za-z0-9._-], not "." or "..": names a directory.
result<void> validate_name(std::string_view kind, std::string_view name);

class group_offsets_store {
 public:
  // (topic, partition) -> committed offset.
  using positions = std::map<std::pair<std::string, std::uint32_t>, std::uint64_t>;

  // Loads every group under <data_dir>/groups. A corrupt file is an error naming it.
  static result<group_offsets_store> open(const std::filesystem::path& data_dir);

  // In memory; flush(group) makes it durable.
  result<void> set(std::string_view group, std::string_view topic, std::uint32_t partition, std::uint64_t offset);
  result<void> flush(std::string_view group);
  std::optional<std::uint64_t> committed(std::string_view group, std::string_view topic,
                                         std::uint32_t partition) const;
  std::vector<std::string> groups() const;
  result<void> remove_group(std::string_view group);

  // The file's bytes for a group's positions (exposed for tests of the format).
  static std::vector<std::byte> encode(const positions& m);
  static result<positions> decode(std::span<const std::byte> file, const std::filesystem::path& name);

 private:
  std::filesystem::path dir_;
  std::map<std::string, positions, std::less<>> groups_;
};

}  // namespace mcp::storage
