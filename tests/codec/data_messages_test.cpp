#include "codec/data_messages.h"

#include <doctest/doctest.h>

#include <array>
#include <random>
#include <vector>

#include "codec/byte_order.h"
#include "codec/frame_format.h"
#include "tests/support/bytes.h"

using namespace mcp::codec;
using mcp::test::as_bytes;

TEST_CASE("PUBLISH prefix round-trips and the records follow it") {
  publish_header h{3, 2, 0, "orders"};
  std::vector<std::byte> body(publish_prefix_size(h.topic));
  REQUIRE(encode_publish_prefix(body, h) == body.size());
  const auto recs = as_bytes("RECORDS!");
  body.insert(body.end(), recs.begin(), recs.end());
  const auto v = decode_publish(body);
  REQUIRE(v.has_value());
  CHECK(v->header.partition == 3);
  CHECK(v->header.record_count == 2);
  CHECK(v->header.topic == "orders");
  CHECK(mcp::test::as_string(v->records) == "RECORDS!");
}

TEST_CASE("PUBLISH bodies that lie are refused") {
  publish_header h{0, 1, 0, "t"};
  std::vector<std::byte> body(publish_prefix_size(h.topic));
  REQUIRE(encode_publish_prefix(body, h) != 0);
  body.push_back(std::byte{1});
  REQUIRE(decode_publish(body).has_value());
  for (std::size_t n = 0; n < publish_fixed_size + 1; ++n) {
    CHECK_FALSE(decode_publish(std::span(body).first(n)).has_value());
  }
  SUBCASE("topic length past the end") {
    store_le<std::uint16_t>(body.data() + 10, 500);
    CHECK_FALSE(decode_publish(body).has_value());
  }
  SUBCASE("zero records") {
    store_le<std::uint32_t>(body.data() + 4, 0);
    CHECK_FALSE(decode_publish(body).has_value());
  }
  SUBCASE("reserved flags set") {
    store_le<std::uint16_t>(body.data() + 8, 1);
    CHECK_FALSE(decode_publish(body).has_value());
  }
  SUBCASE("no records at all") {
    CHECK_FALSE(decode_publish(std::span(body).first(body.size() - 1)).has_value());
  }
  SUBCASE("invalid topic name") {
    body[publish_fixed_size] = std::byte{'/'};
    CHECK_FALSE(decode_publish(body).has_value());
  }
}

TEST_CASE("topic names") {
  CHECK(is_valid_topic_name("orders"));
  CHECK(is_valid_topic_name("a.b-c_D9"));
  CHECK(is_valid_topic_name(std::string(249, 'x')));
  CHECK_FALSE(is_valid_topic_name(std::string(250, 'x')));
  CHECK_FALSE(is_valid_topic_name(""));
  CHECK_FALSE(is_valid_topic_name("."));
  CHECK_FALSE(is_valid_topic_name(".."));
  CHECK_FALSE(is_valid_topic_name("a/b"));
  CHECK_FALSE(is_valid_topic_name("a b"));
  CHECK_FALSE(is_valid_topic_name(std::string_view("a\0b", 3)));
}

TEST_CASE("ACK round-trips; wrong sizes and reserved bytes are refused") {
  const ack_body a{1ull << 40, 64, 7, 0, ack_flag_duplicate};
  std::array<std::byte, ack_size> b{};
  encode_ack(b, a);
  CHECK(decode_ack(b).value() == a);
  CHECK_FALSE(decode_ack(std::span(b).first(ack_size - 1)).has_value());
  b[21] = std::byte{1};
  CHECK_FALSE(decode_ack(b).has_value());
}

TEST_CASE("FETCH round-trips; malformed bodies are refused") {
  const fetch_body f{99, 2, 1 << 20, 500, 0, "events"};
  std::vector<std::byte> b;
  append_fetch(b, f);
  CHECK(decode_fetch(b).value() == f);
  for (std::size_t n = 0; n < b.size(); ++n) CHECK_FALSE(decode_fetch(std::span(b).first(n)).has_value());
  b.push_back(std::byte{'x'});
  CHECK_FALSE(decode_fetch(b).has_value());
}

TEST_CASE("RECORDS round-trips; count and bytes must agree on emptiness") {
  const records_body r{10, 20, 0, 1, 10, 1600};
  std::array<std::byte, records_size> b{};
  encode_records(b, r);
  CHECK(decode_records(b).value() == r);
  const records_body empty{20, 20, 0, 1, 0, 0};
  encode_records(b, empty);
  CHECK(decode_records(b).value() == empty);
  encode_records(b, records_body{20, 20, 0, 1, 0, 5});
  CHECK_FALSE(decode_records(b).has_value());
  CHECK_FALSE(decode_records(std::span(b).first(10)).has_value());
}

TEST_CASE("DELIVERY round-trips; empty runs, count 0 and reserved bytes are refused") {
  const delivery_body d{1234567890123ull, 3, 64, 9984, 77, 2};
  std::array<std::byte, delivery_size> b{};
  encode_delivery(b, d);
  CHECK(decode_delivery(b).value() == d);
  // Byte positions of docs/groups.md.
  CHECK(b[8] == std::byte{3});
  CHECK(b[20] == std::byte{77});
  CHECK(b[24] == std::byte{2});
  for (const auto bad : {delivery_body{1, 3, 0, 10, 7, 1}, delivery_body{1, 3, 1, 0, 7, 1}, delivery_body{1, 3, 1, 10, 7, 0}}) {
    encode_delivery(b, bad);
    CHECK_FALSE(decode_delivery(b).has_value());
  }
  encode_delivery(b, d);
  b[30] = std::byte{1};
  CHECK_FALSE(decode_delivery(b).has_value());
  CHECK_FALSE(decode_delivery(std::span(b).first(31)).has_value());
}

TEST_CASE("CREDIT, NACK and PING round-trip and refuse wrong sizes") {
  std::array<std::byte, credit_size> c{};
  encode_credit(c, {5, 100});
  CHECK(decode_credit(c).value() == credit_body{5, 100});
  CHECK_FALSE(decode_credit(std::span(c).first(7)).has_value());

  std::array<std::byte, nack_size> n{};
  const nack_body nb{5, 3, 1234, 250};
  encode_nack(n, nb);
  CHECK(decode_nack(n).value() == nb);
  CHECK_FALSE(decode_nack(std::span(n).first(nack_size - 1)).has_value());
  // The dead-letter flag round-trips; unknown flag bits and the reserved bytes are refused.
  const nack_body give_up{5, 3, 1234, 0, nack_flag_dead_letter};
  encode_nack(n, give_up);
  CHECK(decode_nack(n).value() == give_up);
  CHECK(n[20] == std::byte{1});
  auto unknown = n;
  unknown[20] = std::byte{0x02};
  CHECK_FALSE(decode_nack(unknown).has_value());
  auto reserved = n;
  reserved[23] = std::byte{0x01};
  CHECK_FALSE(decode_nack(reserved).has_value());

  std::array<std::byte, ping_size> p{};
  encode_ping(p, 0x1122334455667788ull);
  CHECK(decode_ping(p).value() == 0x1122334455667788ull);
  CHECK_FALSE(decode_ping(std::span(p).first(4)).has_value());
}

TEST_CASE("COMMIT round-trips ranges; bad counts and inverted ranges are refused") {
  const std::array<offset_range, 3> ranges{offset_range{0, 9}, offset_range{12, 12}, offset_range{20, 1000}};
  std::vector<std::byte> b;
  append_commit(b, 8, 2, ranges);
  const auto v = decode_commit(b);
  REQUIRE(v.has_value());
  CHECK(v->subscription == 8);
  CHECK(v->partition == 2);
  REQUIRE(v->range_count == 3);
  for (std::uint32_t i = 0; i < 3; ++i) CHECK(v->range(i) == ranges[i]);

  CHECK_FALSE(decode_commit(std::span(b).first(b.size() - 1)).has_value());
  auto inverted = b;
  store_le<std::uint64_t>(inverted.data() + commit_fixed_size, 100);  // first 100 > last 9
  CHECK_FALSE(decode_commit(inverted).has_value());
  std::vector<std::byte> none;
  append_commit(none, 8, 2, {});
  CHECK_FALSE(decode_commit(none).has_value());
  auto too_many = b;
  store_le<std::uint32_t>(too_many.data() + 8, max_commit_ranges + 1);
  CHECK_FALSE(decode_commit(too_many).has_value());
}

TEST_CASE("whatever random bytes decode to re-encodes to the same bytes") {
  // The layouts are canonical (reserved bytes must be zero), so a body that
  // decodes must be exactly what the encoder writes for the decoded value.
  std::mt19937_64 rng(7);
  int decoded = 0;
  for (int i = 0; i < 200000; ++i) {
    auto b = mcp::test::random_bytes(rng, rng() % 48);
    if (b.size() >= 24 && rng() % 2 == 0) {
      std::fill(b.begin() + 20, b.begin() + 24, std::byte{0});  // help ACK/NACK past the reserved check
      store_le<std::uint16_t>(b.data() + 22, static_cast<std::uint16_t>(b.size() - fetch_fixed_size));
      for (std::size_t k = fetch_fixed_size; k < b.size(); ++k) b[k] = std::byte{'a'};
      b[20] = b[21] = std::byte{0};
    }
    if (const auto a = decode_ack(b)) {
      std::array<std::byte, ack_size> out{};
      encode_ack(out, *a);
      CHECK(std::equal(out.begin(), out.end(), b.begin(), b.end()));
      ++decoded;
    }
    if (const auto f = decode_fetch(b)) {
      std::vector<std::byte> out;
      append_fetch(out, *f);
      CHECK(out == b);
      ++decoded;
    }
    if (const auto n = decode_nack(b)) {
      std::array<std::byte, nack_size> out{};
      encode_nack(out, *n);
      CHECK(std::equal(out.begin(), out.end(), b.begin(), b.end()));
      ++decoded;
    }
    if (const auto c = decode_credit(b)) {
      std::array<std::byte, credit_size> out{};
      encode_credit(out, *c);
      CHECK(std::equal(out.begin(), out.end(), b.begin(), b.end()));
      ++decoded;
    }
    if (const auto w = decode_window(b)) {
      std::array<std::byte, window_size> out{};
      encode_window(out, *w);
      CHECK(std::equal(out.begin(), out.end(), b.begin(), b.end()));
      CHECK(w->bytes > 0);
      ++decoded;
    }
    if (const auto p = decode_publish(b)) {
      std::vector<std::byte> out(publish_prefix_size(p->header.topic));
      REQUIRE(encode_publish_prefix(out, p->header) == out.size());
      CHECK(std::equal(out.begin(), out.end(), b.begin()));
      ++decoded;
    }
    (void)decode_records(b);
    (void)decode_commit(b);
    (void)decode_ping(b);
  }
  CHECK(decoded > 0);
}

TEST_CASE("FETCH flags: by_timestamp (bit 0), follow (bit 1), windowed (bit 2, with follow) round-trip, others refused") {
  for (const std::uint16_t flags :
       {fetch_flag_by_timestamp, fetch_flag_follow, static_cast<std::uint16_t>(fetch_flag_by_timestamp | fetch_flag_follow),
        static_cast<std::uint16_t>(fetch_flag_follow | fetch_flag_windowed),
        static_cast<std::uint16_t>(fetch_flag_by_timestamp | fetch_flag_follow | fetch_flag_windowed)}) {
    CAPTURE(flags);
    const fetch_body f{1700000000000ull, 0, 1024, 100, flags, "t"};
    std::vector<std::byte> b;
    append_fetch(b, f);
    CHECK(decode_fetch(b).value() == f);
  }
  CHECK(fetch_flag_follow == 0x2);
  CHECK(fetch_flag_windowed == 0x4);
  std::vector<std::byte> b;
  append_fetch(b, {1, 0, 1024, 100, 0, "t"});
  // A window without follow bounds nothing: refused.
  for (const std::uint16_t flags : {fetch_flag_windowed, static_cast<std::uint16_t>(fetch_flag_windowed | fetch_flag_by_timestamp)}) {
    CAPTURE(flags);
    store_le<std::uint16_t>(b.data() + 20, flags);
    CHECK_FALSE(decode_fetch(b).has_value());
  }
  for (int bit = 3; bit < 16; ++bit) {
    CAPTURE(bit);
    store_le<std::uint16_t>(b.data() + 20, static_cast<std::uint16_t>(1u << bit));
    CHECK_FALSE(decode_fetch(b).has_value());
  }
}

TEST_CASE("WINDOW: 8 bytes, little-endian fields; a wrong size or a grant of 0 bytes is malformed") {
  std::array<std::byte, window_size> w{};
  encode_window(w, {0x01020304u, 65536});
  CHECK(w[0] == std::byte{0x04});
  CHECK(w[3] == std::byte{0x01});
  CHECK(load_le<std::uint32_t>(w.data() + 4) == 65536u);
  CHECK(decode_window(w).value() == window_body{0x01020304u, 65536});
  CHECK_FALSE(decode_window(std::span(w).first(7)).has_value());
  std::array<std::byte, window_size + 1> longer{};
  std::copy(w.begin(), w.end(), longer.begin());
  CHECK_FALSE(decode_window(longer).has_value());
  encode_window(w, {7, 0});
  CHECK_FALSE(decode_window(w).has_value());
  CHECK(opcode_name(opcode::window) == std::string_view("WINDOW"));
  CHECK(is_known_opcode(0x17));
  CHECK_FALSE(is_known_opcode(0x18));
}
