// client::consumer against a real broker on loopback.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "tests/support/run_command.h"
#include "tests/tools/client_test_support.h"
#include "tools/client/topic_route.h"

namespace {

using namespace std::chrono_literals;
using mcp::test::broker_process;
using mcp::test::bytes_of;
using mcp::test::string_of;
namespace client = mcp::client;

// Publishes values[i] to `partition` with timestamps ts0 + i, through a producer; returns the offsets.
std::vector<std::uint64_t> publish(const broker_process& b, const std::string& topic, std::uint32_t partition,
                                   const std::vector<std::string>& values, std::int64_t ts0 = 0) {
  auto p = client::producer::create(mcp::test::producer_opts(b, topic));
  REQUIRE(p.has_value());
  std::vector<std::future<client::delivery_result>> acks;
  for (std::size_t i = 0; i < values.size(); ++i) {
    client::message m;
    m.value = bytes_of(values[i]);
    m.partition = partition;
    m.timestamp_ms = ts0 ? ts0 + static_cast<std::int64_t>(i) : 0;
    acks.push_back(p->publish(m));
  }
  std::vector<std::uint64_t> offsets;
  for (auto& f : acks) {
    auto r = f.get();
    REQUIRE(r.has_value());
    offsets.push_back(r->offset);
  }
  return offsets;
}

// Values of the next poll(s) until `n` records arrived (or a poll brings none).
std::vector<std::string> take(client::consumer& c, std::size_t n) {
  std::vector<std::string> out;
  while (out.size() < n) {
    auto batch = c.poll(2s);
    REQUIRE_MESSAGE(batch.has_value(), batch.error().message);
    if (batch->empty()) break;
    for (const auto& r : *batch) out.push_back(string_of(r.value));
  }
  return out;
}

}  // namespace

TEST_CASE("a partition from earliest, latest, an offset or a timestamp") {
  broker_process b;
  mcp::test::create_topic(b, "s", 2);
  const std::int64_t ts0 = 1'700'000'000'000;
  REQUIRE(publish(b, "s", 1, {"a", "b", "c", "d", "e"}, ts0) == std::vector<std::uint64_t>{0, 1, 2, 3, 4});
  auto opts = mcp::test::consumer_opts(b, "s");
  opts.partition = 1;

  SUBCASE("earliest") {
    auto c = client::consumer::create(opts);
    REQUIRE(c.has_value());
    CHECK(c->assignment() == std::vector<std::uint32_t>{1});
    CHECK(take(*c, 5) == std::vector<std::string>{"a", "b", "c", "d", "e"});
    CHECK(c->position(1) == 5u);
  }
  SUBCASE("an offset, with the records' own fields") {
    opts.start = client::start_position::at_offset(3);
    auto c = client::consumer::create(opts);
    REQUIRE(c.has_value());
    auto batch = c->poll(2s);
    REQUIRE(batch.has_value());
    REQUIRE(batch->size() == 2);
    CHECK((*batch)[0].offset == 3);
    CHECK((*batch)[0].partition == 1);
    CHECK((*batch)[0].timestamp_ms == ts0 + 3);
    CHECK(string_of((*batch)[1].value) == "e");
  }
  SUBCASE("a timestamp") {
    opts.start = client::start_position::at_time(ts0 + 2);
    auto c = client::consumer::create(opts);
    REQUIRE(c.has_value());
    CHECK_FALSE(c->position(1).has_value());  // resolved by the first FETCH
    CHECK(take(*c, 3) == std::vector<std::string>{"c", "d", "e"});
    CHECK(c->position(1) == 5u);
  }
  SUBCASE("latest: only what comes after") {
    opts.start = client::start_position::latest();
    auto c = client::consumer::create(opts);
    REQUIRE(c.has_value());
    CHECK(c->position(1) == 5u);
    auto none = c->poll(200ms);
    REQUIRE(none.has_value());
    CHECK(none->empty());
    publish(b, "s", 1, {"f"});
    const auto f = take(*c, 1);
    REQUIRE(f.size() == 1);
    CHECK(f[0] == "f");
  }
  SUBCASE("seek back and forth") {
    auto c = client::consumer::create(opts);
    REQUIRE(c.has_value());
    CHECK(take(*c, 5).size() == 5);
    REQUIRE(c->seek(1, client::start_position::at_offset(1)).has_value());
    CHECK(take(*c, 4) == std::vector<std::string>{"b", "c", "d", "e"});
    REQUIRE(c->seek(1, client::start_position::earliest()).has_value());
    CHECK(take(*c, 1).front() == "a");
    CHECK(c->seek(0, client::start_position::earliest()).error().code == mcp::codec::error_code::unknown_partition);
  }
}

TEST_CASE("every partition of a topic, across shards, each in offset order") {
  broker_process b;
  mcp::test::create_topic(b, "all", 4);
  for (std::uint32_t p = 0; p < 4; ++p) {
    publish(b, "all", p, {"p" + std::to_string(p) + "-0", "p" + std::to_string(p) + "-1"});
  }
  const auto got = mcp::test::read_all(b, "all", 8);
  REQUIRE(got.size() == 8);
  for (const auto& [at, value] : got) {
    CHECK(value == "p" + std::to_string(at.first) + "-" + std::to_string(at.second));
  }
}

TEST_CASE("a chosen set of partitions, and only those") {
  broker_process b;
  mcp::test::create_topic(b, "some", 4);
  for (std::uint32_t p = 0; p < 4; ++p) publish(b, "some", p, {"p" + std::to_string(p)});
  auto opts = mcp::test::consumer_opts(b, "some");
  opts.partitions = {3, 1};
  auto c = client::consumer::create(opts);
  REQUIRE(c.has_value());
  CHECK(c->assignment() == std::vector<std::uint32_t>{1, 3});
  std::multiset<std::string> got;
  for (int i = 0; i < 10 && got.size() < 2; ++i) {
    auto batch = c->poll(500ms);
    REQUIRE(batch.has_value());
    for (const auto& r : *batch) {
      CHECK((r.partition == 1 || r.partition == 3));
      got.insert(string_of(r.value));
    }
  }
  CHECK(got == std::multiset<std::string>{"p1", "p3"});
  auto more = c->poll(200ms);  // nothing from partitions 0 and 2 comes later either
  REQUIRE(more.has_value());
  CHECK(more->empty());

  opts.partitions = {2, 9};
  auto bad = client::consumer::create(opts);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == mcp::codec::error_code::unknown_partition);
  CHECK(bad.error().message.find("no partition 9") != std::string::npos);
}

TEST_CASE("a long poll wakes up when a record arrives") {
  broker_process b;
  mcp::test::create_topic(b, "lp", 1);
  auto opts = mcp::test::consumer_opts(b, "lp");
  opts.max_wait_ms = 5000;
  auto c = client::consumer::create(opts);
  REQUIRE(c.has_value());
  std::thread later([&] {
    std::this_thread::sleep_for(300ms);
    publish(b, "lp", 0, {"wake"});
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto batch = c->poll(5s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  later.join();
  REQUIRE(batch.has_value());
  REQUIRE(batch->size() == 1);
  CHECK(string_of((*batch)[0].value) == "wake");
  CHECK(waited >= 250ms);
  CHECK(waited < 3s);  // woken by the record, not by the 5 s timeout
}

TEST_CASE("typed errors: unknown topic, unknown partition, topic deleted, broker gone") {
  broker_process b;
  auto missing = client::consumer::create(mcp::test::consumer_opts(b, "nope"));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == mcp::codec::error_code::unknown_topic);

  mcp::test::create_topic(b, "t", 2);
  auto opts = mcp::test::consumer_opts(b, "t");
  opts.partition = 7;
  auto bad = client::consumer::create(opts);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == mcp::codec::error_code::unknown_partition);

  opts.partition.reset();
  auto c = client::consumer::create(opts);
  REQUIRE(c.has_value());
  REQUIRE(c->poll(50ms).has_value());
  REQUIRE(b.connect().delete_topic("t").has_value());
  auto gone_topic = c->poll(2s);
  REQUIRE_FALSE(gone_topic.has_value());
  CHECK(gone_topic.error().code == mcp::codec::error_code::unknown_topic);

  b.stop();
  // The other partition's FETCH may still bring its own UNKNOWN_TOPIC first (the
  // two partitions answer independently); after that the broker is gone.
  auto gone = c->poll(200ms);
  for (int i = 0; i < 3 && !gone && gone.error().code == mcp::codec::error_code::unknown_topic; ++i) gone = c->poll(200ms);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code == client::local_error::disconnected);
}

TEST_CASE("the example program of docs/client.md runs against a broker") {
  broker_process b;
  const auto r = mcp::test::run_command(std::string(std::getenv("MCP_EXAMPLE_BIN")) + " 127.0.0.1 " +
                                        std::to_string(b.port()) + " example");
  CHECK_MESSAGE(r.exit_code == 0, r.out);
  CHECK(r.out.find("10 of 10 records read back as acknowledged") != std::string::npos);
}

TEST_CASE("shard-aware: the route sends each partition to its owning shard's own port") {
  broker_process b;  // two shards
  mcp::test::create_topic(b, "route", 8);
  auto r = client::fetch_route("127.0.0.1", b.port(), "route", "test", 2000);
  REQUIRE(r.has_value());
  CHECK(r->partitions == 8);
  CHECK(r->shards.size() == 2);
  std::set<std::uint32_t> owners;
  for (std::uint32_t p = 0; p < 8; ++p) {
    CHECK(r->owner(p).port == b.shard_port(r->shard_of[p]));
    owners.insert(r->shard_of[p]);
  }
  CHECK(owners.size() == 2);  // 8 partitions over 2 shards use both
  // Offsets come from the owners: after 3 records in partition 5, its end is 3 whichever shard answered first.
  publish(b, "route", 5, {"x", "y", "z"});
  REQUIRE(client::fetch_offsets(*r, "route", "test", 2000).has_value());
  CHECK(r->log_end[5] == 3);
  CHECK(r->log_start[5] == 0);
}

TEST_CASE("seek moves one partition back, forward or to a timestamp; following or polling, nothing of before comes after") {
  broker_process b;
  mcp::test::create_topic(b, "sk", 2);
  const std::int64_t ts0 = 1'700'000'000'000;
  publish(b, "sk", 0, {"a0", "a1", "a2", "a3", "a4", "a5"}, ts0);
  publish(b, "sk", 1, {"b0", "b1"});
  auto opts = mcp::test::consumer_opts(b, "sk");
  bool follow = true;
  SUBCASE("following") { follow = true; }
  SUBCASE("polling") { follow = false; }
  CAPTURE(follow);
  opts.follow = follow;
  // Long enough that a FETCH parked at the end when a seek supersedes it is still
  // parked when the next records arrive: its answer then carries them, after the
  // answer of the FETCH that replaced it.
  opts.max_wait_ms = 3000;
  auto c = client::consumer::create(opts);
  REQUIRE(c.has_value());
  std::multiset<std::string> first;
  for (const auto& v : take(*c, 8)) first.insert(v);
  CHECK(first == std::multiset<std::string>{"a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1"});
  CHECK(c->position(0) == 6u);

  // A poll with nothing to bring leaves a FETCH parked at the end of each partition.
  auto idle = c->poll(50ms);
  REQUIRE(idle.has_value());
  CHECK(idle->empty());
  // Back to offset 2 of partition 0, while its FETCH is on the wire.
  REQUIRE(c->seek(0, client::start_position::at_offset(2)).has_value());
  CHECK(c->position(0) == 2u);
  CHECK(take(*c, 4) == std::vector<std::string>{"a2", "a3", "a4", "a5"});
  // Forward past what is there, then records arrive: only the new ones come.
  REQUIRE(c->seek(0, client::start_position::latest()).has_value());
  CHECK(c->position(0) == 6u);
  publish(b, "sk", 0, {"a6"});
  publish(b, "sk", 1, {"b2"});
  std::multiset<std::string> next;
  for (const auto& v : take(*c, 2)) next.insert(v);
  CHECK(next == std::multiset<std::string>{"a6", "b2"});
  // To a timestamp, twice in a row before any poll: the last one counts.
  REQUIRE(c->seek(0, client::start_position::at_offset(0)).has_value());
  REQUIRE(c->seek(0, client::start_position::at_time(ts0 + 4)).has_value());
  CHECK(take(*c, 3) == std::vector<std::string>{"a4", "a5", "a6"});
  CHECK(c->position(0) == 7u);
  // Nothing else is on its way.
  auto rest = c->poll(300ms);
  REQUIRE(rest.has_value());
  CHECK(rest->empty());
  CHECK(c->seek(5, client::start_position::earliest()).error().code == mcp::codec::error_code::unknown_partition);
}

TEST_CASE("following with a window of one small answer still reads everything, in order: each poll grants back what it took") {
  broker_process b;
  mcp::test::create_topic(b, "win", 1);
  std::vector<std::string> values;
  for (int i = 0; i < 300; ++i) values.push_back("record-" + std::to_string(i) + std::string(80, '.'));
  publish(b, "win", 0, values);
  auto opts = mcp::test::consumer_opts(b, "win");
  opts.follow = true;
  opts.max_wait_ms = 100;
  // ~10 records per answer and no more in flight: without the grants of each
  // poll the broker would stop after the first answer.
  opts.max_bytes = 1500;
  opts.follow_window_bytes = 1500;
  auto c = client::consumer::create(opts);
  REQUIRE(c.has_value());
  std::vector<std::string> got;
  int polls = 0;
  while (got.size() < values.size() && polls < 1000) {
    auto batch = c->poll(2s);
    REQUIRE_MESSAGE(batch.has_value(), batch.error().message);
    ++polls;
    REQUIRE_FALSE(batch->empty());  // each grant is answered long before 2 s
    for (const auto& r : *batch) got.push_back(string_of(r.value));
  }
  CHECK(got == values);
  CHECK(polls >= 20);  // answers of at most ~1.5 KB: the window held them small
  // Records published later still come: the follow goes on.
  publish(b, "win", 0, {"late"});
  CHECK(take(*c, 1) == std::vector<std::string>{"late"});
}
