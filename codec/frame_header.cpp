#include "codec/frame_header.h"

#include "codec/byte_order.h"

namespace mcp::codec {

frame_header read_header(std::span<const std::byte, header_size> b) noexcept {
  frame_header h;
  h.length = load_le<std::uint32_t>(b.data() + length_offset);
  h.version = std::to_integer<std::uint8_t>(b[version_offset]);
  h.op = static_cast<opcode>(b[opcode_offset]);
  h.correlation = load_le<std::uint32_t>(b.data() + correlation_offset);
  h.crc = load_le<std::uint32_t>(b.data() + crc_offset);
  return h;
}

void write_header(std::span<std::byte, header_size> out, const frame_header& h) noexcept {
  store_le<std::uint32_t>(out.data() + length_offset, h.length);
  store_le<std::uint16_t>(out.data() + magic_offset, magic);
  out[version_offset] = std::byte{h.version};
  out[opcode_offset] = static_cast<std::byte>(h.op);
  store_le<std::uint32_t>(out.data() + correlation_offset, h.correlation);
  store_le<std::uint32_t>(out.data() + crc_offset, h.crc);
}

}  // namespace mcp::codec
