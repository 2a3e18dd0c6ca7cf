#pragma once
// Builds PUBLISH-style runs of RECORD frames for storage tests.

#include <cstdint>
#include <string>
#include <vector>

#include "codec/record.h"
#include "tests/support/bytes.h"

namespace mcp::test {

struct batch {
  std::vector<std::byte> bytes;
  std::uint32_t count = 0;
};

// `count` records whose values are "<prefix><i>" padded to `value_size` bytes,
// with timestamps ts0, ts0+1, ... (0 leaves them for the log to stamp), from
// idempotent producer `producer_id` with sequences first_seq, first_seq+1, ...
// (producer 0: not idempotent).
inline batch make_batch(std::uint32_t count, std::size_t value_size = 100, const std::string& prefix = "v",
                        std::int64_t ts0 = 0, std::uint64_t producer_id = 0, std::uint32_t first_seq = 0) {
  batch b;
  b.count = count;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string value = prefix + std::to_string(i);
    if (value.size() < value_size) value.resize(value_size, '.');
    codec::record_input in;
    in.timestamp_ms = ts0 == 0 ? 0 : ts0 + i;
    in.producer_id = producer_id;
    in.sequence = producer_id == 0 ? 0 : first_seq + i;
    in.value = as_bytes(value);
    const std::size_t at = b.bytes.size();
    b.bytes.resize(at + codec::record_frame_size(in));
    codec::encode_record(std::span(b.bytes).subspan(at), in);
  }
  return b;
}

}  // namespace mcp::test
