#include "codec/record.h"

#include <doctest/doctest.h>

#include <array>
#include <random>
#include <vector>

#include "codec/byte_order.h"
#include "codec/frame_encoder.h"
#include "codec/frame_header.h"
#include "codec/record_format.h"
#include "tests/support/bytes.h"

using namespace mcp::codec;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::hex_bytes;

namespace {

std::vector<std::byte> make_record(const record_input& in) {
  std::vector<std::byte> out(record_frame_size(in));
  REQUIRE(encode_record(out, in) == out.size());
  return out;
}

record_input sample_input(const std::array<record_header, 2>& headers) {
  record_input in;
  in.timestamp_ms = 1700000000123;
  in.producer_id = 42;
  in.sequence = 7;
  in.key = as_bytes("user-1");
  in.value = as_bytes("hello world");
  in.headers = headers;
  return in;
}

}  // namespace

TEST_CASE("a record round-trips with key, value, headers and producer fields") {
  const std::array<record_header, 2> headers{record_header{"trace-id", as_bytes("abc123")},
                                             record_header{"empty", {}}};
  const auto f = make_record(sample_input(headers));
  const auto v = decode_record_frame(f);
  REQUIRE(v.has_value());
  CHECK(v->offset == 0);
  CHECK(v->timestamp_ms == 1700000000123);
  CHECK(v->producer_id == 42);
  CHECK(v->sequence == 7);
  CHECK(as_string(v->key) == "user-1");
  CHECK(as_string(v->value) == "hello world");
  CHECK(v->header_count == 2);
  auto it = v->headers();
  record_header h;
  REQUIRE(it.next(h));
  CHECK(h.name == "trace-id");
  CHECK(as_string(h.value) == "abc123");
  REQUIRE(it.next(h));
  CHECK(h.name == "empty");
  CHECK(h.value.empty());
  CHECK_FALSE(it.next(h));
}

TEST_CASE("an empty record (no key, no value, no headers) is valid") {
  const auto f = make_record(record_input{});
  CHECK(f.size() == header_size + record_layout::fixed_size);
  const auto v = decode_record_frame(f);
  REQUIRE(v.has_value());
  CHECK(v->key.empty());
  CHECK(v->value.empty());
}

TEST_CASE("stamping sets the offset and a missing timestamp, and keeps the CRC valid") {
  record_input in;
  in.value = as_bytes("v");
  auto f = make_record(in);
  stamp_record(f, 123456789012345ull, 1700000000999);
  const auto v = decode_record_frame(f);
  REQUIRE(v.has_value());
  CHECK(v->offset == 123456789012345ull);
  CHECK(v->timestamp_ms == 1700000000999);
  CHECK((v->attributes & record_layout::attr_broker_timestamp) != 0);
  CHECK(record_offset(f) == 123456789012345ull);
  CHECK(record_timestamp(f) == 1700000000999);

  // A producer timestamp is kept.
  in.timestamp_ms = 5;
  auto g = make_record(in);
  stamp_record(g, 1, 1700000000999);
  const auto w = decode_record_frame(g);
  REQUIRE(w.has_value());
  CHECK(w->timestamp_ms == 5);
  CHECK(w->attributes == 0);
}

TEST_CASE("stamping marks every record of a batch but its last, and keeps the CRC valid either way") {
  record_input in;
  in.timestamp_ms = 7;
  in.value = as_bytes("value");
  auto f = make_record(in);
  crc32c_shifter shifter;
  stamp_record(f, 10, 1, shifter, batch_place::more_follow);
  auto v = decode_record_frame(f);
  REQUIRE(v.has_value());
  CHECK(v->attributes == record_layout::attr_batch_continues);
  CHECK(record_batch_continues(f));
  // A record stamped again (a producer that set the bit has it set or cleared by the broker).
  stamp_record(f, 11, 1, shifter, batch_place::last);
  v = decode_record_frame(f);
  REQUIRE(v.has_value());
  CHECK(v->attributes == 0);
  CHECK(v->offset == 11);
  CHECK_FALSE(record_batch_continues(f));
  // Unknown attribute bits are still refused.
  auto g = make_record(in);
  g[header_size + record_layout::attributes_offset] = std::byte{0x04};
  seal_frame(g, opcode::record, 0);
  CHECK(decode_record_frame(g).error() == errc::malformed_body);
}

// docs/storage.md "Record": worked example. Key "k", value "v1", one header
// "t" = "x", offset 5, timestamp 1000, producer 0, sequence 0.
TEST_CASE("the record example in docs/storage.md is what the encoder writes") {
  const std::array<record_header, 1> headers{record_header{"t", as_bytes("x")}};
  record_input in;
  in.timestamp_ms = 1000;
  in.key = as_bytes("k");
  in.value = as_bytes("v1");
  in.headers = headers;
  auto f = make_record(in);
  stamp_record(f, 5, 0);
  const auto expected = hex_bytes(
      "3f 00 00 00 43 4d 01 13 00 00 00 00 8f 76 3f e6"
      "01 00 01 00 01 00 00 00 05 00 00 00 00 00 00 00"
      "e8 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      "00 00 00 00 02 00 00 00 6b 76 31 01 00 74 01 00"
      "00 00 78");
  CHECK(f == expected);
}

TEST_CASE("malformed record bodies are refused") {
  const std::array<record_header, 2> headers{record_header{"trace-id", as_bytes("abc123")},
                                             record_header{"n", as_bytes("v")}};
  const auto good = make_record(sample_input(headers));
  const std::span<const std::byte> body = std::span(good).subspan(header_size);
  REQUIRE(decode_record(body).has_value());

  SUBCASE("every truncation") {
    for (std::size_t n = 0; n < body.size(); ++n) {
      CAPTURE(n);
      CHECK(decode_record(body.first(n)).error() == errc::malformed_body);
    }
  }
  SUBCASE("trailing bytes") {
    std::vector<std::byte> b(body.begin(), body.end());
    b.push_back(std::byte{0});
    CHECK_FALSE(decode_record(b).has_value());
  }
  SUBCASE("unknown format version") {
    std::vector<std::byte> b(body.begin(), body.end());
    b[record_layout::format_offset] = std::byte{2};
    CHECK_FALSE(decode_record(b).has_value());
  }
  SUBCASE("unknown attribute bits") {
    std::vector<std::byte> b(body.begin(), body.end());
    b[record_layout::attributes_offset] = std::byte{0x80};
    CHECK_FALSE(decode_record(b).has_value());
  }
  SUBCASE("key length past the end, and lengths that wrap 32 bits") {
    std::vector<std::byte> b(body.begin(), body.end());
    store_le<std::uint32_t>(b.data() + record_layout::key_len_offset, 0xFFFFFFF0);
    CHECK_FALSE(decode_record(b).has_value());
    store_le<std::uint32_t>(b.data() + record_layout::key_len_offset, 0x10);
    store_le<std::uint32_t>(b.data() + record_layout::value_len_offset, 0xFFFFFFF8);
    CHECK_FALSE(decode_record(b).has_value());
  }
  SUBCASE("header count larger than the headers present") {
    std::vector<std::byte> b(body.begin(), body.end());
    store_le<std::uint16_t>(b.data() + record_layout::header_count_offset, 3);
    CHECK_FALSE(decode_record(b).has_value());
  }
  SUBCASE("header count smaller than the headers present") {
    std::vector<std::byte> b(body.begin(), body.end());
    store_le<std::uint16_t>(b.data() + record_layout::header_count_offset, 1);
    CHECK_FALSE(decode_record(b).has_value());
  }
}

TEST_CASE("validate_records accepts a run and refuses anything else in it") {
  std::vector<std::byte> run;
  for (int i = 0; i < 5; ++i) {
    record_input in;
    in.timestamp_ms = 100 + i * (i % 2 == 0 ? 1 : -1);
    in.value = as_bytes("payload");
    const auto f = make_record(in);
    run.insert(run.end(), f.begin(), f.end());
  }
  const auto ok = validate_records(run);
  REQUIRE(ok.has_value());
  CHECK(ok->count == 5);
  CHECK(ok->max_timestamp_ms == 104);

  SUBCASE("a torn last record") {
    CHECK_FALSE(validate_records(std::span(run).first(run.size() - 1)).has_value());
  }
  SUBCASE("a bad CRC in the middle") {
    auto r = run;
    r[run.size() / 2] ^= std::byte{1};
    CHECK_FALSE(validate_records(r).has_value());
  }
  SUBCASE("a frame that is not a RECORD") {
    auto r = run;
    append_frame(r, opcode::ping, 0, as_bytes("12345678"));
    CHECK(validate_records(r).error() == errc::malformed_body);
  }
  SUBCASE("empty run") {
    const auto e = validate_records({});
    REQUIRE(e.has_value());
    CHECK(e->count == 0);
  }
}

TEST_CASE("random mutations of a record never crash decode") {
  const std::array<record_header, 2> headers{record_header{"trace-id", as_bytes("abc123")},
                                             record_header{"n", as_bytes("v")}};
  const auto good = make_record(sample_input(headers));
  std::mt19937_64 rng(99);
  for (int i = 0; i < 50000; ++i) {
    std::vector<std::byte> b(good.begin() + header_size, good.end());
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<std::byte>(rng());
    const auto v = decode_record(b);
    if (v) {
      CHECK(v->key.size() + v->value.size() + record_layout::fixed_size <= b.size());
    }
  }
}

TEST_CASE("stamping patches the CRC: the same as recomputing it, and a record changed after validation stays invalid") {
  std::vector<std::byte> value(300);
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<std::byte>(i * 7);
  crc32c_shifter shifter;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{300}}) {
    for (std::int64_t ts : {std::int64_t{0}, std::int64_t{42}}) {
      record_input in;
      in.timestamp_ms = ts;
      in.value = std::span(value).first(n);
      auto f = make_record(in);
      stamp_record(f, 0x0102030405060708ull + n, 1700000000123, shifter);
      auto g = f;  // recompute the CRC from scratch: it must be the patched one
      mcp::codec::store_le<std::uint32_t>(g.data() + crc_offset, crc32c(std::span(g).subspan(header_size)));
      CHECK(f == g);
      REQUIRE(decode_record_frame(f).has_value());
      // Restamping a stored record (a new offset) keeps it valid too.
      stamp_record(f, 9, 1, shifter);
      const auto v = decode_record_frame(f);
      REQUIRE(v.has_value());
      CHECK(v->offset == 9);
    }
  }
  record_input in;
  in.value = std::span(value).first(50);
  auto f = make_record(in);
  f.back() ^= std::byte{1};  // corrupted between validation and the stamp
  stamp_record(f, 3, 5);
  CHECK_FALSE(decode_record_frame(f).has_value());
}
