#include "codec/frame_encoder.h"

#include <cassert>
#include <cstring>

#include "codec/crc32c.h"
#include "codec/frame_header.h"

namespace mcp::codec {

void seal_frame(std::span<std::byte> frame, opcode op, std::uint32_t correlation,
                std::uint8_t version) noexcept {
  assert(frame.size() >= header_size);
  frame_header h;
  h.length = static_cast<std::uint32_t>(frame.size() - length_field_size);
  h.version = version;
  h.op = op;
  h.correlation = correlation;
  h.crc = crc32c(frame.subspan(header_size));
  write_header(frame.first<header_size>(), h);
}

std::size_t encode_frame(std::span<std::byte> out, opcode op, std::uint32_t correlation,
                         std::span<const std::byte> body, std::uint8_t version) noexcept {
  const std::size_t n = frame_size(body.size());
  if (out.size() < n) return 0;
  if (!body.empty()) std::memcpy(out.data() + header_size, body.data(), body.size());
  seal_frame(out.first(n), op, correlation, version);
  return n;
}

void append_frame(std::vector<std::byte>& out, opcode op, std::uint32_t correlation,
                  std::span<const std::byte> body, std::uint8_t version) {
  const std::size_t at = out.size();
  out.resize(at + frame_size(body.size()));
  encode_frame(std::span(out).subspan(at), op, correlation, body, version);
}

}  // namespace mcp::codec
