#pragma once
// Encoding MCP frames. Nothing here allocates except append_frame, which grows
// the caller's vector (control paths and tests).

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/frame_format.h"

namespace mcp::codec {

// Size of the frame that carries a body of `body_size` bytes.
constexpr std::size_t frame_size(std::size_t body_size) noexcept { return header_size + body_size; }

// Fills the header of a frame whose body already sits at frame[16..]: sets length
// from frame.size() and the CRC over the body. Lets a caller build a body in
// place after a reserved header, with no copy.
void seal_frame(std::span<std::byte> frame, opcode op, std::uint32_t correlation,
                std::uint8_t version = version_1) noexcept;

// Writes header and body into `out`. Returns the frame size, or 0 if `out` is too small.
std::size_t encode_frame(std::span<std::byte> out, opcode op, std::uint32_t correlation,
                         std::span<const std::byte> body, std::uint8_t version = version_1) noexcept;

// Appends one frame to `out`.
void append_frame(std::vector<std::byte>& out, opcode op, std::uint32_t correlation,
                  std::span<const std::byte> body, std::uint8_t version = version_1);

}  // namespace mcp::codec
