#include "codec/record.h"

#include <cstring>

#include "codec/byte_order.h"
#include "codec/crc32c.h"
#include "codec/frame_encoder.h"
#include "codec/frame_header.h"
#include "codec/record_format.h"

namespace mcp::codec {

namespace rl = record_layout;

std::size_t record_frame_size(const record_input& in) noexcept {
  std::size_t n = header_size + rl::fixed_size + in.key.size() + in.value.size();
  for (const auto& h : in.headers) {
    n += rl::header_name_len_size + h.name.size() + rl::header_value_len_size + h.value.size();
  }
  return n;
}

std::size_t encode_record(std::span<std::byte> out, const record_input& in,
                          std::uint32_t correlation) noexcept {
  const std::size_t n = record_frame_size(in);
  if (out.size() < n || in.headers.size() > 0xFFFF) return 0;
  std::byte* b = out.data() + header_size;
  b[rl::format_offset] = std::byte{rl::format_v1};
  b[rl::attributes_offset] = std::byte{0};
  store_le<std::uint16_t>(b + rl::header_count_offset, static_cast<std::uint16_t>(in.headers.size()));
  store_le<std::uint32_t>(b + rl::key_len_offset, static_cast<std::uint32_t>(in.key.size()));
  store_le<std::uint64_t>(b + rl::offset_offset, 0);
  store_le<std::int64_t>(b + rl::timestamp_offset, in.timestamp_ms);
  store_le<std::uint64_t>(b + rl::producer_id_offset, in.producer_id);
  store_le<std::uint32_t>(b + rl::sequence_offset, in.sequence);
  store_le<std::uint32_t>(b + rl::value_len_offset, static_cast<std::uint32_t>(in.value.size()));
  std::byte* p = b + rl::fixed_size;
  auto put = [&p](const void* src, std::size_t len) {
    if (len != 0) std::memcpy(p, src, len);
    p += len;
  };
  put(in.key.data(), in.key.size());
  put(in.value.data(), in.value.size());
  for (const auto& h : in.headers) {
    store_le<std::uint16_t>(p, static_cast<std::uint16_t>(h.name.size()));
    p += rl::header_name_len_size;
    put(h.name.data(), h.name.size());
    store_le<std::uint32_t>(p, static_cast<std::uint32_t>(h.value.size()));
    p += rl::header_value_len_size;
    put(h.value.data(), h.value.size());
  }
  seal_frame(out.first(n), opcode::record, correlation);
  return n;
}

bool record_view::header_iterator::next(record_header& out) noexcept {
  if (left_ == 0) return false;
  const auto name_len = load_le<std::uint16_t>(rest_.data());
  out.name = {reinterpret_cast<const char*>(rest_.data() + rl::header_name_len_size), name_len};
  rest_ = rest_.subspan(rl::header_name_len_size + name_len);
  const auto value_len = load_le<std::uint32_t>(rest_.data());
  out.value = rest_.subspan(rl::header_value_len_size, value_len);
  rest_ = rest_.subspan(rl::header_value_len_size + value_len);
  --left_;
  return true;
}

result<record_view, errc> decode_record(std::span<const std::byte> body) noexcept {
  const auto bad = unexpected{errc::malformed_body};
  if (body.size() < rl::fixed_size) return bad;
  const std::byte* b = body.data();
  if (std::to_integer<std::uint8_t>(b[rl::format_offset]) != rl::format_v1) return bad;
  record_view v;
  v.attributes = std::to_integer<std::uint8_t>(b[rl::attributes_offset]);
  if ((v.attributes & ~rl::known_attributes) != 0) return bad;
  v.header_count = load_le<std::uint16_t>(b + rl::header_count_offset);
  const auto key_len = load_le<std::uint32_t>(b + rl::key_len_offset);
  v.offset = load_le<std::uint64_t>(b + rl::offset_offset);
  v.timestamp_ms = load_le<std::int64_t>(b + rl::timestamp_offset);
  v.producer_id = load_le<std::uint64_t>(b + rl::producer_id_offset);
  v.sequence = load_le<std::uint32_t>(b + rl::sequence_offset);
  const auto value_len = load_le<std::uint32_t>(b + rl::value_len_offset);

  // 64-bit sums: no u32 wraparound can sneak a length past the check.
  std::size_t pos = rl::fixed_size;
  if (std::uint64_t{key_len} + value_len > body.size() - pos) return bad;
  v.key = body.subspan(pos, key_len);
  pos += key_len;
  v.value = body.subspan(pos, value_len);
  pos += value_len;
  const std::size_t headers_start = pos;
  for (std::uint32_t i = 0; i < v.header_count; ++i) {
    if (body.size() - pos < rl::header_name_len_size) return bad;
    const auto name_len = load_le<std::uint16_t>(b + pos);
    pos += rl::header_name_len_size;
    if (body.size() - pos < std::size_t{name_len} + rl::header_value_len_size) return bad;
    pos += name_len;
    const auto value_len_h = load_le<std::uint32_t>(b + pos);
    pos += rl::header_value_len_size;
    if (body.size() - pos < value_len_h) return bad;
    pos += value_len_h;
  }
  if (pos != body.size()) return bad;  // trailing bytes mean a writer we do not understand
  v.headers_bytes = body.subspan(headers_start, pos - headers_start);
  return v;
}

result<record_view, errc> decode_record_frame(std::span<const std::byte> frame,
                                              const decoder_options& opts) noexcept {
  const decode_result r = parse_frame(frame, opts);
  if (r.status == errc::need_more) return unexpected{errc::malformed_body};
  if (r.status != errc::ok) return unexpected{r.status};
  if (r.frame.header.op != opcode::record || r.frame.bytes.size() != frame.size()) {
    return unexpected{errc::malformed_body};
  }
  return decode_record(r.frame.body);
}

void stamp_record(std::span<std::byte> frame, std::uint64_t offset, std::int64_t append_time_ms,
                  crc32c_shifter& shifter, batch_place place) noexcept {
  // The stamped fields (attributes, offset, timestamp) all lie in the first 24
  // bytes of the body, so the CRC is patched from the validated one
  // (crc32c_patch24) instead of recomputed over the whole body: a record whose
  // bytes changed after validation keeps a CRC that does not match, rather than
  // getting a fresh one.
  static_assert(rl::attributes_offset < 8 && rl::offset_offset == 8 && rl::timestamp_offset == 16);
  std::byte* b = frame.data() + header_size;
  const auto w0 = load_le<std::uint64_t>(b);
  const auto old_offset = load_le<std::uint64_t>(b + rl::offset_offset);
  const auto old_ts = load_le<std::uint64_t>(b + rl::timestamp_offset);
  constexpr std::uint64_t continues_bit = std::uint64_t{rl::attr_batch_continues} << (8 * rl::attributes_offset);
  std::uint64_t w0_new = place == batch_place::more_follow ? w0 | continues_bit : w0 & ~continues_bit;
  std::uint64_t ts_new = old_ts;
  if (old_ts == 0) {
    ts_new = static_cast<std::uint64_t>(append_time_ms);
    w0_new |= std::uint64_t{rl::attr_broker_timestamp} << (8 * rl::attributes_offset);
    store_le<std::uint64_t>(b + rl::timestamp_offset, ts_new);
  }
  if (w0_new != w0) store_le<std::uint64_t>(b, w0_new);
  store_le<std::uint64_t>(b + rl::offset_offset, offset);
  const std::uint32_t crc = load_le<std::uint32_t>(frame.data() + crc_offset);
  store_le<std::uint32_t>(frame.data() + crc_offset,
                          crc32c_patch24(crc, w0 ^ w0_new, old_offset ^ offset, old_ts ^ ts_new,
                                         frame.size() - header_size, shifter));
}

void stamp_record(std::span<std::byte> frame, std::uint64_t offset, std::int64_t append_time_ms) noexcept {
  thread_local crc32c_shifter shifter;
  stamp_record(frame, offset, append_time_ms, shifter);
}

bool record_batch_continues(std::span<const std::byte> frame) noexcept {
  return (std::to_integer<std::uint8_t>(frame[header_size + rl::attributes_offset]) & rl::attr_batch_continues) != 0;
}

std::uint64_t record_offset(std::span<const std::byte> frame) noexcept {
  return load_le<std::uint64_t>(frame.data() + header_size + rl::offset_offset);
}

std::int64_t record_timestamp(std::span<const std::byte> frame) noexcept {
  return load_le<std::int64_t>(frame.data() + header_size + rl::timestamp_offset);
}

std::uint64_t record_producer_id(std::span<const std::byte> frame) noexcept {
  return load_le<std::uint64_t>(frame.data() + header_size + rl::producer_id_offset);
}

std::uint32_t record_sequence(std::span<const std::byte> frame) noexcept {
  return load_le<std::uint32_t>(frame.data() + header_size + rl::sequence_offset);
}

result<record_run, errc> validate_records(std::span<const std::byte> bytes,
                                          const decoder_options& opts) noexcept {
  record_run run;
  while (!bytes.empty()) {
    const decode_result r = parse_frame(bytes, opts);
    if (r.status == errc::need_more) return unexpected{errc::malformed_body};
    if (r.status != errc::ok) return unexpected{r.status};
    if (r.frame.header.op != opcode::record) return unexpected{errc::malformed_body};
    const auto rec = decode_record(r.frame.body);
    if (!rec) return unexpected{rec.error()};
    if (run.count == 0 || rec->timestamp_ms > run.max_timestamp_ms) run.max_timestamp_ms = rec->timestamp_ms;
    if (run.count == 0) {
      run.producer_id = rec->producer_id;
      run.first_sequence = rec->sequence;
    } else if (rec->producer_id != run.producer_id ||
               rec->sequence != static_cast<std::uint32_t>(run.first_sequence + run.count)) {
      run.one_producer_run = false;
    }
    ++run.count;
    bytes = bytes.subspan(r.frame.bytes.size());
  }
  return run;
}

}  // namespace mcp::codec
