#pragma once
// Building, reading and stamping RECORD frames (layout in codec/record_format.h).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "codec/crc32c.h"
#include "codec/errc.h"
#include "codec/frame_decoder.h"
#include "codec/result.h"

namespace mcp::codec {

struct record_header {
  std::string_view name;
  std::span<const std::byte> value;
};

// What a producer puts in a record. Views: the caller owns the bytes.
struct record_input {
  std::int64_t timestamp_ms = 0;  // 0: the broker stamps its append time
  std::uint64_t producer_id = 0;
  std::uint32_t sequence = 0;
  std::span<const std::byte> key;
  std::span<const std::byte> value;
  std::span<const record_header> headers;
};

// Size of the RECORD frame (header included) that encode_record writes for `in`.
std::size_t record_frame_size(const record_input& in) noexcept;

// Writes a RECORD frame with offset 0 (the broker stamps the real one). Returns
// the frame size, or 0 if `out` is too small.
std::size_t encode_record(std::span<std::byte> out, const record_input& in,
                          std::uint32_t correlation = 0) noexcept;

// A decoded record body. Views into the frame's bytes.
class record_view {
 public:
  std::uint8_t attributes = 0;
  std::uint64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::uint64_t producer_id = 0;
  std::uint32_t sequence = 0;
  std::span<const std::byte> key;
  std::span<const std::byte> value;
  std::uint16_t header_count = 0;
  std::span<const std::byte> headers_bytes;  // validated by decode_record

  // Walks the headers; they were bounds-checked by decode_record.
  class header_iterator {
   public:
    header_iterator(std::span<const std::byte> rest, std::uint16_t left) : rest_(rest), left_(left) {}
    bool next(record_header& out) noexcept;

   private:
    std::span<const std::byte> rest_;
    std::uint16_t left_;
  };
  header_iterator headers() const noexcept { return {headers_bytes, header_count}; }
};

// Checks a RECORD body (format version, lengths, headers) and returns views into it.
result<record_view, errc> decode_record(std::span<const std::byte> body) noexcept;

// Decodes a whole RECORD frame: frame checks (magic, CRC...) then decode_record.
result<record_view, errc> decode_record_frame(std::span<const std::byte> frame,
                                              const decoder_options& opts = {}) noexcept;

// Sets the offset of an encoded RECORD frame, and its timestamp to
// `append_time_ms` if the producer left it 0, and updates the CRC for the change
// (crc32c_patch: it does not read the rest of the body). The frame must have been
// validated (validate_records): its CRC must be right before the stamp, and then
// it is right after. `shifter` caches per record size; pass one for a batch.
// `place` sets or clears the batch-continues attribute (record_format.h): every
// record of a stored batch but its last is `more_follow`.
enum class batch_place : std::uint8_t { last, more_follow };
void stamp_record(std::span<std::byte> frame, std::uint64_t offset, std::int64_t append_time_ms,
                  crc32c_shifter& shifter, batch_place place = batch_place::last) noexcept;
// True if the record's batch-continues attribute is set (no validation).
bool record_batch_continues(std::span<const std::byte> frame) noexcept;
void stamp_record(std::span<std::byte> frame, std::uint64_t offset, std::int64_t append_time_ms) noexcept;

// The offset stamped in an encoded RECORD frame (no validation).
std::uint64_t record_offset(std::span<const std::byte> frame) noexcept;
std::int64_t record_timestamp(std::span<const std::byte> frame) noexcept;
std::uint64_t record_producer_id(std::span<const std::byte> frame) noexcept;
std::uint32_t record_sequence(std::span<const std::byte> frame) noexcept;

// What validate_records found in a run of RECORD frames.
struct record_run {
  std::uint32_t count = 0;
  std::int64_t max_timestamp_ms = 0;
  // Idempotence: the first record's producer id and sequence, and whether every
  // record shares that producer id with sequences increasing by one. A batch from
  // an idempotent producer (producer_id != 0) must be one such run.
  std::uint64_t producer_id = 0;
  std::uint32_t first_sequence = 0;
  bool one_producer_run = true;
};

// Checks that `bytes` is exactly a run of well-formed RECORD frames (frame
// checks, CRC, record layout), with nothing left over. A PUBLISH batch is
// validated this way before anything touches the log.
result<record_run, errc> validate_records(std::span<const std::byte> bytes,
                                          const decoder_options& opts = {}) noexcept;

}  // namespace mcp::codec
