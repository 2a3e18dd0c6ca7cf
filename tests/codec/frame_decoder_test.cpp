#include "codec/frame_decoder.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "codec/byte_order.h"
#include "codec/frame_encoder.h"
#include "tests/support/bytes.h"

using namespace mcp::codec;
using mcp::test::as_bytes;
using mcp::test::as_string;

namespace {

std::vector<std::byte> frame_of(opcode op, std::uint32_t corr, std::string_view body) {
  std::vector<std::byte> out;
  append_frame(out, op, corr, as_bytes(body));
  return out;
}

// Three frames of different sizes back to back, including an empty body.
std::vector<std::byte> three_frames() {
  std::vector<std::byte> s;
  append_frame(s, opcode::ping, 1, as_bytes("12345678"));
  append_frame(s, opcode::ok, 2, {});
  append_frame(s, opcode::record, 3, as_bytes(std::string(300, 'x')));
  return s;
}

struct collected {
  std::vector<std::uint32_t> correlations;
  std::vector<std::string> bodies;
  errc last = errc::need_more;
};

// Feeds `stream` in chunks ending at `cuts` and collects what the decoder yields.
collected decode_in_chunks(std::span<const std::byte> stream, const std::vector<std::size_t>& cuts,
                           decoder_options opts = {}) {
  frame_decoder d(opts);
  collected c;
  std::size_t start = 0;
  auto run = [&](std::span<const std::byte> chunk) {
    // Copy each chunk to its own buffer that dies after use: a view must not outlive it.
    std::vector<std::byte> owned(chunk.begin(), chunk.end());
    d.feed(owned);
    for (;;) {
      const auto r = d.next();
      c.last = r.status;
      if (r.status != errc::ok) break;
      c.correlations.push_back(r.frame.header.correlation);
      c.bodies.emplace_back(as_string(r.frame.body));
    }
  };
  for (const auto cut : cuts) {
    run(stream.subspan(start, cut - start));
    start = cut;
  }
  run(stream.subspan(start));
  return c;
}

}  // namespace

TEST_CASE("a whole frame decodes to a view of the caller's bytes") {
  const auto f = frame_of(opcode::ping, 77, "abcdefgh");
  const auto r = parse_frame(f, {});
  REQUIRE(r.status == errc::ok);
  CHECK(r.frame.header.op == opcode::ping);
  CHECK(r.frame.header.correlation == 77);
  CHECK(r.frame.header.version == version_1);
  CHECK(r.frame.bytes.data() == f.data());
  CHECK(r.frame.bytes.size() == f.size());
  CHECK(r.frame.body.data() == f.data() + header_size);
  CHECK(as_string(r.frame.body) == "abcdefgh");
}

TEST_CASE("every prefix of a frame asks for exactly the missing bytes") {
  const auto f = frame_of(opcode::records, 9, "0123456789abcdef0123456789abcdef01234567");
  for (std::size_t n = 0; n < f.size(); ++n) {
    const auto r = parse_frame(std::span(f).first(n), {});
    CAPTURE(n);
    REQUIRE(r.status == errc::need_more);
    if (n >= magic_offset + 2) {
      CHECK(r.need == f.size() - n);
    } else {
      CHECK(r.need == header_size - n);
    }
  }
}

TEST_CASE("a stream split at every byte position yields the same frames") {
  const auto s = three_frames();
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    CAPTURE(cut);
    const auto c = decode_in_chunks(s, {cut});
    REQUIRE(c.correlations == std::vector<std::uint32_t>{1, 2, 3});
    CHECK(c.bodies[0] == "12345678");
    CHECK(c.bodies[1].empty());
    CHECK(c.bodies[2] == std::string(300, 'x'));
    CHECK(c.last == errc::need_more);
  }
}

TEST_CASE("a stream split at every pair of positions yields the same frames") {
  const auto s = three_frames();
  for (std::size_t a = 0; a <= s.size(); a += 3) {
    for (std::size_t b = a; b <= s.size(); b += 5) {
      const auto c = decode_in_chunks(s, {a, b});
      CAPTURE(a);
      CAPTURE(b);
      REQUIRE(c.correlations == std::vector<std::uint32_t>{1, 2, 3});
      CHECK(c.bodies[2] == std::string(300, 'x'));
    }
  }
}

TEST_CASE("a stream fed one byte at a time yields the same frames") {
  const auto s = three_frames();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < s.size(); ++i) cuts.push_back(i);
  const auto c = decode_in_chunks(s, cuts);
  CHECK(c.correlations == std::vector<std::uint32_t>{1, 2, 3});
  CHECK(c.bodies[0] == "12345678");
}

TEST_CASE("frames inside one chunk are not copied; only a split frame is stashed") {
  const auto s = three_frames();
  frame_decoder d;
  d.feed(s);
  for (int i = 0; i < 3; ++i) {
    const auto r = d.next();
    REQUIRE(r.status == errc::ok);
    CHECK(r.frame.bytes.data() >= s.data());
    CHECK(r.frame.bytes.data() < s.data() + s.size());
  }
  CHECK(d.next().status == errc::need_more);
  CHECK(d.buffered() == 0);
}

TEST_CASE("bad magic is reported as soon as the magic bytes arrive") {
  auto f = frame_of(opcode::ping, 1, "12345678");
  f[magic_offset] = std::byte{'X'};
  CHECK(parse_frame(std::span(f).first(5), {}).status == errc::bad_magic);
  CHECK(parse_frame(f, {}).status == errc::bad_magic);
  // Second magic byte wrong.
  auto g = frame_of(opcode::ping, 1, "12345678");
  g[magic_offset + 1] = std::byte{0};
  CHECK(parse_frame(std::span(g).first(6), {}).status == errc::bad_magic);
}

TEST_CASE("an HTTP request is bad magic, not an oversize frame") {
  CHECK(parse_frame(as_bytes("GET / HTTP/1.1\r\n"), {}).status == errc::bad_magic);
}

TEST_CASE("a version outside the supported range is refused") {
  for (const std::uint8_t v : {std::uint8_t{0}, std::uint8_t{max_version + 1}, std::uint8_t{0xFF}}) {
    auto f = frame_of(opcode::ping, 1, "12345678");
    f[version_offset] = std::byte{v};
    CHECK(parse_frame(std::span(f).first(version_offset + 1), {}).status == errc::unsupported_version);
    CHECK(parse_frame(f, {}).status == errc::unsupported_version);
  }
}

TEST_CASE("an unknown opcode is refused") {
  for (const std::uint8_t op : {std::uint8_t{0}, std::uint8_t{max_opcode + 1}, std::uint8_t{0xFF}}) {
    auto f = frame_of(opcode::ping, 1, "12345678");
    f[opcode_offset] = std::byte{op};
    CHECK(parse_frame(f, {}).status == errc::unknown_opcode);
    CHECK_FALSE(is_fatal(errc::unknown_opcode));
  }
}

TEST_CASE("a length over max_frame is refused before the body arrives") {
  auto f = frame_of(opcode::ping, 1, "12345678");
  decoder_options opts;
  opts.max_frame = 64;
  store_le<std::uint32_t>(f.data(), 65);
  CHECK(parse_frame(std::span(f).first(6), opts).status == errc::frame_too_large);
  store_le<std::uint32_t>(f.data(), 64);
  CHECK(parse_frame(std::span(f).first(6), opts).status == errc::need_more);
  store_le<std::uint32_t>(f.data(), 0xFFFFFFFF);
  CHECK(parse_frame(f, {}).status == errc::frame_too_large);
}

TEST_CASE("a length under the header is refused") {
  for (const std::uint32_t len : {0u, 1u, header_rest_size - 1}) {
    auto f = frame_of(opcode::ping, 1, "12345678");
    store_le<std::uint32_t>(f.data(), len);
    CHECK(parse_frame(f, {}).status == errc::frame_too_small);
  }
  // Exactly the header: an empty body is fine.
  const auto e = frame_of(opcode::ok, 1, "");
  CHECK(parse_frame(e, {}).status == errc::ok);
}

TEST_CASE("a flipped body bit or a wrong CRC field is a CRC mismatch") {
  const auto good = frame_of(opcode::ping, 1, "12345678");
  for (std::size_t bit = 0; bit < 8 * 8; ++bit) {
    auto f = good;
    f[header_size + bit / 8] ^= std::byte(1u << (bit % 8));
    CHECK(parse_frame(f, {}).status == errc::crc_mismatch);
  }
  auto f = good;
  f[crc_offset] ^= std::byte{1};
  CHECK(parse_frame(f, {}).status == errc::crc_mismatch);
  decoder_options no_crc;
  no_crc.verify_crc = false;
  CHECK(parse_frame(f, no_crc).status == errc::ok);
}

TEST_CASE("errors are sticky in the streaming decoder and frames before them are delivered") {
  auto s = three_frames();
  auto bad = frame_of(opcode::ping, 4, "12345678");
  bad[header_size] ^= std::byte{0x10};
  s.insert(s.end(), bad.begin(), bad.end());
  const auto good = frame_of(opcode::ping, 5, "12345678");
  s.insert(s.end(), good.begin(), good.end());
  frame_decoder d;
  d.feed(s);
  for (int i = 0; i < 3; ++i) REQUIRE(d.next().status == errc::ok);
  CHECK(d.next().status == errc::crc_mismatch);
  CHECK(d.next().status == errc::crc_mismatch);
  CHECK(d.error() == errc::crc_mismatch);
  CHECK(is_fatal(errc::crc_mismatch));
}

TEST_CASE("errors inside a split header are found across chunks") {
  auto f = frame_of(opcode::ping, 1, "12345678");
  f[version_offset] = std::byte{0x7F};
  for (std::size_t cut = 1; cut < f.size(); ++cut) {
    CAPTURE(cut);
    const auto c = decode_in_chunks(f, {cut});
    CHECK(c.last == errc::unsupported_version);
  }
}

TEST_CASE("take_raw hands over undecoded bytes in stream order, the stash first, at every split") {
  // A header frame, then a run the caller reads itself, then a frame decoded again.
  auto s = frame_of(opcode::records, 1, "hdr");
  const std::size_t run_begin = s.size();
  const std::string run = "raw bytes of a run, not decoded by the decoder";
  for (const char ch : run) s.push_back(static_cast<std::byte>(ch));
  const auto tail = frame_of(opcode::ping, 2, "12345678");
  s.insert(s.end(), tail.begin(), tail.end());
  for (std::size_t cut = 1; cut < s.size(); ++cut) {
    CAPTURE(cut);
    frame_decoder d;
    const auto first = std::span<const std::byte>(s).first(cut);
    const auto second = std::span<const std::byte>(s).subspan(cut);
    std::size_t fed = cut;
    d.feed(first);
    auto r = d.next();
    if (r.status == errc::need_more) {
      d.feed(second);
      fed = s.size();
      r = d.next();
    }
    REQUIRE(r.status == errc::ok);
    CHECK(r.frame.header.correlation == 1);
    // Take the run in two pieces, feeding the rest of the stream when the first chunk runs dry.
    std::vector<std::byte> got(run.size());
    std::size_t have = d.take_raw(std::span(got).first(5));
    have += d.take_raw(std::span(got).subspan(have));
    if (have < got.size()) {
      REQUIRE(fed == cut);
      CHECK(have == cut - run_begin);
      d.feed(second);
      fed = s.size();
      have += d.take_raw(std::span(got).subspan(have));
    }
    REQUIRE(have == got.size());
    CHECK(as_string(got) == run);
    if (fed == cut) {
      REQUIRE(d.next().status == errc::need_more);  // stashes what the first chunk has of the tail
      d.feed(second);
    }
    const auto t = d.next();
    REQUIRE(t.status == errc::ok);
    CHECK(t.frame.header.correlation == 2);
    CHECK(d.next().status == errc::need_more);
  }
}

TEST_CASE("take_raw takes part of a stashed frame and leaves the rest in order") {
  const auto f = frame_of(opcode::ping, 7, "12345678");
  frame_decoder d;
  d.feed(std::span<const std::byte>(f).first(10));
  REQUIRE(d.next().status == errc::need_more);
  REQUIRE(d.buffered() == 10);
  std::vector<std::byte> got(4);
  CHECK(d.take_raw(got) == 4);
  CHECK(std::equal(got.begin(), got.end(), f.begin()));
  CHECK(d.buffered() == 6);
  std::vector<std::byte> rest(f.size());
  CHECK(d.take_raw(rest) == 6);
  CHECK(std::equal(rest.begin(), rest.begin() + 6, f.begin() + 4));
}

TEST_CASE("take_raw takes nothing after an error") {
  auto f = frame_of(opcode::ping, 1, "12345678");
  f[magic_offset] ^= std::byte{0xFF};
  frame_decoder d;
  d.feed(f);
  REQUIRE(d.next().status == errc::bad_magic);
  std::vector<std::byte> got(4);
  CHECK(d.take_raw(got) == 0);
}

TEST_CASE("random bytes never crash the decoder and never yield a frame with a bad CRC") {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    const auto junk = mcp::test::random_bytes(rng, rng() % 64);
    frame_decoder d;
    d.feed(junk);
    auto r = d.next();
    if (r.status == errc::ok) CHECK(r.frame.bytes.size() <= junk.size());
  }
  // Random bytes behind a valid header prefix exercise the body and CRC paths.
  for (int i = 0; i < 20000; ++i) {
    auto f = frame_of(opcode::record, 1, "");
    const auto junk = mcp::test::random_bytes(rng, rng() % 40);
    f.insert(f.end(), junk.begin(), junk.end());
    store_le<std::uint32_t>(f.data(), static_cast<std::uint32_t>(rng() % 64));
    const auto r = parse_frame(f, {});
    if (r.status == errc::ok) CHECK(r.frame.bytes.size() <= f.size());
  }
}
