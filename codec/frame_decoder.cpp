#include "codec/frame_decoder.h"

#include <algorithm>
#include <cstring>

#include "codec/byte_order.h"
#include "codec/crc32c.h"

namespace mcp::codec {

namespace {

decode_result fail(errc e) noexcept { return decode_result{e, {}, 0}; }

decode_result need(std::size_t n) noexcept { return decode_result{errc::need_more, {}, n}; }

}  // namespace

namespace {

// The header is complete: every check in one pass (the common case on a hot path).
decode_result parse_full_header(std::span<const std::byte> buf, const decoder_options& opts) noexcept {
  const std::byte* b = buf.data();
  if (load_le<std::uint16_t>(b + magic_offset) != magic) return fail(errc::bad_magic);
  const auto length = load_le<std::uint32_t>(b + length_offset);
  if (length < header_rest_size) return fail(errc::frame_too_small);
  if (length > opts.max_frame) return fail(errc::frame_too_large);
  const auto v = std::to_integer<std::uint8_t>(b[version_offset]);
  if (v < min_version || v > max_version) return fail(errc::unsupported_version);
  const auto op = std::to_integer<std::uint8_t>(b[opcode_offset]);
  if (!is_known_opcode(op)) return fail(errc::unknown_opcode);
  const std::size_t total = length_field_size + std::size_t{length};
  if (buf.size() < total) return need(total - buf.size());

  decode_result r;
  r.status = errc::ok;
  r.frame.header.length = length;
  r.frame.header.version = v;
  r.frame.header.op = static_cast<opcode>(op);
  r.frame.header.correlation = load_le<std::uint32_t>(b + correlation_offset);
  r.frame.header.crc = load_le<std::uint32_t>(b + crc_offset);
  r.frame.bytes = buf.first(total);
  r.frame.body = buf.subspan(header_size, total - header_size);
  if (opts.verify_crc && crc32c(r.frame.body) != r.frame.header.crc) return fail(errc::crc_mismatch);
  return r;
}

}  // namespace

decode_result parse_frame(std::span<const std::byte> buf, const decoder_options& opts) noexcept {
  if (buf.size() >= header_size) [[likely]] return parse_full_header(buf, opts);
  // A partial header: judge what has arrived, in wire order, so garbage is refused
  // without waiting. The magic comes first: a peer that speaks another protocol
  // (an HTTP request, say) should hear "bad magic", not "frame too large" for a
  // length made of ASCII.
  const std::size_t have = buf.size();
  for (std::size_t i = magic_offset; i < std::min(have, magic_offset + 2); ++i) {
    const auto expected = static_cast<std::byte>((magic >> (8 * (i - magic_offset))) & 0xFF);
    if (buf[i] != expected) return fail(errc::bad_magic);
  }
  if (have < magic_offset + 2) return need(header_size - have);
  const auto length = load_le<std::uint32_t>(buf.data() + length_offset);
  if (length < header_rest_size) return fail(errc::frame_too_small);
  if (length > opts.max_frame) return fail(errc::frame_too_large);
  if (have > version_offset) {
    const auto v = std::to_integer<std::uint8_t>(buf[version_offset]);
    if (v < min_version || v > max_version) return fail(errc::unsupported_version);
  }
  if (have > opcode_offset && !is_known_opcode(std::to_integer<std::uint8_t>(buf[opcode_offset]))) {
    return fail(errc::unknown_opcode);
  }
  return need(length_field_size + std::size_t{length} - have);
}

frame_decoder::frame_decoder(decoder_options opts) : opts_(opts) { stash_.resize(header_size); }

void frame_decoder::feed(std::span<const std::byte> chunk) noexcept { chunk_ = chunk; }

void frame_decoder::stash_append(std::span<const std::byte> bytes) {
  if (stash_len_ + bytes.size() > stash_.size()) {
    // Grows geometrically and only up to one frame (max_frame + 4): no allocation per frame.
    stash_.resize(std::max(stash_len_ + bytes.size(), stash_.size() * 2));
  }
  std::memcpy(stash_.data() + stash_len_, bytes.data(), bytes.size());
  stash_len_ += bytes.size();
}

decode_result frame_decoder::next_from_stash() noexcept {
  for (;;) {
    decode_result r = parse_frame({stash_.data(), stash_len_}, opts_);
    if (r.status == errc::ok) {
      stash_len_ = 0;  // the view stays valid: the stash is not written before the next call
      return r;
    }
    if (r.status != errc::need_more) return r;
    if (chunk_.empty()) return r;
    // Take only what this frame needs; the rest of the chunk is decoded in place.
    const std::size_t n = std::min(r.need, chunk_.size());
    stash_append(chunk_.first(n));
    chunk_ = chunk_.subspan(n);
  }
}

decode_result frame_decoder::next() noexcept {
  if (error_ != errc::ok) return fail(error_);
  decode_result r;
  if (stash_len_ > 0) {
    r = next_from_stash();
  } else {
    r = parse_frame(chunk_, opts_);
    if (r.status == errc::ok) {
      chunk_ = chunk_.subspan(r.frame.bytes.size());
    } else if (r.status == errc::need_more && !chunk_.empty()) {
      stash_append(chunk_);
      chunk_ = {};
    }
  }
  if (r.status != errc::ok && r.status != errc::need_more) error_ = r.status;
  return r;
}

std::size_t frame_decoder::take_raw(std::span<std::byte> out) noexcept {
  if (error_ != errc::ok) return 0;
  const std::size_t from_stash = std::min(out.size(), stash_len_);
  if (from_stash > 0) {
    std::memcpy(out.data(), stash_.data(), from_stash);
    // Rare: the caller wants fewer bytes than the stash holds.
    std::memmove(stash_.data(), stash_.data() + from_stash, stash_len_ - from_stash);
    stash_len_ -= from_stash;
  }
  const std::size_t from_chunk = std::min(out.size() - from_stash, chunk_.size());
  if (from_chunk > 0) {
    std::memcpy(out.data() + from_stash, chunk_.data(), from_chunk);
    chunk_ = chunk_.subspan(from_chunk);
  }
  return from_stash + from_chunk;
}

}  // namespace mcp::codec
