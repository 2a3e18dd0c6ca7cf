#pragma once
// Which partition a keyed record goes to. The hash is part of the client's
// contract: records with the same key land in the same partition for every
// producer of every version, as long as the partition count stays the same.
//
//   partition = fnv1a_32(key) % partitions
//
// FNV-1a 32-bit: offset basis 2166136261, prime 16777619, one byte at a time
// (xor, then multiply). fnv1a_32("") = 2166136261; fnv1a_32("a") = 0xE40C292C.

#include <cstddef>
#include <cstdint>
#include <span>

namespace mcp::client {

constexpr std::uint32_t fnv1a_32(std::span<const std::byte> bytes) noexcept {
  std::uint32_t h = 2166136261u;
  for (const std::byte b : bytes) {
    h ^= static_cast<std::uint32_t>(b);
    h *= 16777619u;
  }
  return h;
}

constexpr std::uint32_t partition_for_key(std::span<const std::byte> key, std::uint32_t partitions) noexcept {
  return partitions == 0 ? 0 : fnv1a_32(key) % partitions;
}

}  // namespace mcp::client
