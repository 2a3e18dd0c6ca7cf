// The real mcp-broker on 127.0.0.1 with ephemeral ports and a temp data dir; the
// fixture always stops it.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <fstream>
#include <sstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "broker/shard_router.h"
#include "codec/byte_order.h"
#include "codec/frame_encoder.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/process_memory.h"
#include "tools/client/record_frames.h"
#include "tests/support/bytes.h"
#include "tests/support/page_cache.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::broker_process;
using mcp::test::rss_kib;

namespace {

std::vector<codec::record_input> records_of(const std::vector<std::string>& values) {
  std::vector<codec::record_input> out;
  for (const auto& v : values) {
    codec::record_input in;
    in.value = as_bytes(v);
    out.push_back(in);
  }
  return out;
}

std::vector<std::string> values_of(const client::fetched& f) {
  std::vector<std::string> out;
  for (const auto& r : f.records) out.emplace_back(as_string(r.value));
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int n, std::size_t size = 0) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string v = prefix + std::to_string(i);
    if (v.size() < size) v.resize(size, '#');
    out.push_back(v);
  }
  return out;
}

// A partition of `topic` owned by `shard` (of `shards`).
std::uint32_t partition_on(const std::string& topic, unsigned shard, unsigned shards, std::uint32_t partitions) {
  for (std::uint32_t p = 0; p < partitions; ++p) {
    if (broker::owner_shard(topic, p, shards) == shard) return p;
  }
  FAIL("no partition on that shard");
  return 0;
}

}  // namespace

TEST_CASE("HELLO names the shards and their ports; PING answers PONG") {
  broker_process b;
  auto c = client::connection::connect("127.0.0.1", b.port());
  REQUIRE(c.has_value());
  const auto h = c->hello("t");
  REQUIRE(h.has_value());
  CHECK(h->version == 1);
  REQUIRE(h->shards.size() == 2);
  CHECK(h->shards[1]->port == b.shard_port(1));
  CHECK(c->ping(0xABCDEF).value() == 0xABCDEF);
}

TEST_CASE("a client speaking only an unknown version is told which versions the broker speaks") {
  broker_process b;
  auto c = client::connection::connect("127.0.0.1", b.port());
  REQUIRE(c.has_value());
  const auto h = c->hello("future", 7, 9);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().code == codec::error_code::unsupported_version);
  CHECK(h.error().message.find("1..1") != std::string::npos);
}

TEST_CASE("requests before HELLO are refused") {
  broker_process b;
  auto c = client::connection::connect("127.0.0.1", b.port());
  REQUIRE(c.has_value());
  const auto m = c->metadata();
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == codec::error_code::not_ready);
}

TEST_CASE("topics: create, metadata with owner shard and port, duplicate and bad names refused") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("orders", 4).has_value());
  const auto dup = c.create_topic("orders", 4);
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error().code == codec::error_code::topic_exists);
  CHECK(c.create_topic("bad/name", 1).error().code == codec::error_code::invalid_argument);
  CHECK(c.create_topic("zero", 0).error().code == codec::error_code::invalid_argument);
  const auto m = c.metadata({"orders", "nope"});
  REQUIRE(m.has_value());
  REQUIRE(m->topics.size() == 2);
  REQUIRE(m->topics[0]->partitions.size() == 4);
  for (const auto& p : m->topics[0]->partitions) {
    CHECK(p->shard == broker::owner_shard("orders", p->partition, 2));
    CHECK(p->port == b.shard_port(p->shard));
  }
  CHECK(m->topics[1]->error_code == static_cast<std::uint16_t>(codec::error_code::unknown_topic));
}

TEST_CASE("publish then fetch returns byte-exact records, on the direct and the forwarding path") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("events", 8).has_value());
  for (unsigned owner = 0; owner < 2; ++owner) {
    const std::uint32_t p = partition_on("events", owner, 2, 8);
    CAPTURE(owner);
    // Direct: the owner's own port. Forwarded: the other shard's port.
    auto direct = b.connect(b.shard_port(owner));
    auto forwarded = b.connect(b.shard_port(1 - owner));
    const auto first = numbered("direct-" + std::to_string(owner) + "-", 50, 120);
    const auto second = numbered("forwarded-" + std::to_string(owner) + "-", 50, 3000);
    const auto a1 = direct.publish("events", p, records_of(first));
    REQUIRE(a1.has_value());
    CHECK(a1->first_offset == 0);
    CHECK(a1->count == 50);
    const auto a2 = forwarded.publish("events", p, records_of(second));
    REQUIRE(a2.has_value());
    CHECK(a2->first_offset == 50);
    // Fetch all 100 back through both paths.
    for (auto* c : {&direct, &forwarded}) {
      std::vector<std::string> got;
      std::uint64_t next = 0;
      while (next < 100) {
        auto f = c->fetch("events", p, next, 64 << 10);
        REQUIRE(f.has_value());
        REQUIRE(f->header.record_count > 0);
        CHECK(f->header.first_offset == next);
        CHECK(f->header.high_watermark == 100);
        for (const auto& r : f->records) CHECK(r.offset == next++);
        const auto v = values_of(*f);
        got.insert(got.end(), v.begin(), v.end());
      }
      std::vector<std::string> expected = first;
      expected.insert(expected.end(), second.begin(), second.end());
      CHECK(got == expected);
    }
  }
}

TEST_CASE("fetches of records whose pages are not in the page cache return the same bytes, on both delivery paths") {
  for (const char* delivery : {"zero-copy", "copy"}) {
    CAPTURE(delivery);
    broker_process b({.shards = 1, .durability = "none", .delivery = delivery});
    auto c = b.connect();
    REQUIRE(c.create_topic("cold", 1).has_value());
    // ~2.5 MB: the walk from an index entry to an offset reads the file.
    const auto values = numbered("cold-", 10000, 200);
    for (std::size_t at = 0; at < values.size(); at += 500) {
      REQUIRE(c.publish("cold", 0, records_of({values.begin() + static_cast<std::ptrdiff_t>(at),
                                               values.begin() + static_cast<std::ptrdiff_t>(at + 500)})));
    }
    if (mcp::test::evict_segments(b.data_dir() / "topics" / "cold") == 0) {
      MESSAGE("the page cache kept the segment (tmpfs?): the fetches below are warm");
    }
    // Starts in the middle of index intervals, so each locate walks cold headers.
    for (const std::uint64_t start : {std::uint64_t{7777}, std::uint64_t{123}, std::uint64_t{5001}}) {
      CAPTURE(start);
      auto f = c.fetch("cold", 0, start, 16 << 10);
      REQUIRE(f.has_value());
      REQUIRE(f->header.record_count > 0);
      CHECK(f->header.first_offset == start);
      std::uint64_t next = start;
      for (const auto& r : f->records) {
        CHECK(r.offset == next);
        CHECK(as_string(r.value) == values[static_cast<std::size_t>(next)]);
        ++next;
      }
    }
    // And the whole log, from the start, after another eviction.
    mcp::test::evict_segments(b.data_dir() / "topics" / "cold");
    std::uint64_t next = 0;
    while (next < values.size()) {
      auto f = c.fetch("cold", 0, next, 256 << 10);
      REQUIRE(f.has_value());
      REQUIRE(f->header.record_count > 0);
      for (const auto& r : f->records) {
        REQUIRE(r.offset == next);
        REQUIRE(as_string(r.value) == values[static_cast<std::size_t>(next)]);
        ++next;
      }
    }
    CHECK(b.stop() == 0);
  }
}

TEST_CASE("the copy delivery path returns the same bytes as zero-copy") {
  broker_process b({.shards = 1, .durability = "none", .delivery = "copy"});
  auto c = b.connect();
  REQUIRE(c.create_topic("t", 1).has_value());
  const auto vals = numbered("copy-", 2000, 200);
  for (int i = 0; i < 20; ++i) {
    std::vector<std::string> part(vals.begin() + i * 100, vals.begin() + (i + 1) * 100);
    REQUIRE(c.publish("t", 0, records_of(part)).has_value());
  }
  std::vector<std::string> got;
  std::uint64_t next = 0;
  while (next < 2000) {
    auto f = c.fetch("t", 0, next, 1 << 20);
    REQUIRE(f.has_value());
    next += f->header.record_count;
    const auto v = values_of(*f);
    got.insert(got.end(), v.begin(), v.end());
  }
  CHECK(got == vals);
}

TEST_CASE("small slices copied into the reply and spliced ones carry the same bytes, back to back on one connection") {
  // --copy-max-bytes 0 splices (or READs) every slice, 1 MiB copies every one that
  // is cached, the default splits them by size; each fetch is checked record by
  // record, and several are pipelined so a copied reply must end exactly where the
  // next frame starts.
  for (const char* delivery : {"zero-copy", "copy"}) {
    for (const char* copy_max : {"0", "16384", "1048576"}) {
      CAPTURE(delivery);
      CAPTURE(copy_max);
      broker_process b({.shards = 2, .durability = "none", .delivery = delivery, .extra = {"--copy-max-bytes", copy_max}});
      auto c = b.connect();
      REQUIRE(c.create_topic("mixed", 2).has_value());
      std::vector<std::string> vals;
      for (int i = 0; i < 3000; ++i) vals.push_back(std::string(static_cast<std::size_t>(1 + (i * 37) % 700), static_cast<char>('a' + i % 26)) + std::to_string(i));
      for (std::uint32_t p = 0; p < 2; ++p) {  // partitions on both shards: direct and forwarded fetches
        for (int at = 0; at < 3000; at += 300) {
          REQUIRE(c.publish("mixed", p, records_of({vals.begin() + at, vals.begin() + at + 300})).has_value());
        }
      }
      for (std::uint32_t p = 0; p < 2; ++p) {
        CAPTURE(p);
        std::uint64_t next = 0;
        for (std::uint32_t max_bytes : {100u, 4096u, 16384u, 16385u, 65536u, 1u << 20}) {
          CAPTURE(max_bytes);
          // Three fetches in flight at once on the connection (overlapping ranges,
          // each reply checked on its own), answered in order.
          std::vector<std::byte> out;
          for (std::uint32_t k = 0; k < 3; ++k) {
            std::vector<std::byte> body;
            codec::append_fetch(body, {next + k, p, max_bytes, 0, 0, "mixed"});
            codec::append_frame(out, codec::opcode::fetch, 500 + k, body);
          }
          REQUIRE(c.send_bytes(out).has_value());
          for (std::uint32_t k = 0; k < 3; ++k) {
            auto f = c.read_frame();
            REQUIRE(f.has_value());
            REQUIRE(f->header.op == codec::opcode::records);
            CHECK(f->header.correlation == 500 + k);
            const auto h = codec::decode_records(f->body);
            REQUIRE(h.has_value());
            REQUIRE(h->record_count > 0);
            CHECK(h->first_offset == next + k);
            client::byte_buffer bytes;
            REQUIRE(c.read_records(&bytes, h->byte_count, h->record_count).has_value());
            std::uint64_t o = next + k;
            CHECK(client::for_each_record_frame(bytes, [&](const codec::record_view& r) {
              CHECK(r.offset == o);
              CHECK(as_string(r.value) == vals[static_cast<std::size_t>(o)]);
              ++o;
            }));
            CHECK(o == next + k + h->record_count);
          }
          next += 3;
        }
        // Then the whole partition.
        next = 0;
        while (next < vals.size()) {
          auto f = c.fetch("mixed", p, next, 20000);
          REQUIRE(f.has_value());
          REQUIRE(f->header.record_count > 0);
          for (const auto& r : f->records) {
            REQUIRE(r.offset == next);
            REQUIRE(as_string(r.value) == vals[static_cast<std::size_t>(next)]);
            ++next;
          }
        }
      }
      CHECK(b.stop() == 0);
    }
  }
}

TEST_CASE("copy delivery: more readers at once than the shard has copy buffers each get their whole range") {
  // 40 readers of a ~2.4 MB range (10 pieces each) share the shard's 32 copy
  // buffers: some wait for a buffer, none gets bytes of another's piece.
  broker_process b({.shards = 1, .durability = "none", .delivery = "copy"});
  auto c = b.connect();
  REQUIRE(c.create_topic("wide", 1).has_value());
  const auto vals = numbered("wide-", 4000, 560);
  for (int i = 0; i < 40; ++i) {
    std::vector<std::string> part(vals.begin() + i * 100, vals.begin() + (i + 1) * 100);
    REQUIRE(c.publish("wide", 0, records_of(part)).has_value());
  }
  std::vector<std::future<std::vector<std::string>>> readers;
  for (int r = 0; r < 40; ++r) {
    readers.push_back(std::async(std::launch::async, [&b] {
      auto rc = b.connect();
      std::vector<std::string> got;
      std::uint64_t next = 0;
      while (next < 4000) {
        auto f = rc.fetch("wide", 0, next, 8 << 20);
        if (!f || f->header.record_count == 0) break;
        next += f->header.record_count;
        const auto v = values_of(*f);
        got.insert(got.end(), v.begin(), v.end());
      }
      return got;
    }));
  }
  for (auto& r : readers) CHECK(r.get() == vals);
}

TEST_CASE("a fetch at the end waits for new data (long-poll) and times out empty otherwise") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("lp", 1).has_value());
  // Nothing arrives: an empty RECORDS after about max_wait.
  const auto t0 = std::chrono::steady_clock::now();
  auto empty = c.fetch("lp", 0, 0, 1 << 20, 200);
  REQUIRE(empty.has_value());
  CHECK(empty->header.record_count == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(150));
  // Something arrives while waiting: the fetch returns it before its timeout.
  auto waiter = std::async(std::launch::async, [&b] {
    auto w = b.connect();
    return w.fetch("lp", 0, 0, 1 << 20, 5000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t1 = std::chrono::steady_clock::now();
  REQUIRE(c.publish("lp", 0, records_of({"wake up"})).has_value());
  const auto got = waiter.get();
  REQUIRE(got.has_value());
  CHECK(got->header.record_count == 1);
  CHECK(values_of(*got) == std::vector<std::string>{"wake up"});
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(2000));
}

TEST_CASE("a restart keeps every acknowledged record") {
  broker_process b;
  {
    auto c = b.connect();
    REQUIRE(c.create_topic("durable", 2).has_value());
    for (std::uint32_t p = 0; p < 2; ++p) {
      REQUIRE(c.publish("durable", p, records_of(numbered("keep-", 30))).has_value());
    }
  }
  b.kill_now();  // no clean shutdown: acked `sync` records must survive anyway
  b.start();
  auto c = b.connect();
  for (std::uint32_t p = 0; p < 2; ++p) {
    auto f = c.fetch("durable", p, 0, 1 << 20);
    REQUIRE(f.has_value());
    CHECK(values_of(*f) == numbered("keep-", 30));
  }
  auto more = c.publish("durable", 0, records_of({"after restart"}));
  REQUIRE(more.has_value());
  CHECK(more->first_offset == 30);
}

TEST_CASE("malformed input gets its ERROR; a broken stream is closed; other clients are unaffected") {
  broker_process b;
  auto good = b.connect();
  REQUIRE(good.create_topic("t", 1).has_value());

  SUBCASE("bad magic closes the connection") {
    auto c = b.connect();
    REQUIRE(c.send_bytes(as_bytes("GET / HTTP/1.1\r\n\r\n")).has_value());
    const auto f = c.read_frame();
    REQUIRE(f.has_value());
    CHECK(client::error_from(*f).code == codec::error_code::bad_magic);
    CHECK_FALSE(c.read_frame(2000).has_value());  // closed
  }
  SUBCASE("a CRC mismatch closes the connection") {
    auto c = b.connect();
    std::vector<std::byte> f;
    std::array<std::byte, 8> body{};
    codec::append_frame(f, codec::opcode::ping, 5, body);
    f.back() ^= std::byte{1};
    REQUIRE(c.send_bytes(f).has_value());
    const auto r = c.read_frame();
    REQUIRE(r.has_value());
    CHECK(client::error_from(*r).code == codec::error_code::crc_mismatch);
    CHECK_FALSE(c.read_frame(2000).has_value());
  }
  SUBCASE("an oversize length closes the connection") {
    auto c = b.connect();
    std::vector<std::byte> f;
    codec::append_frame(f, codec::opcode::ping, 5, {});
    codec::store_le<std::uint32_t>(f.data(), 100u << 20);
    REQUIRE(c.send_bytes(f).has_value());
    const auto r = c.read_frame();
    REQUIRE(r.has_value());
    CHECK(client::error_from(*r).code == codec::error_code::frame_too_large);
  }
  SUBCASE("an unknown opcode, a malformed body and an unknown topic are answered and the connection goes on") {
    auto c = b.connect();
    std::vector<std::byte> f;
    codec::append_frame(f, codec::opcode::records, 9, as_bytes("not a request"));
    REQUIRE(c.send_bytes(f).has_value());
    auto r = c.read_frame();
    REQUIRE(r.has_value());
    CHECK(client::error_from(*r).code == codec::error_code::unknown_opcode);
    CHECK(r->header.correlation == 9);
    f.clear();
    codec::append_frame(f, codec::opcode::fetch, 10, as_bytes("short"));
    REQUIRE(c.send_bytes(f).has_value());
    r = c.read_frame();
    REQUIRE(r.has_value());
    CHECK(client::error_from(*r).code == codec::error_code::malformed_body);
    CHECK(c.publish("nope", 0, records_of({"x"})).error().code == codec::error_code::unknown_topic);
    CHECK(c.publish("t", 5, records_of({"x"})).error().code == codec::error_code::unknown_partition);
    CHECK(c.ping(1).value() == 1);  // still open
  }
  SUBCASE("a PUBLISH whose record is corrupt stores nothing") {
    auto c = b.connect();
    const std::vector<std::string> values{"one", "two"};
    auto recs = records_of(values);
    auto corr = c.send_publish("t", 0, recs);
    REQUIRE(corr.has_value());
    REQUIRE(c.read_ack(*corr).has_value());
    // Hand-build a publish with a flipped byte inside the second record.
    codec::publish_header ph{0, 2, 0, "t"};
    std::vector<std::byte> body(codec::publish_prefix_size("t"));
    codec::encode_publish_prefix(body, ph);
    for (const auto& r : recs) {
      std::vector<std::byte> rf(codec::record_frame_size(r));
      codec::encode_record(rf, r);
      body.insert(body.end(), rf.begin(), rf.end());
    }
    body.back() ^= std::byte{0x40};
    std::vector<std::byte> f;
    codec::append_frame(f, codec::opcode::publish, 77, body);
    REQUIRE(c.send_bytes(f).has_value());
    const auto r = c.read_frame();
    REQUIRE(r.has_value());
    CHECK(client::error_from(*r).code == codec::error_code::malformed_body);
    auto all = c.fetch("t", 0, 0, 1 << 20);
    REQUIRE(all.has_value());
    CHECK(all->header.high_watermark == 2);
  }
  // The first client never noticed.
  CHECK(good.publish("t", 0, records_of({"still fine"})).has_value());
}

TEST_CASE("SIGTERM exits 0") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("t", 1).has_value());
  REQUIRE(c.publish("t", 0, records_of({"x"})).has_value());
  CHECK(b.stop() == 0);
}

TEST_CASE("a broker that stopped has freed its ports when it exits; one started at once after kill -9 comes up") {
  broker_process b;
  {
    auto c = b.connect();
    REQUIRE(c.create_topic("t", 1).has_value());
    REQUIRE(c.publish("t", 0, records_of({"x"})).has_value());
  }
  // Clean stop: an accept left armed in a ring would hold a listening socket until
  // the kernel tears the ring down, after the exit.
  REQUIRE(b.stop() == 0);
  for (unsigned i = 0; i <= 2; ++i) {
    CAPTURE(i);
    CHECK(mcp::test::port_free(static_cast<std::uint16_t>(b.port() + i)));
  }
  // kill -9 leaves that to the kernel; a restart at once waits for the ports
  // (up to a few seconds) instead of failing with "Address already in use".
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    REQUIRE(b.start_at_once());
    auto c = b.connect();
    REQUIRE(c.publish("t", 0, records_of({"y"})).has_value());
    b.kill_now();
  }
  REQUIRE(b.start_at_once());
  auto c = b.connect();
  auto f = c.fetch("t", 0, 0, 1 << 20);
  REQUIRE(f.has_value());
  CHECK(f->records.size() == 4);
}

TEST_CASE("200 concurrent connections publish and fetch their own records") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("many", 8).has_value());
  std::vector<client::connection> conns;
  for (int i = 0; i < 200; ++i) {
    // Spread over the main port and both shard ports.
    const std::uint16_t port = i % 3 == 0 ? b.port() : b.shard_port(static_cast<unsigned>(i % 2));
    conns.push_back(b.connect(port));
  }
  // Every connection sends before any reads: 200 requests in flight at once.
  std::vector<std::vector<std::string>> sent(200);
  std::vector<std::uint32_t> corr(200);
  for (int i = 0; i < 200; ++i) {
    sent[i] = numbered("c" + std::to_string(i) + "-", 5);
    auto r = conns[i].send_publish("many", static_cast<std::uint32_t>(i % 8), records_of(sent[i]));
    REQUIRE(r.has_value());
    corr[i] = *r;
  }
  std::vector<std::uint64_t> first(200);
  for (int i = 0; i < 200; ++i) {
    auto a = conns[i].read_ack(corr[i]);
    REQUIRE(a.has_value());
    CHECK(a->count == 5);
    first[i] = a->first_offset;
  }
  for (int i = 0; i < 200; ++i) {
    auto f = conns[i].fetch("many", static_cast<std::uint32_t>(i % 8), first[i], 5 * 200);
    REQUIRE(f.has_value());
    std::vector<std::string> got = values_of(*f);
    got.resize(std::min<std::size_t>(got.size(), 5));
    CHECK(got == sent[i]);
  }
}

TEST_CASE("SIGTERM during load exits 0 and loses no acknowledged record") {
  broker_process b({.shards = 2, .durability = "sync"});
  {
    auto admin = b.connect();
    REQUIRE(admin.create_topic("load", 2).has_value());
  }
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> acked_end(2, 0);  // per partition: every offset below was acked
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      auto c = client::connection::connect("127.0.0.1", b.shard_port(broker::owner_shard("load", p, 2)));
      if (!c || !c->hello("load")) return;
      const auto vals = numbered("load-", 32, 100);
      const auto recs = records_of(vals);
      while (!stop) {
        auto a = c->publish("load", p, recs);
        if (!a) return;  // the broker went away: what was acked is recorded
        acked_end[p] = a->first_offset + a->count;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(b.stop() == 0);
  stop = true;
  for (auto& t : producers) t.join();
  CHECK(acked_end[0] + acked_end[1] > 0);
  b.start();
  auto c = b.connect();
  for (std::uint32_t p = 0; p < 2; ++p) {
    CAPTURE(p);
    const auto m = c.fetch("load", p, 0, 1);
    REQUIRE(m.has_value());
    CHECK(m->header.high_watermark >= acked_end[p]);
  }
}

TEST_CASE("a client that sends FETCHes and never reads is throttled; broker memory stays bounded") {
  broker_process b({.shards = 1, .durability = "none", .extra = {"--max-inflight-bytes", "1048576"}});
  auto c = b.connect();
  REQUIRE(c.create_topic("big", 1).has_value());
  const auto vals = numbered("big-", 64, 16000);
  for (int i = 0; i < 16; ++i) REQUIRE(c.publish("big", 0, records_of(vals)).has_value());  // ~16 MiB
  const auto before = rss_kib(b.pid());
  // 500,000 FETCH requests of 1 MiB each (21 MB of requests, far more than socket
  // buffers hold), none of the answers read.
  auto slow = b.connect();
  ::fcntl(slow.fd(), F_SETFL, ::fcntl(slow.fd(), F_GETFL) | O_NONBLOCK);
  std::vector<std::byte> req;
  for (std::uint32_t i = 0; i < 500000; ++i) {
    std::vector<std::byte> body;
    codec::append_fetch(body, {0, 0, 1 << 20, 0, 0, "big"});
    codec::append_frame(req, codec::opcode::fetch, i + 1, body);
  }
  std::size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (sent < req.size() && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::send(slow.fd(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::size_t>(n);
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto after = rss_kib(b.pid());
  MESSAGE("broker RSS " << before << " KiB -> " << after << " KiB; request bytes accepted by the socket: " << sent);
  CHECK(sent < req.size());  // the broker stopped reading: the requests backed up into the socket
  CHECK(after < before + 64 * 1024);
  // Another client is served meanwhile.
  auto other = b.connect();
  CHECK(other.ping(5).value() == 5);
  const auto f = other.fetch("big", 0, 0, 100000);
  REQUIRE(f.has_value());
  CHECK(f->header.record_count > 0);
}

TEST_CASE("--max-connections: a connection over a shard's share gets TOO_MANY_CONNECTIONS; a freed slot is reused") {
  broker_process b({.shards = 2, .extra = {"--max-connections", "4"}});
  // Each shard takes 4 / 2 = 2; a shard port lands on its shard.
  std::vector<client::connection> held;
  held.push_back(b.connect(b.shard_port(0)));
  held.push_back(b.connect(b.shard_port(0)));
  auto extra = client::connection::connect("127.0.0.1", b.shard_port(0));
  REQUIRE(extra.has_value());
  const auto f = extra->read_frame(2000);
  REQUIRE(f.has_value());
  CHECK(client::error_from(*f).code == codec::error_code::too_many_connections);
  CHECK_FALSE(extra->read_frame(1000).has_value());  // and closed
  // The other shard still has room.
  auto other = b.connect(b.shard_port(1));
  CHECK(other.ping(1).value() == 1);
  // Closing one frees its slot.
  held.pop_back();
  bool reconnected = false;
  for (int i = 0; i < 50 && !reconnected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto again = client::connection::connect("127.0.0.1", b.shard_port(0));
    if (again && again->hello("test")) reconnected = again->ping(2).has_value();
  }
  CHECK(reconnected);
}

TEST_CASE("--max-topics: a topic over the limit is refused with RESOURCE_EXHAUSTED until one is deleted") {
  broker_process b({.extra = {"--max-topics", "2"}});
  auto c = b.connect();
  REQUIRE(c.create_topic("one", 1));
  REQUIRE(c.create_topic("two", 1));
  auto third = c.create_topic("three", 1);
  REQUIRE_FALSE(third.has_value());
  CHECK(third.error().code == codec::error_code::resource_exhausted);
  CHECK(third.error().message.find("maximum of 2 topics") != std::string::npos);
  REQUIRE(c.delete_topic("one"));
  CHECK(c.create_topic("three", 1).has_value());
}

TEST_CASE("an idle connection is closed with IDLE_TIMEOUT; PING keeps one open") {
  broker_process b({.shards = 1, .extra = {"--idle-timeout-ms", "300"}});
  auto idle = b.connect();
  auto busy = b.connect();
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(busy.ping(static_cast<std::uint64_t>(i)).has_value());
  }
  const auto f = idle.read_frame(2000);
  REQUIRE(f.has_value());
  CHECK(client::error_from(*f).code == codec::error_code::idle_timeout);
  CHECK(busy.ping(99).value() == 99);
}

TEST_CASE("deleting a topic removes its data once every shard closed it, answers parked fetches, and frees the name") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("gone", 4).has_value());
  for (std::uint32_t p = 0; p < 4; ++p) REQUIRE(c.publish("gone", p, records_of({"x", "y"})).has_value());
  // A long-poll parked on partition 0 at its end.
  auto waiter = std::async(std::launch::async, [&b] {
    auto w = b.connect();
    return w.fetch("gone", 0, 2, 1 << 20, 10000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(c.delete_topic("gone").has_value());
  CHECK_FALSE(std::filesystem::exists(b.data_dir() / "topics" / "gone"));
  const auto parked = waiter.get();
  REQUIRE_FALSE(parked.has_value());
  CHECK(parked.error().code == codec::error_code::unknown_topic);
  CHECK(c.publish("gone", 0, records_of({"z"})).error().code == codec::error_code::unknown_topic);
  CHECK(c.delete_topic("gone").error().code == codec::error_code::unknown_topic);
  // Nothing of it is left in the trash either.
  CHECK(std::filesystem::is_empty(b.data_dir() / "trash"));
  // The name can be used again, from offset 0.
  REQUIRE(c.create_topic("gone", 1).has_value());
  CHECK(c.publish("gone", 0, records_of({"new"})).value().first_offset == 0);
}

TEST_CASE("a topic whose deletion a crash interrupted stays deleted: the start finishes removing it") {
  broker_process b({.shards = 1});
  {
    auto c = b.connect();
    REQUIRE(c.create_topic("kept", 1).has_value());
    REQUIRE(c.publish("kept", 0, records_of({"k"})).has_value());
    REQUIRE(c.create_topic("half", 2).has_value());
    REQUIRE(c.publish("half", 1, records_of({"h"})).has_value());
  }
  REQUIRE(b.stop() == 0);
  // What a crash right after the delete's rename leaves: the whole topic under trash/.
  namespace fs = std::filesystem;
  fs::rename(b.data_dir() / "topics" / "half", b.data_dir() / "trash" / "half~1");
  b.start();
  auto c = b.connect();
  const auto m = c.metadata();
  REQUIRE(m.has_value());
  std::vector<std::string> names;
  for (const auto& t : m->topics) names.push_back(t->name);
  CHECK(names == std::vector<std::string>{"kept"});
  CHECK(fs::is_empty(b.data_dir() / "trash"));
  auto f = c.fetch("kept", 0, 0, 1 << 20, 0);
  REQUIRE(f.has_value());
  REQUIRE(f->records.size() == 1);
  CHECK(c.publish("half", 0, records_of({"x"})).error().code == codec::error_code::unknown_topic);
}

TEST_CASE("FETCH by timestamp starts at the first record at or after it") {
  broker_process b({.shards = 1});
  auto c = b.connect();
  REQUIRE(c.create_topic("times", 1).has_value());
  const auto vals = numbered("t", 10);
  std::vector<codec::record_input> recs = records_of(vals);
  for (std::size_t i = 0; i < recs.size(); ++i) recs[i].timestamp_ms = 1'000'000 + 100 * static_cast<std::int64_t>(i);
  REQUIRE(c.publish("times", 0, recs).has_value());
  auto f = c.fetch_from_time("times", 0, 1'000'250);  // between t2 (1000200) and t3 (1000300)
  REQUIRE(f.has_value());
  CHECK(f->header.first_offset == 3);
  REQUIRE_FALSE(f->records.empty());
  CHECK(as_string(f->records.front().value) == "t3");
  auto late = c.fetch_from_time("times", 0, 5'000'000);
  REQUIRE(late.has_value());
  CHECK(late->header.first_offset == 10);
  CHECK(late->header.record_count == 0);
  // The same with the segment's pages dropped from the page cache (a cold read first).
  mcp::test::evict_segments(b.data_dir() / "topics" / "times");
  auto cold = c.fetch_from_time("times", 0, 1'000'250);
  REQUIRE(cold.has_value());
  CHECK(cold->header.first_offset == 3);
  REQUIRE_FALSE(cold->records.empty());
  CHECK(as_string(cold->records.front().value) == "t3");
}

TEST_CASE("the broker raises its open-file limit to the hard limit (three descriptors per segment)") {
  rlimit ours{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &ours) == 0);
  if (ours.rlim_max <= 256) {
    MESSAGE("hard limit " << ours.rlim_max << ": nothing to raise");
    return;
  }
  broker_process b({.open_files_soft = 256});
  std::ifstream limits("/proc/" + std::to_string(b.pid()) + "/limits");
  std::string line;
  std::string found;
  while (std::getline(limits, line)) {
    if (line.rfind("Max open files", 0) == 0) found = line;
  }
  REQUIRE_FALSE(found.empty());
  std::istringstream words(found.substr(std::string("Max open files").size()));
  std::string soft, hard;
  words >> soft >> hard;
  CHECK(soft == hard);
  CHECK(soft != "256");
}
