#pragma once
// Error values of the codec. Decoding untrusted bytes never throws: every failure
// is one of these, and error_code (docs/protocol.md "Error codes") is what goes
// on the wire in an ERROR frame.

#include <cstdint>

namespace mcp::codec {

// Why a frame or body could not be decoded.
enum class errc : std::uint8_t {
  ok = 0,
  need_more,            // not an error: the frame is incomplete
  bad_magic,            // stream does not start with 0x4D43
  unsupported_version,  // header version outside [min_version, max_version]
  unknown_opcode,
  frame_too_large,      // length over the configured max_frame
  frame_too_small,      // length under the rest of the header (12)
  crc_mismatch,
  malformed_body,       // a body shorter/longer than its layout, or a failed FlatBuffers verify
};

const char* errc_name(errc e) noexcept;

// Codes carried by ERROR frames. Stable numbers: they are part of the protocol.
enum class error_code : std::uint16_t {
  none = 0,
  bad_magic = 1,
  unsupported_version = 2,
  unknown_opcode = 3,
  frame_too_large = 4,
  frame_too_small = 5,
  crc_mismatch = 6,
  malformed_body = 7,
  unknown_topic = 8,
  unknown_partition = 9,
  topic_exists = 10,
  invalid_argument = 11,
  not_ready = 12,          // HELLO not done yet
  storage_error = 13,
  too_many_connections = 14,
  resource_exhausted = 15, // a limit (topics, in-flight bytes) was reached
  idle_timeout = 16,
  shutting_down = 17,
  out_of_range = 18,       // an offset outside [log start, log end]
  internal = 19,
  duplicate_sequence = 20,     // an idempotent producer's batch already stored; its offsets are no longer known
  out_of_order_sequence = 21,  // an idempotent producer's batch leaves a gap in its partition's sequence
};

const char* error_code_name(error_code c) noexcept;

// Whether a decoding failure leaves the byte stream untrustworthy, so the
// connection must be closed after the ERROR frame is sent.
constexpr bool is_fatal(errc e) noexcept {
  switch (e) {
    case errc::bad_magic:
    case errc::frame_too_large:
    case errc::frame_too_small:
    case errc::crc_mismatch:
    case errc::unsupported_version:
      return true;
    default:
      return false;
  }
}

constexpr error_code to_error_code(errc e) noexcept {
  switch (e) {
    case errc::ok:
    case errc::need_more: return error_code::none;
    case errc::bad_magic: return error_code::bad_magic;
    case errc::unsupported_version: return error_code::unsupported_version;
    case errc::unknown_opcode: return error_code::unknown_opcode;
    case errc::frame_too_large: return error_code::frame_too_large;
    case errc::frame_too_small: return error_code::frame_too_small;
    case errc::crc_mismatch: return error_code::crc_mismatch;
    case errc::malformed_body: return error_code::malformed_body;
  }
  return error_code::internal;
}

}  // namespace mcp::codec
