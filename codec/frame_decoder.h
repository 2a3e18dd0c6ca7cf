#pragma once
// Decoding MCP frames from untrusted bytes.
//
// parse_frame() looks at the start of one contiguous buffer. frame_decoder is the
// streaming form: feed it chunks as they arrive (frames may be split anywhere, a
// chunk may hold many frames) and pull complete frames out with next().
//
// Ownership: decoded frames are views. A frame that lies wholly inside a chunk
// points into that chunk, which the caller keeps alive until it has finished
// with the frame. Only a frame split across chunks is copied, into the decoder's
// own stash (one buffer that grows to the largest split frame and is reused);
// such a view is valid until the next call to next() or feed().

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/errc.h"
#include "codec/frame_format.h"
#include "codec/frame_header.h"

namespace mcp::codec {

struct decoder_options {
  std::uint32_t max_frame = default_max_frame;  // upper bound of the length field
  bool verify_crc = true;
};

struct frame_view {
  frame_header header;
  std::span<const std::byte> body;   // header.body_size() bytes
  std::span<const std::byte> bytes;  // the whole frame, header included
};

struct decode_result {
  errc status = errc::need_more;
  frame_view frame;        // valid when status == ok
  std::size_t need = 0;    // with need_more: at least this many more bytes are needed
};

// Decodes the frame at the start of `buf`. With status ok, frame.bytes.size() is
// how much of `buf` it used. Errors are reported as early as the bytes allow: bad
// magic after 6 bytes, a bad length, version or opcode as soon as the header holds it.
decode_result parse_frame(std::span<const std::byte> buf, const decoder_options& opts) noexcept;

class frame_decoder {
 public:
  explicit frame_decoder(decoder_options opts = {});

  // Hands the decoder the next chunk of the stream. Precondition: the previous
  // chunk was used up, i.e. next() returned need_more (or nothing was fed yet).
  void feed(std::span<const std::byte> chunk) noexcept;

  // The next complete frame, need_more once the fed bytes are used up (the
  // unfinished frame, if any, is then kept in the stash), or an error. An error
  // is sticky: the stream cannot be resynchronised, so every later call repeats it.
  decode_result next() noexcept;

  // Moves up to out.size() bytes that were fed but not yet decoded (the stash's
  // unfinished frame first, then the rest of the chunk) into `out`, in stream
  // order, and returns how many. For a caller that knows what the next bytes are
  // (a run of RECORD frames announced by a header) and reads them itself. After
  // an error it takes nothing.
  std::size_t take_raw(std::span<std::byte> out) noexcept;

  // Bytes of an unfinished frame held in the stash.
  std::size_t buffered() const noexcept { return stash_len_; }
  errc error() const noexcept { return error_; }
  const decoder_options& options() const noexcept { return opts_; }

 private:
  decode_result next_from_stash() noexcept;
  void stash_append(std::span<const std::byte> bytes);

  decoder_options opts_;
  std::span<const std::byte> chunk_;
  std::vector<std::byte> stash_;
  std::size_t stash_len_ = 0;
  errc error_ = errc::ok;
};

}  // namespace mcp::codec
