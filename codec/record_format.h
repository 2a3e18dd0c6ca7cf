#pragma once
// Layout of a RECORD frame body, version 1. A stored record *is* a RECORD frame:
// the bytes appended to a segment are the bytes a consumer receives. Spec with a
// worked example: docs/storage.md "Record".
//
// | off | size | field         |
// |   0 |    1 | format        | record format version, 1
// |   1 |    1 | attributes    | bit 0: timestamp was set by the broker (append time)
//                               bit 1: more records of the same appended batch follow
// |   2 |    2 | header_count  | number of name/value headers
// |   4 |    4 | key_len       |
// |   8 |    8 | offset        | stamped by the broker on append
// |  16 |    8 | timestamp_ms  | signed ms since the Unix epoch
// |  24 |    8 | producer_id   | 0: not an idempotent producer
// |  32 |    4 | sequence      | per (producer, partition), for deduplication
// |  36 |    4 | value_len     |
// |  40 |  key_len   | key     |
// |   . | value_len  | value   |
// |   . | headers: header_count x { u16 name_len, name, u32 value_len, value }

#include <cstddef>
#include <cstdint>

namespace mcp::codec::record_layout {

inline constexpr std::uint8_t format_v1 = 1;
inline constexpr std::size_t fixed_size = 40;

inline constexpr std::size_t format_offset = 0;
inline constexpr std::size_t attributes_offset = 1;
inline constexpr std::size_t header_count_offset = 2;
inline constexpr std::size_t key_len_offset = 4;
inline constexpr std::size_t offset_offset = 8;
inline constexpr std::size_t timestamp_offset = 16;
inline constexpr std::size_t producer_id_offset = 24;
inline constexpr std::size_t sequence_offset = 32;
inline constexpr std::size_t value_len_offset = 36;

inline constexpr std::uint8_t attr_broker_timestamp = 0x01;
// Set by the broker on every record of an appended batch but its last, so that
// recovery can drop a batch a crash cut short: a batch is stored whole or not at
// all. Records stored before the bit existed have it clear: batches of one.
inline constexpr std::uint8_t attr_batch_continues = 0x02;
inline constexpr std::uint8_t known_attributes = attr_broker_timestamp | attr_batch_continues;

inline constexpr std::size_t header_name_len_size = 2;
inline constexpr std::size_t header_value_len_size = 4;

}  // namespace mcp::codec::record_layout
