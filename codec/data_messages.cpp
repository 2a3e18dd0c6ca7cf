#include "codec/data_messages.h"

#include <cstring>

#include "codec/byte_order.h"

namespace mcp::codec {

namespace {

constexpr auto malformed = unexpected{errc::malformed_body};

std::string_view view_string(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

void copy_string(std::byte* out, std::string_view s) noexcept {
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
}

bool reserved_zero(std::span<const std::byte> body, std::size_t at, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (body[at + i] != std::byte{0}) return false;
  }
  return true;
}

}  // namespace

bool is_valid_topic_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_topic_name || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::size_t encode_publish_prefix(std::span<std::byte> out, const publish_header& h) noexcept {
  const std::size_t n = publish_prefix_size(h.topic);
  if (out.size() < n || !is_valid_topic_name(h.topic)) return 0;
  std::byte* b = out.data();
  store_le<std::uint32_t>(b + 0, h.partition);
  store_le<std::uint32_t>(b + 4, h.record_count);
  store_le<std::uint16_t>(b + 8, h.flags);
  store_le<std::uint16_t>(b + 10, static_cast<std::uint16_t>(h.topic.size()));
  copy_string(b + publish_fixed_size, h.topic);
  return n;
}

result<publish_view, errc> decode_publish(std::span<const std::byte> body) noexcept {
  if (body.size() < publish_fixed_size) return malformed;
  const std::byte* b = body.data();
  publish_view v;
  v.header.partition = load_le<std::uint32_t>(b + 0);
  v.header.record_count = load_le<std::uint32_t>(b + 4);
  v.header.flags = load_le<std::uint16_t>(b + 8);
  const auto topic_len = load_le<std::uint16_t>(b + 10);
  if (v.header.flags != 0) return malformed;
  if (body.size() - publish_fixed_size < topic_len) return malformed;
  v.header.topic = view_string(body.subspan(publish_fixed_size, topic_len));
  if (!is_valid_topic_name(v.header.topic)) return malformed;
  v.records = body.subspan(publish_fixed_size + topic_len);
  if (v.header.record_count == 0 || v.records.empty()) return malformed;
  return v;
}

void encode_ack(std::span<std::byte, ack_size> out, const ack_body& a) noexcept {
  std::byte* b = out.data();
  store_le<std::uint64_t>(b + 0, a.first_offset);
  store_le<std::uint32_t>(b + 8, a.count);
  store_le<std::uint32_t>(b + 12, a.partition);
  store_le<std::uint16_t>(b + 16, a.error);
  store_le<std::uint16_t>(b + 18, a.flags);
  store_le<std::uint32_t>(b + 20, 0);
}

result<ack_body, errc> decode_ack(std::span<const std::byte> body) noexcept {
  if (body.size() != ack_size || !reserved_zero(body, 20, 4)) return malformed;
  const std::byte* b = body.data();
  ack_body a;
  a.first_offset = load_le<std::uint64_t>(b + 0);
  a.count = load_le<std::uint32_t>(b + 8);
  a.partition = load_le<std::uint32_t>(b + 12);
  a.error = load_le<std::uint16_t>(b + 16);
  a.flags = load_le<std::uint16_t>(b + 18);
  return a;
}

void append_fetch(std::vector<std::byte>& out, const fetch_body& f) {
  const std::size_t at = out.size();
  out.resize(at + fetch_fixed_size + f.topic.size());
  std::byte* b = out.data() + at;
  store_le<std::uint64_t>(b + 0, f.offset);
  store_le<std::uint32_t>(b + 8, f.partition);
  store_le<std::uint32_t>(b + 12, f.max_bytes);
  store_le<std::uint32_t>(b + 16, f.max_wait_ms);
  store_le<std::uint16_t>(b + 20, f.flags);
  store_le<std::uint16_t>(b + 22, static_cast<std::uint16_t>(f.topic.size()));
  copy_string(b + fetch_fixed_size, f.topic);
}

result<fetch_body, errc> decode_fetch(std::span<const std::byte> body) noexcept {
  if (body.size() < fetch_fixed_size) return malformed;
  const std::byte* b = body.data();
  fetch_body f;
  f.offset = load_le<std::uint64_t>(b + 0);
  f.partition = load_le<std::uint32_t>(b + 8);
  f.max_bytes = load_le<std::uint32_t>(b + 12);
  f.max_wait_ms = load_le<std::uint32_t>(b + 16);
  f.flags = load_le<std::uint16_t>(b + 20);
  const auto topic_len = load_le<std::uint16_t>(b + 22);
  if ((f.flags & ~(fetch_flag_by_timestamp | fetch_flag_follow | fetch_flag_windowed)) != 0 ||
      body.size() != fetch_fixed_size + topic_len) {
    return malformed;
  }
  // A window bounds the pushes of a follow; a plain FETCH has only its max_bytes.
  if ((f.flags & fetch_flag_windowed) != 0 && (f.flags & fetch_flag_follow) == 0) return malformed;
  f.topic = view_string(body.subspan(fetch_fixed_size, topic_len));
  if (!is_valid_topic_name(f.topic)) return malformed;
  return f;
}

void encode_records(std::span<std::byte, records_size> out, const records_body& r) noexcept {
  std::byte* b = out.data();
  store_le<std::uint64_t>(b + 0, r.first_offset);
  store_le<std::uint64_t>(b + 8, r.high_watermark);
  store_le<std::uint64_t>(b + 16, r.log_start_offset);
  store_le<std::uint32_t>(b + 24, r.partition);
  store_le<std::uint32_t>(b + 28, r.record_count);
  store_le<std::uint32_t>(b + 32, r.byte_count);
  store_le<std::uint32_t>(b + 36, 0);
}

result<records_body, errc> decode_records(std::span<const std::byte> body) noexcept {
  if (body.size() != records_size || !reserved_zero(body, 36, 4)) return malformed;
  const std::byte* b = body.data();
  records_body r;
  r.first_offset = load_le<std::uint64_t>(b + 0);
  r.high_watermark = load_le<std::uint64_t>(b + 8);
  r.log_start_offset = load_le<std::uint64_t>(b + 16);
  r.partition = load_le<std::uint32_t>(b + 24);
  r.record_count = load_le<std::uint32_t>(b + 28);
  r.byte_count = load_le<std::uint32_t>(b + 32);
  if ((r.record_count == 0) != (r.byte_count == 0)) return malformed;
  return r;
}

void encode_delivery(std::span<std::byte, delivery_size> out, const delivery_body& d) noexcept {
  std::byte* b = out.data();
  store_le<std::uint64_t>(b + 0, d.first_offset);
  store_le<std::uint32_t>(b + 8, d.partition);
  store_le<std::uint32_t>(b + 12, d.record_count);
  store_le<std::uint32_t>(b + 16, d.byte_count);
  store_le<std::uint32_t>(b + 20, d.subscription);
  store_le<std::uint16_t>(b + 24, d.delivery_count);
  store_le<std::uint16_t>(b + 26, 0);
  store_le<std::uint32_t>(b + 28, 0);
}

result<delivery_body, errc> decode_delivery(std::span<const std::byte> body) noexcept {
  if (body.size() != delivery_size || !reserved_zero(body, 26, 6)) return malformed;
  const std::byte* b = body.data();
  delivery_body d;
  d.first_offset = load_le<std::uint64_t>(b + 0);
  d.partition = load_le<std::uint32_t>(b + 8);
  d.record_count = load_le<std::uint32_t>(b + 12);
  d.byte_count = load_le<std::uint32_t>(b + 16);
  d.subscription = load_le<std::uint32_t>(b + 20);
  d.delivery_count = load_le<std::uint16_t>(b + 24);
  if (d.record_count == 0 || d.byte_count == 0 || d.delivery_count == 0) return malformed;
  return d;
}

void encode_credit(std::span<std::byte, credit_size> out, const credit_body& c) noexcept {
  store_le<std::uint32_t>(out.data() + 0, c.subscription);
  store_le<std::uint32_t>(out.data() + 4, c.records);
}

result<credit_body, errc> decode_credit(std::span<const std::byte> body) noexcept {
  if (body.size() != credit_size) return malformed;
  return credit_body{load_le<std::uint32_t>(body.data()), load_le<std::uint32_t>(body.data() + 4)};
}

void encode_window(std::span<std::byte, window_size> out, const window_body& w) noexcept {
  store_le<std::uint32_t>(out.data() + 0, w.fetch);
  store_le<std::uint32_t>(out.data() + 4, w.bytes);
}

result<window_body, errc> decode_window(std::span<const std::byte> body) noexcept {
  if (body.size() != window_size) return malformed;
  window_body w{load_le<std::uint32_t>(body.data()), load_le<std::uint32_t>(body.data() + 4)};
  if (w.bytes == 0) return malformed;  // grants nothing: a client bug, said at once
  return w;
}

offset_range commit_view::range(std::uint32_t i) const noexcept {
  const std::byte* b = ranges_bytes.data() + std::size_t{i} * commit_range_size;
  return {load_le<std::uint64_t>(b), load_le<std::uint64_t>(b + 8)};
}

void append_commit(std::vector<std::byte>& out, std::uint32_t subscription, std::uint32_t partition,
                   std::span<const offset_range> ranges) {
  const std::size_t at = out.size();
  out.resize(at + commit_fixed_size + ranges.size() * commit_range_size);
  std::byte* b = out.data() + at;
  store_le<std::uint32_t>(b + 0, subscription);
  store_le<std::uint32_t>(b + 4, partition);
  store_le<std::uint32_t>(b + 8, static_cast<std::uint32_t>(ranges.size()));
  store_le<std::uint32_t>(b + 12, 0);
  b += commit_fixed_size;
  for (const auto& r : ranges) {
    store_le<std::uint64_t>(b, r.first);
    store_le<std::uint64_t>(b + 8, r.last);
    b += commit_range_size;
  }
}

result<commit_view, errc> decode_commit(std::span<const std::byte> body) noexcept {
  if (body.size() < commit_fixed_size || !reserved_zero(body, 12, 4)) return malformed;
  commit_view v;
  v.subscription = load_le<std::uint32_t>(body.data() + 0);
  v.partition = load_le<std::uint32_t>(body.data() + 4);
  v.range_count = load_le<std::uint32_t>(body.data() + 8);
  if (v.range_count == 0 || v.range_count > max_commit_ranges) return malformed;
  if (body.size() != commit_fixed_size + std::size_t{v.range_count} * commit_range_size) return malformed;
  v.ranges_bytes = body.subspan(commit_fixed_size);
  for (std::uint32_t i = 0; i < v.range_count; ++i) {
    const auto r = v.range(i);
    if (r.first > r.last) return malformed;
  }
  return v;
}

void encode_nack(std::span<std::byte, nack_size> out, const nack_body& n) noexcept {
  std::byte* b = out.data();
  store_le<std::uint32_t>(b + 0, n.subscription);
  store_le<std::uint32_t>(b + 4, n.partition);
  store_le<std::uint64_t>(b + 8, n.offset);
  store_le<std::uint32_t>(b + 16, n.delay_ms);
  store_le<std::uint16_t>(b + 20, n.flags);
  store_le<std::uint16_t>(b + 22, 0);
}

result<nack_body, errc> decode_nack(std::span<const std::byte> body) noexcept {
  if (body.size() != nack_size || !reserved_zero(body, 22, 2)) return malformed;
  const std::byte* b = body.data();
  const auto flags = load_le<std::uint16_t>(b + 20);
  if ((flags & ~nack_flag_dead_letter) != 0) return malformed;
  return nack_body{load_le<std::uint32_t>(b + 0), load_le<std::uint32_t>(b + 4),
                   load_le<std::uint64_t>(b + 8), load_le<std::uint32_t>(b + 16), flags};
}

void encode_ping(std::span<std::byte, ping_size> out, std::uint64_t token) noexcept {
  store_le<std::uint64_t>(out.data(), token);
}

result<std::uint64_t, errc> decode_ping(std::span<const std::byte> body) noexcept {
  if (body.size() != ping_size) return malformed;
  return load_le<std::uint64_t>(body.data());
}

}  // namespace mcp::codec
