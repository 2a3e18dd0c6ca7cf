#pragma once
// The decoded form of the 16-byte frame header (codec/frame_format.h).

#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/frame_format.h"

namespace mcp::codec {

struct frame_header {
  std::uint32_t length = 0;  // bytes after the length field
  std::uint8_t version = version_1;
  opcode op = opcode::ping;
  std::uint32_t correlation = 0;
  std::uint32_t crc = 0;

  std::size_t frame_size() const noexcept { return length_field_size + length; }
  std::size_t body_size() const noexcept { return length - header_rest_size; }
};

// Reads the fields of a complete header without validating them.
frame_header read_header(std::span<const std::byte, header_size> bytes) noexcept;

// Writes `h` as 16 bytes.
void write_header(std::span<std::byte, header_size> out, const frame_header& h) noexcept;

}  // namespace mcp::codec
