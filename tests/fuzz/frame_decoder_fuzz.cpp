// libFuzzer target: the streaming frame decoder and every body decoder behind it.
// The first input byte chooses where the stream is split, so split frames (the
// stash path) are fuzzed as well as whole ones. Beyond "no crash", it checks that
// streaming and one-shot decoding agree.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <vector>

#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/data_messages.h"
#include "codec/frame_decoder.h"
#include "codec/record.h"

using namespace mcp::codec;

namespace {

void decode_body(const frame_view& f) {
  const auto body = f.body;
  switch (f.header.op) {
    case opcode::hello: (void)verify_control<mcp::fb::Hello>(body); break;
    case opcode::hello_ok: (void)verify_control<mcp::fb::HelloOk>(body); break;
    case opcode::create_topic: (void)verify_control<mcp::fb::CreateTopic>(body); break;
    case opcode::delete_topic: (void)verify_control<mcp::fb::DeleteTopic>(body); break;
    case opcode::metadata: (void)verify_control<mcp::fb::MetadataRequest>(body); break;
    case opcode::metadata_ok: (void)verify_control<mcp::fb::MetadataReply>(body); break;
    case opcode::subscribe: (void)verify_control<mcp::fb::Subscribe>(body); break;
    case opcode::error: (void)verify_control<mcp::fb::Error>(body); break;
    case opcode::publish:
      if (const auto p = decode_publish(body)) (void)validate_records(p->records);
      break;
    case opcode::ack: (void)decode_ack(body); break;
    case opcode::fetch: (void)decode_fetch(body); break;
    case opcode::records: (void)decode_records(body); break;
    case opcode::credit: (void)decode_credit(body); break;
    case opcode::commit: (void)decode_commit(body); break;
    case opcode::nack: (void)decode_nack(body); break;
    case opcode::delivery: (void)decode_delivery(body); break;
    case opcode::groups: (void)verify_control<mcp::fb::GroupsRequest>(body); break;
    case opcode::groups_ok: (void)verify_control<mcp::fb::GroupsReply>(body); break;
    case opcode::ping:
    case opcode::pong: (void)decode_ping(body); break;
    case opcode::ok: break;
    case opcode::record:
      if (const auto r = decode_record(body)) {
        record_header h;
        auto it = r->headers();
        while (it.next(h)) {
        }
      }
      break;
  }
}

}  // namespace

// Random bytes rarely carry the magic and a matching CRC, so half the inputs are
// read as a list of {opcode, body length, body} and wrapped in valid frames: that
// sends the fuzzer's bytes straight into the body decoders.
std::vector<std::byte> wrap_in_frames(std::span<const std::byte> in) {
  std::vector<std::byte> out;
  while (in.size() >= 2) {
    const auto op = static_cast<opcode>(min_opcode + std::to_integer<std::uint8_t>(in[0]) % (max_opcode - min_opcode + 1));
    const std::size_t len = std::min<std::size_t>(std::to_integer<std::uint8_t>(in[1]), in.size() - 2);
    append_frame(out, op, 1, in.subspan(2, len));
    in = in.subspan(2 + len);
  }
  return out;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split_every = 1 + data[0] % 64;
  std::span<const std::byte> input{reinterpret_cast<const std::byte*>(data + 1), size - 1};
  std::vector<std::byte> framed;
  if ((data[0] & 0x80) != 0) {
    framed = wrap_in_frames(input);
    input = framed;
  }
  decoder_options opts;
  opts.max_frame = 1 << 16;

  // One-shot decoding of the whole input, frame by frame.
  std::size_t whole_frames = 0;
  errc whole_end = errc::need_more;
  for (auto rest = input;;) {
    const auto r = parse_frame(rest, opts);
    if (r.status != errc::ok) {
      whole_end = r.status;
      break;
    }
    decode_body(r.frame);
    ++whole_frames;
    rest = rest.subspan(r.frame.bytes.size());
  }

  // Streaming decoding of the same input in small chunks must agree.
  frame_decoder d(opts);
  std::size_t stream_frames = 0;
  errc stream_end = errc::need_more;
  for (std::size_t at = 0; at < input.size() && stream_end == errc::need_more; at += split_every) {
    d.feed(input.subspan(at, std::min(split_every, input.size() - at)));
    for (;;) {
      const auto r = d.next();
      if (r.status != errc::ok) {
        stream_end = r.status;
        break;
      }
      ++stream_frames;
    }
  }
  if (whole_frames != stream_frames || whole_end != stream_end) std::abort();
  return 0;
}
