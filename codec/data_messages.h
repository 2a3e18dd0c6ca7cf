#pragma once
// Fixed binary layouts of the data messages (PUBLISH, ACK, FETCH, RECORDS,
// CREDIT, COMMIT, NACK, PING/PONG). Byte tables: docs/protocol.md "Data messages".
// They are not FlatBuffers so the broker can validate and forward them without
// decoding each record. Every decode checks bounds and returns malformed_body on
// anything it does not understand; decoded strings and spans are views into the body.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "codec/errc.h"
#include "codec/result.h"

namespace mcp::codec {

// Longest topic name on the wire (and on disk: a directory name).
inline constexpr std::size_t max_topic_name = 249;

// --- PUBLISH -------------------------------------------------------------------
// | 0 | 4 | partition    |
// | 4 | 4 | record_count |
// | 8 | 2 | flags        | reserved, 0
// |10 | 2 | topic_len    | 1..249
// |12 | n | topic        |
// |12+n | . | records    | record_count RECORD frames back to back
inline constexpr std::size_t publish_fixed_size = 12;
struct publish_header {
  std::uint32_t partition = 0;
  std::uint32_t record_count = 0;
  std::uint16_t flags = 0;
  std::string_view topic;
};
struct publish_view {
  publish_header header;
  std::span<const std::byte> records;  // not validated here: see validate_records
};
// Bytes of the PUBLISH body before the records.
constexpr std::size_t publish_prefix_size(std::string_view topic) noexcept {
  return publish_fixed_size + topic.size();
}
// Writes the prefix; returns its size, or 0 if `out` is too small or the topic is bad.
std::size_t encode_publish_prefix(std::span<std::byte> out, const publish_header& h) noexcept;
result<publish_view, errc> decode_publish(std::span<const std::byte> body) noexcept;

// --- ACK (reply to PUBLISH, same correlation) ----------------------------------
// | 0 | 8 | first_offset |
// | 8 | 4 | count        |
// |12 | 4 | partition    |
// |16 | 2 | error_code   | 0 = stored as durable as the topic asks
// |18 | 2 | flags        | bit 0: duplicate (already stored by an idempotent producer)
// |20 | 4 | reserved     | 0
inline constexpr std::size_t ack_size = 24;
inline constexpr std::uint16_t ack_flag_duplicate = 0x1;
struct ack_body {
  std::uint64_t first_offset = 0;
  std::uint32_t count = 0;
  std::uint32_t partition = 0;
  std::uint16_t error = 0;
  std::uint16_t flags = 0;
  bool operator==(const ack_body&) const = default;
};
void encode_ack(std::span<std::byte, ack_size> out, const ack_body& a) noexcept;
result<ack_body, errc> decode_ack(std::span<const std::byte> body) noexcept;

// --- FETCH ----------------------------------------------------------------------
// | 0 | 8 | offset       | with flag by_timestamp: a timestamp in ms (i64)
// | 8 | 4 | partition    |
// |12 | 4 | max_bytes    |
// |16 | 4 | max_wait_ms  | 0: answer at once
// |20 | 2 | flags        | bit 0 by_timestamp: start at the first record with timestamp >= offset
//                          | bit 1 follow: after each answer, the broker goes on from its end
//                          | bit 2 windowed (with follow only): answers only within a byte window
// |22 | 2 | topic_len    | 1..249
// |24 | n | topic        |
inline constexpr std::size_t fetch_fixed_size = 24;
inline constexpr std::uint16_t fetch_flag_by_timestamp = 0x1;
// A FETCH that stays: the broker answers it like any FETCH, then keeps fetching from
// where each answer ended (with the same correlation), one request at a time, and
// only while the connection's unsent output is small (docs/protocol.md "Following").
inline constexpr std::uint16_t fetch_flag_follow = 0x2;
// A follow with a byte window: the broker sends at most `max_bytes` of records
// beyond what the consumer granted with WINDOW frames, so a consumer that falls
// behind stops the pushes and its next answer is a large one (docs/protocol.md
// "Windowed following"). Only with fetch_flag_follow.
inline constexpr std::uint16_t fetch_flag_windowed = 0x4;
struct fetch_body {
  std::uint64_t offset = 0;
  std::uint32_t partition = 0;
  std::uint32_t max_bytes = 0;
  std::uint32_t max_wait_ms = 0;
  std::uint16_t flags = 0;
  std::string_view topic;
  bool operator==(const fetch_body&) const = default;
};
void append_fetch(std::vector<std::byte>& out, const fetch_body& f);
result<fetch_body, errc> decode_fetch(std::span<const std::byte> body) noexcept;

// --- RECORDS (reply to FETCH) -----------------------------------------------------
// The body is only this header; the `byte_count` bytes of RECORD frames follow it on
// the stream as frames of their own, so the broker can send them straight from the
// segment (sendfile/splice) and each still carries its own CRC.
// | 0 | 8 | first_offset     | offset of the first record that follows
// | 8 | 8 | high_watermark   | log end: the next offset to be written
// |16 | 8 | log_start_offset |
// |24 | 4 | partition        |
// |28 | 4 | record_count     |
// |32 | 4 | byte_count       |
// |36 | 4 | reserved         | 0
inline constexpr std::size_t records_size = 40;
struct records_body {
  std::uint64_t first_offset = 0;
  std::uint64_t high_watermark = 0;
  std::uint64_t log_start_offset = 0;
  std::uint32_t partition = 0;
  std::uint32_t record_count = 0;
  std::uint32_t byte_count = 0;
  bool operator==(const records_body&) const = default;
};
void encode_records(std::span<std::byte, records_size> out, const records_body& r) noexcept;
result<records_body, errc> decode_records(std::span<const std::byte> body) noexcept;

// --- DELIVERY (docs/groups.md): leased records of a group subscription ------------------
// | 0 | 8 | first_offset   |
// | 8 | 4 | partition      |
// |12 | 4 | record_count   | >= 1
// |16 | 4 | byte_count     | RECORD frames that follow on the stream
// |20 | 4 | subscription   | correlation id of the SUBSCRIBE
// |24 | 2 | delivery_count | 1 for a first delivery
// |26 | 2 | flags          | reserved, 0
// |28 | 4 | reserved       | 0
inline constexpr std::size_t delivery_size = 32;
struct delivery_body {
  std::uint64_t first_offset = 0;
  std::uint32_t partition = 0;
  std::uint32_t record_count = 0;
  std::uint32_t byte_count = 0;
  std::uint32_t subscription = 0;
  std::uint16_t delivery_count = 0;
  bool operator==(const delivery_body&) const = default;
};
void encode_delivery(std::span<std::byte, delivery_size> out, const delivery_body& d) noexcept;
result<delivery_body, errc> decode_delivery(std::span<const std::byte> body) noexcept;

// --- CREDIT -----------------------------------------------------------------------
// | 0 | 4 | subscription | correlation id of the SUBSCRIBE
// | 4 | 4 | records      | more records the member may hold unacked
inline constexpr std::size_t credit_size = 8;
struct credit_body {
  std::uint32_t subscription = 0;
  std::uint32_t records = 0;
  bool operator==(const credit_body&) const = default;
};
void encode_credit(std::span<std::byte, credit_size> out, const credit_body& c) noexcept;
result<credit_body, errc> decode_credit(std::span<const std::byte> body) noexcept;

// --- WINDOW (client grants a windowed follow more bytes) ---------------------------
// | 0 | 4 | fetch | correlation id of the FETCH (follow + windowed) it refers to
// | 4 | 4 | bytes | more record bytes the broker may send on it; >= 1
inline constexpr std::size_t window_size = 8;
struct window_body {
  std::uint32_t fetch = 0;
  std::uint32_t bytes = 0;
  bool operator==(const window_body&) const = default;
};
void encode_window(std::span<std::byte, window_size> out, const window_body& w) noexcept;
result<window_body, errc> decode_window(std::span<const std::byte> body) noexcept;

// --- COMMIT (group member acknowledges processed records) ----------------------------
// | 0 | 4 | subscription |
// | 4 | 4 | partition    |
// | 8 | 4 | range_count  | 1..max_commit_ranges
// |12 | 4 | reserved     | 0
// |16 | 16 x range_count | { u64 first, u64 last } inclusive, first <= last
inline constexpr std::size_t commit_fixed_size = 16;
inline constexpr std::size_t commit_range_size = 16;
inline constexpr std::uint32_t max_commit_ranges = 4096;
struct offset_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  bool operator==(const offset_range&) const = default;
};
struct commit_view {
  std::uint32_t subscription = 0;
  std::uint32_t partition = 0;
  std::uint32_t range_count = 0;
  std::span<const std::byte> ranges_bytes;
  offset_range range(std::uint32_t i) const noexcept;
};
void append_commit(std::vector<std::byte>& out, std::uint32_t subscription, std::uint32_t partition,
                   std::span<const offset_range> ranges);
result<commit_view, errc> decode_commit(std::span<const std::byte> body) noexcept;

// --- NACK -----------------------------------------------------------------------------
// | 0 | 4 | subscription |
// | 4 | 4 | partition    |
// | 8 | 8 | offset       |
// |16 | 4 | delay_ms     | redeliver no sooner than this
// |20 | 2 | flags        | nack_flag_*; other bits must be 0
// |22 | 2 | reserved     | 0
inline constexpr std::size_t nack_size = 24;
// Give up on the record: it goes to the group's dead-letter topic now (reason
// "rejected"), whatever its delivery count; delay_ms is then ignored.
inline constexpr std::uint16_t nack_flag_dead_letter = 0x0001;
struct nack_body {
  std::uint32_t subscription = 0;
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint32_t delay_ms = 0;
  std::uint16_t flags = 0;
  bool operator==(const nack_body&) const = default;
};
void encode_nack(std::span<std::byte, nack_size> out, const nack_body& n) noexcept;
result<nack_body, errc> decode_nack(std::span<const std::byte> body) noexcept;

// --- PING / PONG ------------------------------------------------------------------------
// | 0 | 8 | token | PONG echoes the PING's token
inline constexpr std::size_t ping_size = 8;
void encode_ping(std::span<std::byte, ping_size> out, std::uint64_t token) noexcept;
result<std::uint64_t, errc> decode_ping(std::span<const std::byte> body) noexcept;

// A topic name is 1..249 bytes of [A-Za-z0-9._-] and not "." or "..": it names a directory.
bool is_valid_topic_name(std::string_view name) noexcept;

}  // namespace mcp::codec
