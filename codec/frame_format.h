#pragma once
// Constants of the MCP frame header, shared by the encoder and the decoder.
// The byte-level specification is docs/protocol.md ("Frame header"); a test
// (tests/codec/frame_encoder_test.cpp) checks the worked example printed there.

#include <cstddef>
#include <cstdint>

namespace mcp::codec {

// | off | size | field       |
// |   0 |    4 | length      |  bytes after this field: 12 + body size
// |   4 |    2 | magic       |  0x4D43, on the wire 0x43 0x4D ("CM")
// |   6 |    1 | version     |
// |   7 |    1 | opcode      |
// |   8 |    4 | correlation |
// |  12 |    4 | crc32c      |  CRC32C of the body only
// |  16 |  ... | body        |
inline constexpr std::size_t header_size = 16;
inline constexpr std::size_t length_field_size = 4;
// What `length` counts besides the body: magic, version, opcode, correlation, crc.
inline constexpr std::uint32_t header_rest_size = header_size - length_field_size;

inline constexpr std::size_t length_offset = 0;
inline constexpr std::size_t magic_offset = 4;
inline constexpr std::size_t version_offset = 6;
inline constexpr std::size_t opcode_offset = 7;
inline constexpr std::size_t correlation_offset = 8;
inline constexpr std::size_t crc_offset = 12;

inline constexpr std::uint16_t magic = 0x4D43;

// Protocol versions this build speaks. The header layout is the same in every
// version; a version only changes bodies. HELLO negotiates one.
inline constexpr std::uint8_t version_1 = 1;
inline constexpr std::uint8_t min_version = version_1;
inline constexpr std::uint8_t max_version = version_1;

// Largest frame a peer may send unless configured otherwise (whole frame, header included).
inline constexpr std::uint32_t default_max_frame = 8u << 20;

enum class opcode : std::uint8_t {
  hello = 0x01,         // control (FlatBuffers Hello)
  hello_ok = 0x02,      // control (FlatBuffers HelloOk)
  publish = 0x03,       // data: publish_header + RECORD frames
  ack = 0x04,           // data: publish acknowledgement
  fetch = 0x05,         // data: fetch request
  records = 0x06,       // data: records_header; RECORD frames follow as frames of their own
  subscribe = 0x07,     // control (FlatBuffers Subscribe)
  credit = 0x08,        // data: grant more records to a group member
  commit = 0x09,        // data: group member completes offset ranges
  nack = 0x0A,          // data: group member asks for redelivery after a delay
  ping = 0x0B,          // data: 8-byte token
  pong = 0x0C,          // data: the token of the PING
  error = 0x0D,         // control (FlatBuffers Error)
  metadata = 0x0E,      // control (FlatBuffers MetadataRequest)
  metadata_ok = 0x0F,   // control (FlatBuffers MetadataReply)
  create_topic = 0x10,  // control (FlatBuffers CreateTopic)
  delete_topic = 0x11,  // control (FlatBuffers DeleteTopic)
  ok = 0x12,            // empty body: the request with this correlation succeeded
  record = 0x13,        // a stored record (docs/storage.md "Record"); also inside PUBLISH
  delivery = 0x14,      // data: delivery_body; leased RECORD frames follow (docs/groups.md)
  groups = 0x15,        // control (FlatBuffers GroupsRequest)
  groups_ok = 0x16,     // control (FlatBuffers GroupsReply)
  window = 0x17,        // data: grant a windowed follow more record bytes
};

inline constexpr std::uint8_t min_opcode = 0x01;
inline constexpr std::uint8_t max_opcode = 0x17;

constexpr bool is_known_opcode(std::uint8_t op) noexcept {
  return op >= min_opcode && op <= max_opcode;
}

const char* opcode_name(opcode op) noexcept;

}  // namespace mcp::codec
