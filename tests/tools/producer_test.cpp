// client::producer against a real broker on loopback.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "tests/tools/client_test_support.h"
#include "tools/client/backoff.h"
#include "tools/client/partitioner.h"

namespace {

using namespace std::chrono_literals;
using mcp::test::broker_process;
using mcp::test::bytes_of;
namespace client = mcp::client;

client::message msg(std::string_view key, std::string_view value) {
  client::message m;
  m.key = bytes_of(key);
  m.value = bytes_of(value);
  return m;
}

bool ready(const std::future<client::delivery_result>& f) { return f.wait_for(0s) == std::future_status::ready; }

}  // namespace

TEST_CASE("partitioner: FNV-1a 32 of the key, as docs/client.md states it") {
  CHECK(client::fnv1a_32({}) == 2166136261u);
  CHECK(client::fnv1a_32(bytes_of("a")) == 0xE40C292Cu);
  CHECK(client::fnv1a_32(bytes_of("foobar")) == 0xBF9CF968u);
  CHECK(client::partition_for_key(bytes_of("a"), 4) == 0xE40C292Cu % 4);
}

TEST_CASE("backoff: full jitter under a doubling ceiling, capped") {
  client::backoff b(50ms, 5000ms);
  CHECK(b.ceiling() == 50ms);
  for (int i = 0; i < 12; ++i) {
    const auto ceiling = b.ceiling();
    const auto w = b.next();
    CHECK(w >= 0ms);
    CHECK(w <= ceiling);
  }
  CHECK(b.ceiling() == 5000ms);
  b.reset();
  CHECK(b.ceiling() == 50ms);
}

TEST_CASE("keyed records go to the same partition, from two producers") {
  broker_process b;
  mcp::test::create_topic(b, "keyed", 4);
  auto p1 = client::producer::create(mcp::test::producer_opts(b, "keyed"));
  auto p2 = client::producer::create(mcp::test::producer_opts(b, "keyed"));
  REQUIRE(p1.has_value());
  REQUIRE(p2.has_value());
  CHECK(p1->producer_id() != 0);
  CHECK(p1->producer_id() != p2->producer_id());
  std::set<std::uint32_t> used;
  for (int k = 0; k < 20; ++k) {
    const std::string key = "user-" + std::to_string(k);
    auto a = p1->publish(msg(key, "from 1"));
    auto c = p2->publish(msg(key, "from 2"));
    auto ra = a.get();
    auto rc = c.get();
    REQUIRE(ra.has_value());
    REQUIRE(rc.has_value());
    CHECK(ra->partition == rc->partition);
    CHECK(ra->partition == client::partition_for_key(bytes_of(key), 4));
    CHECK(ra->partition == p1->partition_of(bytes_of(key)));
    used.insert(ra->partition);
  }
  CHECK(used.size() > 1);  // 20 keys over 4 partitions do not all hash alike
}

TEST_CASE("ACK offsets are where a consumer finds the values, byte for byte") {
  broker_process b;
  mcp::test::create_topic(b, "exact", 3);
  auto opts = mcp::test::producer_opts(b, "exact");
  opts.batch_bytes = 4096;  // several batches per partition
  auto p = client::producer::create(opts);
  REQUIRE(p.has_value());
  std::vector<std::string> values;
  std::vector<std::future<client::delivery_result>> acks;
  for (int i = 0; i < 300; ++i) {
    // Sizes from 0 to a few KiB, with every byte value.
    std::string v(static_cast<std::size_t>((i * 37) % 3000), '\0');
    for (std::size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((i + j) & 0xff);
    values.push_back(std::move(v));
  }
  for (int i = 0; i < 300; ++i) acks.push_back(p->publish(msg(i % 2 ? "" : "k" + std::to_string(i % 7), values[i])));
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::size_t> where;
  for (std::size_t i = 0; i < acks.size(); ++i) {
    auto r = acks[i].get();
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK_FALSE(r->duplicate);
    CHECK(where.emplace(std::pair(r->partition, r->offset), i).second);
  }
  const auto got = mcp::test::read_all(b, "exact", values.size());
  REQUIRE(got.size() == values.size());
  for (const auto& [at, value] : got) {
    REQUIRE(where.count(at) == 1);
    CHECK(value == values[where[at]]);
  }
}

TEST_CASE("records without a key spread round robin") {
  broker_process b;
  mcp::test::create_topic(b, "rr", 3);
  auto p = client::producer::create(mcp::test::producer_opts(b, "rr"));
  REQUIRE(p.has_value());
  std::map<std::uint32_t, int> per_partition;
  std::vector<std::future<client::delivery_result>> acks;
  for (int i = 0; i < 30; ++i) acks.push_back(p->publish(msg("", "v" + std::to_string(i))));
  for (auto& f : acks) {
    auto r = f.get();
    REQUIRE(r.has_value());
    ++per_partition[r->partition];
  }
  CHECK(per_partition == std::map<std::uint32_t, int>{{0, 10}, {1, 10}, {2, 10}});
  // An explicit partition wins over everything; one out of range is refused at once.
  client::message m = msg("key", "x");
  m.partition = 2;
  CHECK(p->publish(m).get()->partition == 2);
  m.partition = 3;
  auto bad = p->publish(m);
  REQUIRE(ready(bad));
  CHECK(bad.get().error().code == mcp::codec::error_code::unknown_partition);
}

TEST_CASE("a full in-flight budget fails fast or blocks, as configured") {
  broker_process b;
  mcp::test::create_topic(b, "full", 1);
  const std::string value(1000, 'x');
  auto opts = mcp::test::producer_opts(b, "full");
  opts.linger_ms = 60000;  // nothing leaves before a flush: the budget stays used
  opts.batch_bytes = 1 << 20;
  opts.max_in_flight_bytes = 2500;  // two records of ~1 KiB fit, the third does not

  SUBCASE("fail fast") {
    opts.block_when_full = false;
    auto p = client::producer::create(opts);
    REQUIRE(p.has_value());
    auto a = p->publish(msg("", value));
    auto c = p->publish(msg("", value));
    auto d = p->publish(msg("", value));
    REQUIRE(ready(d));
    const auto e = d.get();
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().code == client::local_error::queue_full);
    CHECK(e.error().message.find("max_in_flight_bytes") != std::string::npos);
    REQUIRE(p->flush(5s).has_value());
    CHECK(a.get().has_value());
    CHECK(c.get().has_value());
    auto e2 = p->publish(msg("", value));  // room again
    REQUIRE(p->flush(5s).has_value());
    CHECK(e2.get().has_value());
  }
  SUBCASE("block") {
    opts.block_when_full = true;
    auto p = client::producer::create(opts);
    REQUIRE(p.has_value());
    auto a = p->publish(msg("", value));
    auto c = p->publish(msg("", value));
    std::atomic<bool> returned{false};
    std::future<client::delivery_result> d;
    std::thread t([&] {
      d = p->publish(msg("", value));
      returned = true;
    });
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(returned.load());  // waiting for room
    const auto flushed = p->flush(5s);  // seals the open batch; its ACK frees the budget
    t.join();
    REQUIRE(flushed.has_value());
    CHECK(returned.load());
    CHECK(a.get().has_value());
    CHECK(c.get().has_value());
    REQUIRE(p->flush(5s).has_value());
    CHECK(d.get().has_value());
  }
}

TEST_CASE("flush and close wait for every ACK; publish after close fails") {
  broker_process b;
  mcp::test::create_topic(b, "fc", 2);
  auto opts = mcp::test::producer_opts(b, "fc");
  opts.linger_ms = 50;
  auto p = client::producer::create(opts);
  REQUIRE(p.has_value());
  std::vector<std::future<client::delivery_result>> acks;
  for (int i = 0; i < 500; ++i) acks.push_back(p->publish(msg("", "a" + std::to_string(i))));
  REQUIRE(p->flush(10s).has_value());
  for (auto& f : acks) CHECK(ready(f));
  std::atomic<int> called{0};
  for (int i = 0; i < 500; ++i) {
    REQUIRE(p->publish(msg("", "b" + std::to_string(i)), [&](const client::delivery_result& r) {
      if (r.has_value()) ++called;
    }).has_value());
  }
  REQUIRE(p->close(10s).has_value());
  CHECK(called.load() == 500);
  auto late = p->publish(msg("", "late"));
  REQUIRE(ready(late));
  CHECK(late.get().error().code == client::local_error::closed);
  CHECK(mcp::test::read_all(b, "fc", 1000).size() == 1000);
}

TEST_CASE("typed errors: unknown topic, broker gone, message too large, delivery timeout") {
  broker_process b;
  auto missing = client::producer::create(mcp::test::producer_opts(b, "nope"));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == mcp::codec::error_code::unknown_topic);
  CHECK(missing.error().message.find("nope") != std::string::npos);

  mcp::test::create_topic(b, "t", 1);
  auto opts = mcp::test::producer_opts(b, "t");
  opts.delivery_timeout_ms = 500;
  opts.linger_ms = 0;
  auto p = client::producer::create(opts);
  REQUIRE(p.has_value());
  const std::string huge(9 << 20, 'h');
  auto big = p->publish(msg("", huge));
  REQUIRE(ready(big));
  CHECK(big.get().error().code == client::local_error::message_too_large);

  b.stop();
  auto gone = client::producer::create(opts);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code == client::local_error::disconnected);
  auto late = p->publish(msg("", "never stored"));
  REQUIRE(late.wait_for(5s) == std::future_status::ready);
  const auto r = late.get();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == client::local_error::timeout);
  CHECK(r.error().message.find("delivery_timeout_ms") != std::string::npos);
}

namespace {

// Publishes `n` distinct values while the broker is killed (SIGKILL) and started
// again on the same data dir and port; returns every value read back afterwards.
std::multimap<std::pair<std::uint32_t, std::uint64_t>, std::string> publish_across_restart(int n,
                                                                                          std::vector<client::delivery_result>& acks) {
  broker_process b;
  mcp::test::create_topic(b, "restart", 2);
  auto opts = mcp::test::producer_opts(b, "restart");
  opts.batch_bytes = 2048;
  opts.linger_ms = 1;
  opts.delivery_timeout_ms = 20000;
  auto p = client::producer::create(opts);
  REQUIRE(p.has_value());
  std::vector<std::future<client::delivery_result>> futures;
  const auto old_port = b.port();
  for (int i = 0; i < n; ++i) {
    futures.push_back(p->publish(msg("", "m" + std::to_string(i))));
    if (i == n / 2) {
      b.kill_now();
      b.start();
      REQUIRE(b.port() == old_port);  // the producer knows only this address
    }
    if (i % 50 == 0) std::this_thread::sleep_for(1ms);  // keep batches on the wire while the broker dies
  }
  REQUIRE(p->flush(30s).has_value());
  for (auto& f : futures) {
    REQUIRE(ready(f));
    acks.push_back(f.get());
  }
  return mcp::test::read_all(b, "restart", static_cast<std::size_t>(n) * 2, 1500ms);
}

}  // namespace

TEST_CASE("a broker restart mid-publish: the producer reconnects, resends, and every record completes") {
  std::vector<client::delivery_result> acks;
  const int n = 2000;
  const auto got = publish_across_restart(n, acks);
  for (const auto& a : acks) CHECK_MESSAGE(a.has_value(), a.error().message);
  std::map<std::string, int> seen;
  for (const auto& kv : got) ++seen[kv.second];
  for (int i = 0; i < n; ++i) CHECK_MESSAGE(seen.count("m" + std::to_string(i)) == 1, "m", i, " is missing");
}

// The broker's deduplication of (producer_id, partition, sequence) at work: a batch
// stored but not acknowledged before the kill is resent and must not be stored twice.
TEST_CASE("a broker restart mid-publish stores every record exactly once (idempotence)") {
  std::vector<client::delivery_result> acks;
  const int n = 2000;
  const auto got = publish_across_restart(n, acks);
  std::map<std::string, int> seen;
  for (const auto& kv : got) ++seen[kv.second];
  for (int i = 0; i < n; ++i) CHECK_MESSAGE(seen["m" + std::to_string(i)] == 1, "m", i, " stored ", seen["m" + std::to_string(i)], " times");
  CHECK(got.size() == static_cast<std::size_t>(n));
  // Each acknowledged record is where its ACK says (a duplicate ACK names the original offset).
  for (int i = 0; i < n; ++i) {
    if (!acks[i].has_value() || acks[i]->offset == client::unknown_offset) continue;
    const auto it = got.find(std::pair(acks[i]->partition, acks[i]->offset));
    REQUIRE(it != got.end());
    CHECK(it->second == "m" + std::to_string(i));
  }
}
