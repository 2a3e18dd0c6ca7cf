#pragma once
// What mcp-bench puts in each message value so consumers can measure and verify:
// | 0 | 8 | send time: steady-clock ns when the message was due (scheduled) |
// | 8 | 4 | producer index |
// |12 | 4 | reserved |
// |16 | 8 | sequence of this producer on this partition (0, 1, 2, ...) |
// |24 | . | padding up to --size |

#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/byte_order.h"

namespace mcp::bench {

inline constexpr std::size_t payload_min = 24;

struct payload {
  std::uint64_t send_ns = 0;
  std::uint32_t producer = 0;
  std::uint64_t seq = 0;
};

inline void write_payload(std::span<std::byte> v, const payload& p) noexcept {
  codec::store_le<std::uint64_t>(v.data(), p.send_ns);
  codec::store_le<std::uint32_t>(v.data() + 8, p.producer);
  codec::store_le<std::uint32_t>(v.data() + 12, 0);
  codec::store_le<std::uint64_t>(v.data() + 16, p.seq);
}

inline bool read_payload(std::span<const std::byte> v, payload& out) noexcept {
  if (v.size() < payload_min) return false;
  out.send_ns = codec::load_le<std::uint64_t>(v.data());
  out.producer = codec::load_le<std::uint32_t>(v.data() + 8);
  out.seq = codec::load_le<std::uint64_t>(v.data() + 16);
  return true;
}

}  // namespace mcp::bench
