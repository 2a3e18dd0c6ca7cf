#include "codec/frame_encoder.h"

#include <doctest/doctest.h>

#include <array>

#include "codec/frame_decoder.h"
#include "tests/support/bytes.h"

using namespace mcp::codec;
using mcp::test::as_bytes;
using mcp::test::hex_bytes;

// The worked example of docs/protocol.md "Frame header": a PING with correlation 7
// and token 0x0102030405060708. If this test fails, fix the code or the doc — they
// must say the same thing.
TEST_CASE("the PING example in docs/protocol.md is what the encoder writes") {
  const auto expected = hex_bytes(
      "14 00 00 00  43 4d 01 0b  07 00 00 00  1c 02 f9 26"
      "08 07 06 05 04 03 02 01");
  std::array<std::byte, 8> body{};
  for (int i = 0; i < 8; ++i) body[static_cast<std::size_t>(i)] = static_cast<std::byte>(8 - i);
  std::vector<std::byte> out;
  append_frame(out, opcode::ping, 7, body);
  CHECK(out == expected);
}

TEST_CASE("encode_frame refuses a buffer that is too small and writes nothing") {
  std::array<std::byte, header_size + 3> out{};
  CHECK(encode_frame(out, opcode::ping, 1, as_bytes("abcd")) == 0);
  CHECK(out == std::array<std::byte, header_size + 3>{});
  CHECK(encode_frame(out, opcode::ping, 1, as_bytes("abc")) == header_size + 3);
}

TEST_CASE("seal_frame fills the header of a body built in place") {
  std::vector<std::byte> f(header_size + 5);
  const auto body = as_bytes("hello");
  std::copy(body.begin(), body.end(), f.begin() + header_size);
  seal_frame(f, opcode::ok, 0xDEADBEEF);
  const auto r = parse_frame(f, {});
  REQUIRE(r.status == errc::ok);
  CHECK(r.frame.header.correlation == 0xDEADBEEF);
  CHECK(r.frame.header.op == opcode::ok);
  CHECK(r.frame.header.length == header_rest_size + 5);
}

TEST_CASE("every opcode round-trips through encode and decode") {
  for (std::uint8_t op = min_opcode; op <= max_opcode; ++op) {
    std::vector<std::byte> f;
    append_frame(f, static_cast<opcode>(op), op * 1000u, as_bytes("body"));
    const auto r = parse_frame(f, {});
    REQUIRE(r.status == errc::ok);
    CHECK(static_cast<std::uint8_t>(r.frame.header.op) == op);
    CHECK(r.frame.header.correlation == op * 1000u);
    CHECK(std::string_view(opcode_name(static_cast<opcode>(op))) != "UNKNOWN");
  }
}
