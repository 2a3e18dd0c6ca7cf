// A FETCH that follows (codec::fetch_flag_follow, docs/protocol.md "Following"),
// against the real mcp-broker on loopback: raw frames, so every answer and its
// correlation is seen as the broker sends it.

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/shard_router.h"
#include "codec/frame_encoder.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/process_memory.h"
#include "tests/support/bytes.h"
#include "tools/client/record_frames.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::broker_process;
using mcp::test::rss_kib;

namespace {

void send_fetch(client::connection& c, std::uint32_t corr, const std::string& topic, std::uint32_t partition,
                std::uint64_t offset, std::uint32_t max_wait_ms, std::uint16_t flags = codec::fetch_flag_follow,
                std::uint32_t max_bytes = 1 << 20) {
  std::vector<std::byte> body;
  codec::append_fetch(body, {offset, partition, max_bytes, max_wait_ms, flags, topic});
  std::vector<std::byte> frame;
  codec::append_frame(frame, codec::opcode::fetch, corr, body);
  REQUIRE(c.send_bytes(frame).has_value());
}

struct answer {
  std::uint32_t correlation = 0;
  codec::opcode op{};
  codec::records_body header{};
  std::vector<std::string> values;
  std::vector<std::uint64_t> offsets;
  codec::error_code error = codec::error_code::none;
};

// The next answer on `c`, its records read and checked.
answer next_answer(client::connection& c, int timeout_ms = 5000) {
  auto f = c.read_frame(timeout_ms);
  REQUIRE(f.has_value());
  answer a;
  a.correlation = f->header.correlation;
  a.op = f->header.op;
  if (a.op == codec::opcode::error) {
    a.error = client::error_from(*f).code;
    return a;
  }
  REQUIRE(a.op == codec::opcode::records);
  const auto h = codec::decode_records(f->body);
  REQUIRE(h.has_value());
  a.header = *h;
  client::byte_buffer bytes;
  REQUIRE(c.read_records(&bytes, h->byte_count, h->record_count).has_value());
  REQUIRE(client::for_each_record_frame(bytes, [&](const codec::record_view& r) {
    a.values.emplace_back(as_string(r.value));
    a.offsets.push_back(r.offset);
  }));
  return a;
}

void publish(client::connection& c, const std::string& topic, std::uint32_t partition,
             const std::vector<std::string>& values) {
  std::vector<codec::record_input> recs;
  for (const auto& v : values) {
    codec::record_input in;
    in.value = as_bytes(v);
    recs.push_back(in);
  }
  REQUIRE(c.publish(topic, partition, recs).has_value());
}

// Answers until one carries records (empty ones are the follow's heartbeats).
answer next_records(client::connection& c) {
  for (int i = 0; i < 50; ++i) {
    answer a = next_answer(c);
    if (a.op != codec::opcode::records || a.header.record_count > 0) return a;
  }
  FAIL("no records in 50 answers");
  return {};
}

}  // namespace

TEST_CASE("a followed FETCH answers each new batch with its correlation, asked once, on the direct and forwarding path") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("f", 8).has_value());
  for (unsigned owner = 0; owner < 2; ++owner) {
    for (const bool forwarded : {false, true}) {
      CAPTURE(owner);
      CAPTURE(forwarded);
      std::uint32_t p = 0;
      while (broker::owner_shard("f", p, 2) != owner) ++p;
      const std::string tag = std::to_string(owner) + (forwarded ? "f" : "d");
      auto follower = b.connect(b.shard_port(forwarded ? 1 - owner : owner));
      const std::uint64_t start = admin.fetch("f", p, 0).value().header.high_watermark;
      send_fetch(follower, 77, "f", p, start, 5000);
      publish(admin, "f", p, {"a" + tag, "b" + tag, "c" + tag});
      const answer first = next_records(follower);
      CHECK(first.correlation == 77);
      CHECK(first.header.first_offset == start);
      CHECK(first.values == std::vector<std::string>{"a" + tag, "b" + tag, "c" + tag});
      // No second FETCH: the broker goes on from the end of its last answer.
      publish(admin, "f", p, {"d" + tag});
      publish(admin, "f", p, {"e" + tag, "f" + tag});
      std::vector<std::string> rest;
      std::uint64_t next = start + 3;
      while (rest.size() < 3) {
        const answer a = next_records(follower);
        CHECK(a.correlation == 77);
        CHECK(a.header.first_offset == next);
        for (const auto o : a.offsets) CHECK(o == next++);
        rest.insert(rest.end(), a.values.begin(), a.values.end());
      }
      CHECK(rest == std::vector<std::string>{"d" + tag, "e" + tag, "f" + tag});
    }
  }
}

TEST_CASE("an idle follow answers empty every max_wait_ms and goes on; the connection is not idle-closed") {
  broker_process b({.shards = 1, .extra = {"--idle-timeout-ms", "400"}});
  auto c = b.connect();
  REQUIRE(c.create_topic("quiet", 1).has_value());
  auto follower = b.connect();
  send_fetch(follower, 5, "quiet", 0, 0, 100);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {  // ~1 s, over twice the idle timeout
    const answer a = next_answer(follower, 2000);
    REQUIRE(a.op == codec::opcode::records);
    CHECK(a.correlation == 5);
    CHECK(a.header.record_count == 0);
    CHECK(a.header.first_offset == 0);
  }
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(800));
  auto fresh = b.connect();  // `c` sent nothing all this time: closed as idle
  publish(fresh, "quiet", 0, {"at last"});
  const answer a = next_records(follower);
  CHECK(a.correlation == 5);
  CHECK(a.values == std::vector<std::string>{"at last"});
}

TEST_CASE("a newer FETCH of the partition ends the follow: nothing of the old one comes after the new one's answer") {
  broker_process b({.shards = 1});
  auto c = b.connect();
  REQUIRE(c.create_topic("seek", 2).has_value());
  publish(c, "seek", 0, {"r0", "r1", "r2", "r3"});
  auto follower = b.connect();
  send_fetch(follower, 1, "seek", 0, 0, 5000);
  send_fetch(follower, 9, "seek", 1, 0, 5000);  // another partition's follow, left alone
  CHECK(next_records(follower).correlation == 1);
  // The consumer seeks back to offset 2, with a plain FETCH.
  send_fetch(follower, 2, "seek", 0, 2, 0, 0);
  answer a = next_answer(follower);
  while (a.correlation == 1) a = next_answer(follower);  // answers sent before the broker read the new FETCH
  CHECK(a.correlation == 2);
  CHECK(a.values == std::vector<std::string>{"r2", "r3"});
  publish(c, "seek", 0, {"r4"});
  publish(c, "seek", 1, {"other"});
  // Only partition 1's follow answers now.
  const answer other = next_records(follower);
  CHECK(other.correlation == 9);
  CHECK(other.values == std::vector<std::string>{"other"});
  auto more = follower.read_frame(500);
  CHECK_FALSE(more.has_value());
}

TEST_CASE("a follow with max_wait_ms 0 is refused with INVALID_ARGUMENT; an ERROR ends a follow") {
  broker_process b({.shards = 1});
  auto c = b.connect();
  REQUIRE(c.create_topic("t", 1).has_value());
  send_fetch(c, 3, "t", 0, 0, 0);
  answer a = next_answer(c);
  CHECK(a.correlation == 3);
  CHECK(a.error == codec::error_code::invalid_argument);
  // Past the end: OUT_OF_RANGE, once, and the follow is over.
  send_fetch(c, 4, "t", 0, 100, 200);
  a = next_answer(c);
  CHECK(a.correlation == 4);
  CHECK(a.error == codec::error_code::out_of_range);
  CHECK_FALSE(c.read_frame(500).has_value());
  // Deleting the topic answers a parked follow UNKNOWN_TOPIC, and nothing after.
  send_fetch(c, 6, "t", 0, 0, 10000);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto admin = b.connect();
  REQUIRE(admin.delete_topic("t").has_value());
  a = next_answer(c);
  CHECK(a.correlation == 6);
  CHECK(a.error == codec::error_code::unknown_topic);
  CHECK_FALSE(c.read_frame(500).has_value());
}

TEST_CASE("a follower that stops reading is sent no more than its window; when it reads again it gets every record in order") {
  broker_process b({.shards = 1, .durability = "none", .extra = {"--max-inflight-bytes", "1048576"}});
  auto c = b.connect();
  REQUIRE(c.create_topic("big", 1).has_value());
  std::vector<std::string> vals;
  for (int i = 0; i < 64; ++i) vals.push_back(std::string(1000, static_cast<char>('a' + i % 26)));
  constexpr int batches = 500;  // ~34 MB stored
  for (int i = 0; i < batches; ++i) publish(c, "big", 0, vals);
  const auto before = rss_kib(b.pid());
  // Answers of 8 KiB: small enough to be copied into the reply (--copy-max-bytes),
  // so every answer queued would be broker memory.
  auto follower = b.connect();
  send_fetch(follower, 8, "big", 0, 0, 1000, codec::fetch_flag_follow, 8 << 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto after = rss_kib(b.pid());
  MESSAGE("broker RSS " << before << " KiB -> " << after << " KiB with a follower not reading");
  CHECK(after < before + 8 * 1024);
  CHECK(c.ping(1).value() == 1);  // others are served meanwhile
  std::uint64_t next = 0;
  while (next < batches * 64) {
    const answer a = next_records(follower);
    REQUIRE(a.correlation == 8);
    REQUIRE(a.header.first_offset == next);
    for (std::size_t i = 0; i < a.offsets.size(); ++i) {
      REQUIRE(a.offsets[i] == next);
      REQUIRE(a.values[i] == vals[next % 64]);
      ++next;
    }
  }
  CHECK(next == batches * 64);
}

namespace {

void send_window(client::connection& c, std::uint32_t corr, std::uint32_t fetch, std::uint32_t bytes) {
  std::array<std::byte, codec::window_size> body{};
  codec::encode_window(body, {fetch, bytes});
  std::vector<std::byte> frame;
  codec::append_frame(frame, codec::opcode::window, corr, body);
  REQUIRE(c.send_bytes(frame).has_value());
}

}  // namespace

TEST_CASE("a windowed follow sends no more than its window; WINDOW opens it again; every record in order") {
  broker_process b({.durability = "none"});
  auto admin = b.connect();
  REQUIRE(admin.create_topic("w", 8).has_value());
  for (const bool forwarded : {false, true}) {
    CAPTURE(forwarded);
    const std::uint32_t p = forwarded ? 1 : 0;
    const unsigned owner = broker::owner_shard("w", p, 2);
    auto follower = b.connect(b.shard_port(forwarded ? 1 - owner : owner));
    std::vector<std::string> vals;
    for (int i = 0; i < 40; ++i) vals.push_back(std::string(100, static_cast<char>('a' + i % 26)));
    publish(admin, "w", p, vals);
    // max_bytes 1,000: the window starts there, ~6 records of ~160 bytes.
    send_fetch(follower, 21, "w", p, 0, 100, codec::fetch_flag_follow | codec::fetch_flag_windowed, 1000);
    std::uint64_t next = 0, used = 0;
    const auto take = [&](const answer& a) {
      REQUIRE(a.correlation == 21);
      REQUIRE(a.header.first_offset == next);
      for (std::size_t i = 0; i < a.offsets.size(); ++i) {
        REQUIRE(a.offsets[i] == next);
        REQUIRE(a.values[i] == vals[next]);
        ++next;
      }
      used += a.header.byte_count;
    };
    // Every answer until the follow goes quiet: the window is used up, and not
    // even the empty answers of an idle follow come, though max_wait_ms (100)
    // passes many times.
    const auto until_quiet = [&] {
      while (auto f = follower.read_frame(400)) {
        REQUIRE(f->header.op == codec::opcode::records);
        const auto h = codec::decode_records(f->body);
        REQUIRE(h.has_value());
        REQUIRE(h->record_count > 0);
        client::byte_buffer bytes;
        REQUIRE(follower.read_records(&bytes, h->byte_count, h->record_count).has_value());
        answer a;
        a.correlation = f->header.correlation;
        a.header = *h;
        REQUIRE(client::for_each_record_frame(bytes, [&](const codec::record_view& r) {
          a.values.emplace_back(as_string(r.value));
          a.offsets.push_back(r.offset);
        }));
        take(a);
      }
    };
    constexpr std::uint64_t one_record = 200;  // a 100-byte value's RECORD frame, with room to spare
    until_quiet();
    CHECK(next > 0);
    // It stops once the window is used up, overshooting by less than the record
    // that went whole though larger than what was left.
    CHECK(used >= 1000);
    CHECK(used < 1000 + one_record);
    CHECK(next < vals.size());
    // 500 more bytes: answers up to them, then quiet again.
    send_window(follower, 0, 21, 500);
    const std::uint64_t before = next;
    until_quiet();
    CHECK(next > before);
    CHECK(used >= 1500);
    CHECK(used < 1500 + one_record);
    // A large window: the rest, in order, and then the follow waits at the end as usual.
    send_window(follower, 0, 21, 1 << 20);
    while (next < vals.size()) take(next_records(follower));
    CHECK(next == vals.size());
    publish(admin, "w", p, {vals[0]});
    vals.push_back(vals[0]);
    take(next_records(follower));
    CHECK(next == vals.size());
  }
}

TEST_CASE("WINDOW: malformed is MALFORMED_BODY; to a follow without a window INVALID_ARGUMENT; to no follow ignored") {
  broker_process b({.shards = 1});
  auto c = b.connect();
  REQUIRE(c.create_topic("t", 1).has_value());
  // Windowed without follow: the FETCH itself is malformed.
  send_fetch(c, 2, "t", 0, 0, 100, codec::fetch_flag_windowed);
  CHECK(next_answer(c).error == codec::error_code::malformed_body);
  std::vector<std::byte> frame;
  codec::append_frame(frame, codec::opcode::window, 3, as_bytes("short"));
  REQUIRE(c.send_bytes(frame).has_value());
  answer a = next_answer(c);
  CHECK(a.correlation == 3);
  CHECK(a.error == codec::error_code::malformed_body);
  send_window(c, 4, 5, 0);  // a grant of nothing
  CHECK(next_answer(c).error == codec::error_code::malformed_body);
  send_fetch(c, 6, "t", 0, 0, 5000);  // follows, no window
  send_window(c, 7, 6, 100);
  a = next_answer(c);
  CHECK(a.correlation == 7);
  CHECK(a.error == codec::error_code::invalid_argument);
  // A follow that already ended (or never was): no answer, the connection goes on.
  send_window(c, 8, 999, 100);
  CHECK(c.ping(42).value() == 42);
}
