#include "codec/control.h"

#include "codec/frame_encoder.h"
#include "codec/frame_format.h"

namespace mcp::codec {

void append_control_frame(std::vector<std::byte>& out, opcode op, std::uint32_t correlation,
                          const flatbuffers::FlatBufferBuilder& fbb) {
  const auto* p = reinterpret_cast<const std::byte*>(fbb.GetBufferPointer());
  append_frame(out, op, correlation, {p, fbb.GetSize()});
}

void append_error(std::vector<std::byte>& out, std::uint32_t correlation, error_code code,
                  std::string_view message) {
  flatbuffers::FlatBufferBuilder fbb(128 + message.size());
  const auto text = fbb.CreateString(message.data(), message.size());
  fb::ErrorBuilder b(fbb);
  b.add_code(static_cast<std::uint16_t>(code));
  b.add_message(text);
  b.add_min_version(min_version);
  b.add_max_version(max_version);
  fbb.Finish(b.Finish());
  append_control_frame(out, opcode::error, correlation, fbb);
}

}  // namespace mcp::codec
