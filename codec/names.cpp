// Human-readable names of codec enums, for logs and ERROR texts.
#include "codec/errc.h"
#include "codec/frame_format.h"

namespace mcp::codec {

const char* opcode_name(opcode op) noexcept {
  switch (op) {
    case opcode::hello: return "HELLO";
    case opcode::hello_ok: return "HELLO_OK";
    case opcode::publish: return "PUBLISH";
    case opcode::ack: return "ACK";
    case opcode::fetch: return "FETCH";
    case opcode::records: return "RECORDS";
    case opcode::subscribe: return "SUBSCRIBE";
    case opcode::credit: return "CREDIT";
    case opcode::commit: return "COMMIT";
    case opcode::nack: return "NACK";
    case opcode::ping: return "PING";
    case opcode::pong: return "PONG";
    case opcode::error: return "ERROR";
    case opcode::metadata: return "METADATA";
    case opcode::metadata_ok: return "METADATA_OK";
    case opcode::create_topic: return "CREATE_TOPIC";
    case opcode::delete_topic: return "DELETE_TOPIC";
    case opcode::ok: return "OK";
    case opcode::record: return "RECORD";
    case opcode::delivery: return "DELIVERY";
    case opcode::groups: return "GROUPS";
    case opcode::groups_ok: return "GROUPS_OK";
    case opcode::window: return "WINDOW";
  }
  return "UNKNOWN";
}

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::need_more: return "need more bytes";
    case errc::bad_magic: return "bad magic";
    case errc::unsupported_version: return "unsupported version";
    case errc::unknown_opcode: return "unknown opcode";
    case errc::frame_too_large: return "frame too large";
    case errc::frame_too_small: return "frame too small";
    case errc::crc_mismatch: return "crc mismatch";
    case errc::malformed_body: return "malformed body";
  }
  return "unknown error";
}

const char* error_code_name(error_code c) noexcept {
  switch (c) {
    case error_code::none: return "NONE";
    case error_code::bad_magic: return "BAD_MAGIC";
    case error_code::unsupported_version: return "UNSUPPORTED_VERSION";
    case error_code::unknown_opcode: return "UNKNOWN_OPCODE";
    case error_code::frame_too_large: return "FRAME_TOO_LARGE";
    case error_code::frame_too_small: return "FRAME_TOO_SMALL";
    case error_code::crc_mismatch: return "CRC_MISMATCH";
    case error_code::malformed_body: return "MALFORMED_BODY";
    case error_code::unknown_topic: return "UNKNOWN_TOPIC";
    case error_code::unknown_partition: return "UNKNOWN_PARTITION";
    case error_code::topic_exists: return "TOPIC_EXISTS";
    case error_code::invalid_argument: return "INVALID_ARGUMENT";
    case error_code::not_ready: return "NOT_READY";
    case error_code::storage_error: return "STORAGE_ERROR";
    case error_code::too_many_connections: return "TOO_MANY_CONNECTIONS";
    case error_code::resource_exhausted: return "RESOURCE_EXHAUSTED";
    case error_code::idle_timeout: return "IDLE_TIMEOUT";
    case error_code::shutting_down: return "SHUTTING_DOWN";
    case error_code::out_of_range: return "OUT_OF_RANGE";
    case error_code::internal: return "INTERNAL";
    case error_code::duplicate_sequence: return "DUPLICATE_SEQUENCE";
    case error_code::out_of_order_sequence: return "OUT_OF_ORDER_SEQUENCE";
  }
  return "UNKNOWN";
}

}  // namespace mcp::codec
