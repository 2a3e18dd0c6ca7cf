// client::worker_pool against a real broker on loopback (docs/groups.md,
// docs/client.md "Consumer groups").

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/tools/client_test_support.h"
#include "tools/client/group_consumer.h"
#include "tools/client/worker_pool.h"

namespace {

using namespace std::chrono_literals;
using mcp::test::broker_process;
using mcp::test::bytes_of;
using mcp::test::string_of;
using steady = std::chrono::steady_clock;
namespace client = mcp::client;
using client::outcome;

// Publishes the values "<i>" for i in [0, n), round robin over the partitions.
void publish_n(const broker_process& b, const std::string& topic, int n) {
  auto p = client::producer::create(mcp::test::producer_opts(b, topic));
  REQUIRE(p.has_value());
  std::vector<std::future<client::delivery_result>> acks;
  acks.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const std::string value = std::to_string(i);
    client::message m;
    m.value = bytes_of(value);
    acks.push_back(p->publish(m));
  }
  for (auto& a : acks) REQUIRE(a.get().has_value());
}

int index_of(const client::group_record& r) { return std::stoi(string_of(r.value)); }

client::worker_pool_options pool_opts(const broker_process& b, const std::string& topic, const std::string& group,
                                      std::uint32_t workers, std::uint32_t prefetch) {
  client::worker_pool_options o;
  o.consumer.port = b.port();
  o.consumer.topic = topic;
  o.consumer.group = group;
  o.consumer.start = client::group_start::earliest();
  o.workers = workers;
  o.prefetch_per_worker = prefetch;
  return o;
}

// Waits until `done()` or `limit` passed; returns done().
template <class F>
bool wait_for(F done, std::chrono::milliseconds limit = 10s) {
  const auto until = steady::now() + limit;
  while (!done() && steady::now() < until) std::this_thread::sleep_for(5ms);
  return done();
}

// The values a fresh member of `group` is leased within `quiet` (it acks nothing).
std::set<int> left_over(const broker_process& b, const std::string& topic, const std::string& group,
                        std::chrono::milliseconds quiet = 300ms) {
  client::group_consumer_options o;
  o.port = b.port();
  o.topic = topic;
  o.group = group;
  o.credit = 1000;
  auto c = client::group_consumer::create(o);
  REQUIRE(c.has_value());
  std::set<int> out;
  const auto until = steady::now() + quiet;
  while (steady::now() < until) {
    auto batch = c->poll(50ms);
    REQUIRE(batch.has_value());
    for (const auto& r : *batch) out.insert(index_of(r));
  }
  return out;
}

}  // namespace

TEST_CASE("4 workers share 100k records: each handled and acked exactly once, none missing") {
  broker_process b;
  mcp::test::create_topic(b, "wp1", 4);
  constexpr int n = 100'000;
  publish_n(b, "wp1", n);
  auto seen = std::make_unique<std::atomic<std::uint8_t>[]>(n);
  std::atomic<int> handled{0};
  auto pool = client::worker_pool::create(pool_opts(b, "wp1", "share", 4, 64), [&](const client::group_record& r) {
    seen[static_cast<std::size_t>(index_of(r))].fetch_add(1);
    handled.fetch_add(1);
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return handled.load() >= n; }, 25s));
  pool->stop();
  const auto st = pool->stats();
  CHECK(st.received == n);
  CHECK(st.acked == n);
  CHECK(st.retried + st.failed + st.dropped == 0);
  CHECK(st.in_flight == 0);
  CHECK(st.max_in_flight <= 4 * 64);
  int once = 0;
  for (int i = 0; i < n; ++i) once += seen[static_cast<std::size_t>(i)].load() == 1 ? 1 : 0;
  CHECK(once == n);
  CHECK(left_over(b, "wp1", "share").empty());  // the acks reached the broker before stop() returned
}

TEST_CASE("16 workers on a 2-partition topic all get work") {
  broker_process b;
  mcp::test::create_topic(b, "wp2", 2);
  constexpr int n = 1600;
  publish_n(b, "wp2", n);
  std::mutex mu;
  std::map<std::thread::id, int> per_thread;
  std::atomic<int> handled{0};
  auto pool = client::worker_pool::create(pool_opts(b, "wp2", "wide", 16, 2), [&](const client::group_record&) {
    {
      std::lock_guard lk(mu);
      ++per_thread[std::this_thread::get_id()];
    }
    std::this_thread::sleep_for(1ms);  // long enough that one worker cannot drain the queue alone
    handled.fetch_add(1);
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return handled.load() >= n; }, 20s));
  pool->stop();
  std::lock_guard lk(mu);
  CHECK(per_thread.size() == 16);
  for (const auto& [id, k] : per_thread) CHECK(k > 0);
  CHECK(pool->stats().acked == n);
}

TEST_CASE("a member killed mid-stream: its leases go to the pool, and every record is acked once") {
  broker_process b;
  mcp::test::create_topic(b, "wp3", 2);
  constexpr int n = 500;
  publish_n(b, "wp3", n);
  client::group_consumer_options co;
  co.port = b.port();
  co.topic = "wp3";
  co.group = "crew";
  co.credit = 40;
  co.start = client::group_start::earliest();
  auto victim = client::group_consumer::create(co);
  REQUIRE(victim.has_value());
  std::vector<client::group_batch> held;
  std::size_t got = 0;
  for (int i = 0; i < 50 && got < 40; ++i) {
    auto batch = victim->poll(100ms);
    REQUIRE(batch.has_value());
    got += batch->size();
    held.push_back(std::move(*batch));
  }
  REQUIRE(got == 40);

  std::mutex mu;
  std::map<int, int> handled;             // value -> times the pool's handler saw it
  std::map<int, std::uint16_t> deliveries;  // value -> delivery count it came with
  auto pool = client::worker_pool::create(pool_opts(b, "wp3", "crew", 3, 4), [&](const client::group_record& r) {
    std::lock_guard lk(mu);
    ++handled[index_of(r)];
    deliveries[index_of(r)] = r.delivery_count;
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  // The victim processes half of what it holds, acks that, and dies mid-stream.
  std::set<int> victim_acked, victim_unacked;
  for (const auto& bt : held) {
    for (const auto& r : bt) {
      if (victim_acked.size() < 20) {
        victim->ack(r);
        victim_acked.insert(index_of(r));
      } else {
        victim_unacked.insert(index_of(r));
      }
    }
  }
  REQUIRE(victim->flush().has_value());
  victim->abort();
  CHECK(wait_for([&] {
    std::lock_guard lk(mu);
    return handled.size() + victim_acked.size() >= n;
  }));
  pool->stop();
  std::lock_guard lk(mu);
  CHECK(handled.size() + victim_acked.size() == n);
  int twice = 0, redelivered = 0;
  for (const auto& [v, k] : handled) {
    twice += k != 1 ? 1 : 0;
    CHECK_FALSE(victim_acked.contains(v));
    redelivered += deliveries[v] == 2 ? 1 : 0;
  }
  CHECK(twice == 0);
  // The 20 it held unacked come on their second delivery; so may up to 20 more:
  // its acks freed room that the broker refilled before it died.
  for (const int v : victim_unacked) CHECK(deliveries[v] == 2);
  CHECK(redelivered >= 20);
  CHECK(redelivered <= 40);
  CHECK(left_over(b, "wp3", "crew").empty());
}

TEST_CASE("retry_after(delay): the record comes back after the delay and is then acked") {
  broker_process b;
  mcp::test::create_topic(b, "wp4", 1);
  publish_n(b, "wp4", 5);
  std::mutex mu;
  std::vector<steady::time_point> tries;  // of record 2
  std::vector<std::uint16_t> counts;
  std::atomic<int> ok{0};
  auto pool = client::worker_pool::create(pool_opts(b, "wp4", "patient", 2, 2), [&](const client::group_record& r) {
    if (index_of(r) == 2) {
      std::lock_guard lk(mu);
      tries.push_back(steady::now());
      counts.push_back(r.delivery_count);
      if (tries.size() == 1) return outcome::retry_after(400ms);
    }
    ok.fetch_add(1);
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return ok.load() >= 5; }, 5s));
  pool->stop();
  std::lock_guard lk(mu);
  REQUIRE(tries.size() == 2);
  CHECK(tries[1] - tries[0] >= 380ms);
  CHECK(counts == std::vector<std::uint16_t>{1, 2});
  const auto st = pool->stats();
  CHECK(st.retried == 1);
  CHECK(st.acked == 5);
  CHECK(left_over(b, "wp4", "patient").empty());
}

TEST_CASE("a record the handler fails lands in <topic>.<group>.dlq at once, handled once; the rest flow") {
  broker_process b;
  mcp::test::create_topic(b, "wp5", 2);
  constexpr int n = 60;
  publish_n(b, "wp5", n);
  std::atomic<int> ok{0}, poisoned{0};
  auto opts = pool_opts(b, "wp5", "picky", 2, 2);
  opts.consumer.max_deliver = 3;
  auto pool = client::worker_pool::create(opts, [&](const client::group_record& r) {
    if (index_of(r) == 7) {
      poisoned.fetch_add(1);
      return outcome::fail();
    }
    ok.fetch_add(1);
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return ok.load() >= n - 1 && poisoned.load() >= 1; }, 10s));
  const auto dlq = mcp::test::read_all(b, "wp5.picky.dlq", 1, 2000ms);
  std::this_thread::sleep_for(300ms);  // time for a redelivery, if there were one
  pool->stop();
  CHECK(poisoned.load() == 1);  // not retried: max_deliver (3) is not waited for
  CHECK(pool->stats().failed == 1);
  REQUIRE(dlq.size() == 1);
  CHECK(dlq.begin()->second == "7");
  CHECK(left_over(b, "wp5", "picky").empty());  // dead-lettered counts as done
}

TEST_CASE("an exception escaping the handler counts as fail") {
  broker_process b;
  mcp::test::create_topic(b, "wp6", 1);
  publish_n(b, "wp6", 3);
  std::atomic<int> calls{0};
  auto opts = pool_opts(b, "wp6", "throws", 1, 1);
  opts.consumer.max_deliver = 1;
  auto pool = client::worker_pool::create(opts, [&](const client::group_record& r) -> outcome {
    calls.fetch_add(1);
    if (index_of(r) == 1) throw std::runtime_error("boom");
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return calls.load() >= 3; }, 5s));
  const auto dlq = mcp::test::read_all(b, "wp6.throws.dlq", 1, 2000ms);
  pool->stop();
  const auto st = pool->stats();
  CHECK(st.failed == 1);
  CHECK(st.acked == 2);
  REQUIRE(dlq.size() == 1);
  CHECK(dlq.begin()->second == "1");
}

TEST_CASE("one worker with prefetch 1 never holds two records") {
  broker_process b;
  mcp::test::create_topic(b, "wp7", 2);
  constexpr int n = 30;
  publish_n(b, "wp7", n);
  std::atomic<int> running{0}, most{0}, handled{0};
  auto pool = client::worker_pool::create(pool_opts(b, "wp7", "single", 1, 1), [&](const client::group_record&) {
    const int now = running.fetch_add(1) + 1;
    int m = most.load();
    while (now > m && !most.compare_exchange_weak(m, now)) {
    }
    std::this_thread::sleep_for(2ms);
    running.fetch_sub(1);
    handled.fetch_add(1);
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  CHECK(wait_for([&] { return handled.load() >= n; }, 10s));
  pool->stop();
  const auto st = pool->stats();
  CHECK(most.load() == 1);
  CHECK(st.max_in_flight == 1);  // counted as records arrive: the broker never leased a second one early
  CHECK(st.received == n);
}

TEST_CASE("stop() lets running handlers finish and acks them; records not started go back to the group") {
  broker_process b;
  mcp::test::create_topic(b, "wp8", 1);
  constexpr int n = 20;
  publish_n(b, "wp8", n);
  std::mutex mu;
  std::set<int> finished;
  std::atomic<int> started{0};
  auto pool = client::worker_pool::create(pool_opts(b, "wp8", "graceful", 2, 2), [&](const client::group_record& r) {
    started.fetch_add(1);
    std::this_thread::sleep_for(300ms);
    std::lock_guard lk(mu);
    finished.insert(index_of(r));
    return outcome::ok();
  });
  REQUIRE(pool.has_value());
  REQUIRE(wait_for([&] { return started.load() >= 2; }, 5s));
  const auto t0 = steady::now();
  pool->stop();
  CHECK(steady::now() - t0 >= 100ms);  // it waited for the two handlers running
  std::set<int> done;
  {
    std::lock_guard lk(mu);
    done = finished;
  }
  CHECK(started.load() == 2);
  CHECK(done.size() == 2);
  const auto st = pool->stats();
  CHECK(st.acked == 2);
  CHECK(st.in_flight == 0);
  // Everything else is still to do, and what finished is not.
  const auto rest = left_over(b, "wp8", "graceful", 500ms);
  CHECK(rest.size() == n - 2);
  for (const int v : done) CHECK_FALSE(rest.contains(v));
  pool->stop();  // idempotent
}

TEST_CASE("typed errors: unknown topic, bad options") {
  broker_process b;
  auto missing = client::worker_pool::create(pool_opts(b, "nope", "g", 2, 2),
                                             [](const client::group_record&) { return outcome::ok(); });
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == mcp::codec::error_code::unknown_topic);
  mcp::test::create_topic(b, "wp9", 1);
  auto none = client::worker_pool::create(pool_opts(b, "wp9", "g", 0, 2),
                                          [](const client::group_record&) { return outcome::ok(); });
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == mcp::codec::error_code::invalid_argument);
  auto no_handler = client::worker_pool::create(pool_opts(b, "wp9", "g", 1, 1), client::group_handler{});
  REQUIRE_FALSE(no_handler.has_value());
  CHECK(no_handler.error().code == mcp::codec::error_code::invalid_argument);
}
