#pragma once
// Which shard owns a partition: hash(topic, partition) % shards. Stable across
// restarts (FNV-1a, not std::hash) so a partition keeps its shard.

#include <cstdint>
#include <string_view>

namespace mcp::broker {

constexpr unsigned owner_shard(std::string_view topic, std::uint32_t partition, unsigned shards) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : topic) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  for (int i = 0; i < 4; ++i) {
    h ^= (partition >> (8 * i)) & 0xFF;
    h *= 0x100000001b3ull;
  }
  return static_cast<unsigned>(h % shards);
}

}  // namespace mcp::broker
