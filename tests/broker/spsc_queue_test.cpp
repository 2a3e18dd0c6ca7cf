#include "broker/spsc_queue.h"

#include <doctest/doctest.h>

#include <memory>
#include <thread>

using mcp::broker::spsc_queue;

TEST_CASE("push until full, pop in order, then empty") {
  spsc_queue<int> q(4);
  for (int i = 0; i < 4; ++i) CHECK(q.try_push(int{i}));
  CHECK_FALSE(q.try_push(99));
  for (int i = 0; i < 4; ++i) CHECK(q.try_pop() == i);
  CHECK_FALSE(q.try_pop().has_value());
  CHECK(q.empty());
}

TEST_CASE("move-only items are moved through and destroyed once") {
  auto counter = std::make_shared<int>(0);
  {
    spsc_queue<std::shared_ptr<int>> q(8);
    CHECK(q.try_push(std::shared_ptr<int>(counter)));
    CHECK(q.try_push(std::shared_ptr<int>(counter)));
    CHECK(counter.use_count() == 3);
    auto one = q.try_pop();
    REQUIRE(one.has_value());
    CHECK(counter.use_count() == 3);
  }  // the queue's destructor destroys what is left
  CHECK(counter.use_count() == 1);
}

TEST_CASE("two threads pass a million items without loss or reordering") {
  spsc_queue<std::uint64_t> q(1024);
  constexpr std::uint64_t n = 1'000'000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < n;) {
      if (q.try_push(std::uint64_t{i})) ++i;
    }
  });
  std::uint64_t expected = 0;
  bool in_order = true;
  while (expected < n) {
    if (auto v = q.try_pop()) {
      in_order = in_order && *v == expected;
      ++expected;
    }
  }
  producer.join();
  CHECK(in_order);
  CHECK(expected == n);
  CHECK(q.empty());
}
