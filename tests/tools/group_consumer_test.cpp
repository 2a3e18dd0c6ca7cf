// client::group_consumer against a real broker on loopback (docs/groups.md,
// docs/client.md "Consumer groups").

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/page_cache.h"
#include "tests/tools/client_test_support.h"
#include "tools/client/group_consumer.h"

namespace {

using namespace std::chrono_literals;
using mcp::test::broker_process;
using mcp::test::bytes_of;
using mcp::test::string_of;
using steady = std::chrono::steady_clock;
namespace client = mcp::client;
using mcp::codec::error_code;

// Publishes "<prefix><i>" for i in [0, n), round robin over the partitions (or all
// to `partition`), each with the header ("n", "<i>").
void publish_n(const broker_process& b, const std::string& topic, int n, std::optional<std::uint32_t> partition = {},
               const std::string& prefix = "v") {
  auto p = client::producer::create(mcp::test::producer_opts(b, topic));
  REQUIRE(p.has_value());
  std::vector<std::future<client::delivery_result>> acks;
  for (int i = 0; i < n; ++i) {
    const std::string value = prefix + std::to_string(i);
    const std::string num = std::to_string(i);
    const mcp::codec::record_header h{"n", bytes_of(num)};
    client::message m;
    m.value = bytes_of(value);
    m.headers = std::span(&h, 1);
    m.partition = partition;
    acks.push_back(p->publish(m));
  }
  for (auto& a : acks) REQUIRE(a.get().has_value());
}

client::group_consumer_options group_opts(const broker_process& b, const std::string& topic, const std::string& group,
                                          std::uint32_t credit) {
  client::group_consumer_options o;
  o.port = b.port();
  o.topic = topic;
  o.group = group;
  o.credit = credit;
  o.start = client::group_start::earliest();
  return o;
}

// Polls until `want` records arrived in total or `limit` passed; the batches are
// kept. With `ack`, every record is acked as it arrives, so the window refills.
std::vector<client::group_batch> take(client::group_consumer& c, std::size_t want,
                                      std::chrono::milliseconds limit = 3000ms, bool ack = false) {
  std::vector<client::group_batch> out;
  std::size_t got = 0;
  const auto until = steady::now() + limit;
  while (got < want && steady::now() < until) {
    auto b = c.poll(100ms);
    REQUIRE_MESSAGE(b.has_value(), b.error().message);
    got += b->size();
    if (ack) {
      for (const auto& r : *b) CHECK(c.ack(r));
    }
    if (!b->empty()) out.push_back(std::move(*b));
  }
  return out;
}

std::size_t count(const std::vector<client::group_batch>& bs) {
  std::size_t n = 0;
  for (const auto& b : bs) n += b.size();
  return n;
}

// True if a fresh member of `group` is leased nothing within `quiet`: every record was acked.
bool nothing_left(const broker_process& b, const std::string& topic, const std::string& group,
                  std::chrono::milliseconds quiet = 300ms) {
  auto c = client::group_consumer::create(group_opts(b, topic, group, 100));
  REQUIRE(c.has_value());
  return count(take(*c, 1, quiet)) == 0;
}

}  // namespace

TEST_CASE("one member is leased every record once, with its fields, and what it acked stays done") {
  broker_process b;
  mcp::test::create_topic(b, "gc1", 2);
  publish_n(b, "gc1", 200);
  auto c = client::group_consumer::create(group_opts(b, "gc1", "solo", 50));
  REQUIRE(c.has_value());
  CHECK(c->session() == 1);
  auto batches = take(*c, 200, 3000ms, true);
  REQUIRE(count(batches) == 200);
  std::set<std::string> values;
  std::map<std::uint32_t, std::uint64_t> next;  // per partition: first deliveries come in offset order
  for (const auto& batch : batches) {
    for (const auto& r : batch) {
      CHECK(r.delivery_count == 1);
      CHECK(r.session == 1);
      CHECK(r.partition < 2);
      CHECK(r.offset == next[r.partition]);
      next[r.partition] = r.offset + 1;
      const auto v = string_of(r.value);
      CHECK(values.insert(v).second);
      mcp::codec::record_header h;
      auto it = r.headers();
      REQUIRE(it.next(h));
      CHECK(h.name == "n");
      CHECK("v" + string_of(h.value) == v);
    }
  }
  CHECK(values.size() == 200);
  REQUIRE(c->close().has_value());
  CHECK(c->poll(10ms).error().code == client::local_error::closed);
  CHECK(nothing_left(b, "gc1", "solo"));
}

TEST_CASE("a batch outlives later polls: its views stay valid") {
  broker_process b;
  mcp::test::create_topic(b, "gc2", 1);
  publish_n(b, "gc2", 20, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc2", "keep", 5));
  REQUIRE(c.has_value());
  auto first = take(*c, 5);
  REQUIRE(count(first) == 5);
  std::vector<std::string> before;
  for (const auto& bt : first) {
    for (const auto& r : bt) {
      before.push_back(string_of(r.value));
      c->ack(r);
    }
  }
  auto rest = take(*c, 15, 3000ms, true);  // more polls: buffers of later batches are allocated and filled
  CHECK(count(rest) == 15);
  std::vector<std::string> after;
  for (const auto& bt : first) {
    for (const auto& r : bt) after.push_back(string_of(r.value));
  }
  CHECK(after == before);
  CHECK(before == std::vector<std::string>{"v0", "v1", "v2", "v3", "v4"});
}

TEST_CASE("credit 1: the member never holds two records; an ack lets the next one come; add_credit widens") {
  broker_process b;
  mcp::test::create_topic(b, "gc3", 1);
  publish_n(b, "gc3", 12, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc3", "one", 1));
  REQUIRE(c.has_value());
  std::uint64_t expect = 0;
  for (int i = 0; i < 6; ++i) {
    auto got = take(*c, 1, 2000ms);
    REQUIRE(count(got) == 1);
    const auto& r = got.front()[0];
    CHECK(r.offset == expect++);
    // Held and not acked: nothing else comes, however long we poll.
    auto more = c->poll(i == 0 ? 300ms : 30ms);
    REQUIRE(more.has_value());
    CHECK(more->empty());
    CHECK(c->ack(r));
  }
  c->add_credit(3);  // the window is now 4
  auto four = take(*c, 6, 500ms);
  CHECK(count(four) == 4);
}

TEST_CASE("range acks and out-of-order acks are merged into COMMIT ranges that the broker honours") {
  broker_process b;
  mcp::test::create_topic(b, "gc4", 1);
  publish_n(b, "gc4", 300, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc4", "ranges", 300));
  REQUIRE(c.has_value());
  REQUIRE(count(take(*c, 300)) == 300);
  CHECK(c->ack(0, 0, 99));  // one range
  for (std::uint64_t o = 299; o >= 100; o -= 2) CHECK(c->ack(0, o, o));  // odd ones, backwards
  for (std::uint64_t o = 100; o < 300; o += 2) CHECK(c->ack(0, o, o));   // then the even ones
  REQUIRE(c->flush().has_value());
  REQUIRE(c->close().has_value());
  CHECK(nothing_left(b, "gc4", "ranges"));
}

TEST_CASE("NACK with a delay: the record comes back after the delay, not before, delivered twice") {
  broker_process b;
  mcp::test::create_topic(b, "gc5", 1);
  publish_n(b, "gc5", 1, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc5", "later", 10));
  REQUIRE(c.has_value());
  auto got = take(*c, 1);
  REQUIRE(count(got) == 1);
  const auto t0 = steady::now();
  CHECK(c->nack(got.front()[0], 400ms));
  auto early = c->poll(200ms);
  REQUIRE(early.has_value());
  CHECK(early->empty());
  auto again = take(*c, 1, 3000ms);
  REQUIRE(count(again) == 1);
  CHECK(steady::now() - t0 >= 380ms);
  CHECK(again.front()[0].offset == got.front()[0].offset);
  CHECK(again.front()[0].delivery_count == 2);
  c->ack(again.front()[0]);
}

TEST_CASE("reject: the record goes to <topic>.<group>.dlq at once with reason rejected, and never comes back") {
  broker_process b;
  mcp::test::create_topic(b, "gc5r", 1);
  publish_n(b, "gc5r", 3, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc5r", "strict", 10));
  REQUIRE(c.has_value());
  auto got = take(*c, 3);
  REQUIRE(count(got) == 3);
  std::vector<client::group_record> recs(got.front().begin(), got.front().end());
  for (std::size_t i = 1; i < got.size(); ++i) recs.insert(recs.end(), got[i].begin(), got[i].end());
  CHECK(c->reject(recs[1]));
  CHECK(c->ack(recs[0]));
  CHECK(c->ack(recs[2]));
  REQUIRE(c->flush().has_value());
  const auto dlq = mcp::test::read_all(b, "gc5r.strict.dlq", 1, 2000ms);
  REQUIRE(dlq.size() == 1);
  CHECK(dlq.begin()->second == string_of(recs[1].value));
  auto later = c->poll(300ms);  // max_deliver is not waited for: nothing comes back
  REQUIRE(later.has_value());
  CHECK(later->empty());
  CHECK(nothing_left(b, "gc5r", "strict"));
}

TEST_CASE("a member that goes away: its unacked leases go to another member at once, its acked ones do not") {
  broker_process b;
  mcp::test::create_topic(b, "gc6", 2);
  publish_n(b, "gc6", 20);
  auto quitter = client::group_consumer::create(group_opts(b, "gc6", "pool", 20));
  REQUIRE(quitter.has_value());
  auto held = take(*quitter, 20);
  REQUIRE(count(held) == 20);
  std::set<std::string> acked;
  for (const auto& bt : held) {
    for (const auto& r : bt) {
      if (acked.size() < 8) {
        quitter->ack(r);
        acked.insert(string_of(r.value));
      }
    }
  }
  REQUIRE(quitter->flush().has_value());
  auto stayer = client::group_consumer::create(group_opts(b, "gc6", "pool", 20));
  REQUIRE(stayer.has_value());
  CHECK(count(take(*stayer, 1, 200ms)) == 0);  // everything is leased to the quitter
  const auto t0 = steady::now();
  quitter->abort();  // as if it crashed: no close handshake; ack_wait (30 s) is not waited for
  auto got = take(*stayer, 12, 3000ms);
  CHECK(steady::now() - t0 < 2s);
  REQUIRE(count(got) == 12);
  for (const auto& bt : got) {
    for (const auto& r : bt) {
      CHECK(r.delivery_count == 2);
      CHECK_FALSE(acked.contains(string_of(r.value)));
      stayer->ack(r);
    }
  }
  CHECK(quitter->poll(10ms).error().code == client::local_error::closed);
}

TEST_CASE("start positions of a new group: latest sees only newer records, a timestamp starts there") {
  broker_process b;
  mcp::test::create_topic(b, "gc7", 1);
  {
    auto p = client::producer::create(mcp::test::producer_opts(b, "gc7"));
    REQUIRE(p.has_value());
    for (int i = 0; i < 5; ++i) {
      const std::string v = "old" + std::to_string(i);
      client::message m;
      m.value = bytes_of(v);
      m.timestamp_ms = 1'000'000 + i;
      REQUIRE(p->publish(m).get().has_value());
    }
  }
  auto opts = group_opts(b, "gc7", "late", 10);
  opts.start = client::group_start::latest();
  auto late = client::group_consumer::create(opts);
  REQUIRE(late.has_value());
  opts.group = "from-ts";
  opts.start = client::group_start::at_time(1'000'003);
  auto ts = client::group_consumer::create(opts);
  REQUIRE(ts.has_value());

  auto from_ts = take(*ts, 2);
  REQUIRE(count(from_ts) == 2);
  CHECK(string_of(from_ts.front()[0].value) == "old3");
  CHECK(count(take(*late, 1, 300ms)) == 0);
  publish_n(b, "gc7", 1, 0u, "new");
  auto fresh = take(*late, 1);
  REQUIRE(count(fresh) == 1);
  CHECK(string_of(fresh.front()[0].value) == "new0");
}

TEST_CASE("a group starting at a timestamp whose records are not in the page cache starts there") {
  // The shard resolves the timestamp without waiting for the disk: a miss is read
  // through its ring, and the members' next pull makes the group's table.
  broker_process b({.shards = 1, .durability = "none"});
  mcp::test::create_topic(b, "gcts", 1);
  constexpr int n = 20000;  // ~4 MB: the start lies far from the segment's first pages
  {
    auto p = client::producer::create(mcp::test::producer_opts(b, "gcts"));
    REQUIRE(p.has_value());
    std::vector<std::future<client::delivery_result>> acks;
    const std::string pad(150, 'p');
    for (int i = 0; i < n; ++i) {
      const std::string v = "t" + std::to_string(i) + pad;
      client::message m;
      m.value = bytes_of(v);
      m.timestamp_ms = 2'000'000 + i;
      acks.push_back(p->publish(m));
    }
    for (auto& a : acks) REQUIRE(a.get().has_value());
  }
  if (mcp::test::evict_segments(b.data_dir() / "topics" / "gcts") == 0) {
    MESSAGE("the page cache kept the segment (tmpfs?): the start below is found in warm pages");
  }
  auto opts = group_opts(b, "gcts", "from-ts", 10);
  opts.start = client::group_start::at_time(2'000'000 + 15'000);
  auto c = client::group_consumer::create(opts);
  REQUIRE(c.has_value());
  auto got = take(*c, 1);
  REQUIRE(count(got) >= 1);
  CHECK(got.front()[0].offset == 15'000);
  CHECK(string_of(got.front()[0].value) == "t15000" + std::string(150, 'p'));
}

TEST_CASE("typed errors: unknown topic, bad group name, no broker, broker gone, closed") {
  broker_process b;
  auto missing = client::group_consumer::create(group_opts(b, "nope", "g", 1));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == error_code::unknown_topic);

  mcp::test::create_topic(b, "gc8", 1);
  auto bad = client::group_consumer::create(group_opts(b, "gc8", "no spaces", 1));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == error_code::invalid_argument);
  auto empty = client::group_consumer::create(group_opts(b, "gc8", "", 1));
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().code == error_code::invalid_argument);
  auto too_long = client::group_consumer::create(group_opts(b, "gc8", std::string(245, 'g'), 1));
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().code == error_code::invalid_argument);  // "gc8.<group>.dlq" would pass 249 bytes

  auto c = client::group_consumer::create(group_opts(b, "gc8", "g", 1));
  REQUIRE(c.has_value());
  REQUIRE(c->poll(20ms).has_value());
  b.stop();
  std::optional<client::client_error> gone;
  for (int i = 0; i < 20 && !gone; ++i) {
    auto r = c->poll(100ms);
    if (!r) gone = r.error();
  }
  REQUIRE(gone.has_value());
  CHECK((gone->code == client::local_error::disconnected || gone->code == error_code::shutting_down));
  // The next poll tries to reconnect, and there is no broker.
  auto again = c->poll(10ms);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code == client::local_error::disconnected);

  auto nobody = client::group_consumer::create(group_opts(b, "gc8", "g", 1));  // b is stopped
  REQUIRE_FALSE(nobody.has_value());
  CHECK(nobody.error().code == client::local_error::disconnected);
}

TEST_CASE("a lost connection: the next poll subscribes again as a new session; acks of the old one are dropped") {
  broker_process b;
  mcp::test::create_topic(b, "gc9", 1);
  publish_n(b, "gc9", 3, 0u);
  auto c = client::group_consumer::create(group_opts(b, "gc9", "again", 1));
  REQUIRE(c.has_value());
  auto first = take(*c, 1);
  REQUIRE(count(first) == 1);
  const auto old = first.front()[0];
  REQUIRE(b.stop() == 0);
  b.start();
  std::vector<client::group_batch> got;
  for (int i = 0; i < 30 && count(got) == 0; ++i) {
    auto r = c->poll(100ms);  // disconnected once, then a new session
    if (r && !r->empty()) got.push_back(std::move(*r));
  }
  REQUIRE(count(got) == 1);
  CHECK(c->session() == 2);
  CHECK(got.front()[0].session == 2);
  CHECK_FALSE(c->ack(old));  // its lease went with the old connection
  CHECK(c->ack(got.front()[0]));
}

TEST_CASE("PING keeps a quiet member past the broker's idle timeout; a silent one is dropped") {
  broker_process::options bo;
  bo.extra = {"--idle-timeout-ms", "300"};
  broker_process b(bo);
  mcp::test::create_topic(b, "gc10", 1);
  auto opts = group_opts(b, "gc10", "quiet", 5);
  opts.ping_interval_ms = 100;
  auto pinger = client::group_consumer::create(opts);
  REQUIRE(pinger.has_value());
  opts.ping_interval_ms = 60'000;
  auto silent = client::group_consumer::create(opts);
  REQUIRE(silent.has_value());
  std::optional<client::client_error> dropped;
  for (int i = 0; i < 12; ++i) {
    auto p = pinger->poll(50ms);
    REQUIRE_MESSAGE(p.has_value(), p.error().message);
    CHECK(p->empty());
    auto s = silent->poll(50ms);
    if (!s && !dropped) dropped = s.error();
  }
  REQUIRE(dropped.has_value());
  CHECK((dropped->code == error_code::idle_timeout || dropped->code == client::local_error::disconnected));
  CHECK(pinger->session() == 1);
  publish_n(b, "gc10", 1, 0u);
  CHECK(count(take(*pinger, 1)) == 1);
}
