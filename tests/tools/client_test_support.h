#pragma once
// Helpers shared by producer_test.cpp and consumer_test.cpp: bytes from strings,
// and reading a whole topic back with a consumer.

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "tests/support/broker_fixture.h"
#include "tools/client/consumer.h"
#include "tools/client/producer.h"

namespace mcp::test {

inline std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string string_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline void create_topic(const broker_process& b, const std::string& name, std::uint32_t partitions) {
  auto c = b.connect();
  REQUIRE(c.create_topic(name, partitions).has_value());
}

inline client::producer_options producer_opts(const broker_process& b, const std::string& topic) {
  client::producer_options o;
  o.port = b.port();
  o.topic = topic;
  return o;
}

inline client::consumer_options consumer_opts(const broker_process& b, const std::string& topic) {
  client::consumer_options o;
  o.port = b.port();
  o.topic = topic;
  o.max_wait_ms = 100;
  return o;
}

// Every record of `topic` from earliest, as (partition, offset) -> value; stops
// after `expected` records or a poll that brings nothing within `quiet`.
inline std::multimap<std::pair<std::uint32_t, std::uint64_t>, std::string> read_all(
    const broker_process& b, const std::string& topic, std::size_t expected,
    std::chrono::milliseconds quiet = std::chrono::milliseconds(1000)) {
  std::multimap<std::pair<std::uint32_t, std::uint64_t>, std::string> out;
  // A dead-letter topic is created by the broker asynchronously (when its group
  // first subscribes): give a topic up to 2 s to appear.
  auto admin = b.connect();
  for (int i = 0; i < 100; ++i) {
    auto md = admin.metadata({topic});
    if (md && !md->topics.empty() && md->topics[0]->error_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto c = client::consumer::create(consumer_opts(b, topic));
  REQUIRE(c.has_value());
  while (out.size() < expected) {
    auto batch = c->poll(quiet);
    REQUIRE_MESSAGE(batch.has_value(), batch.error().message);
    if (batch->empty()) break;
    for (const auto& r : *batch) out.emplace(std::pair(r.partition, r.offset), string_of(r.value));
  }
  return out;
}

}  // namespace mcp::test
