// The example of docs/client.md: publish ten keyed records, wait for their ACKs,
// then read them back from the earliest offset.
//
//   produce_consume HOST PORT TOPIC      (the topic is created if it is missing)
//
// Exits 0 once every record was read back with the value its ACK promised.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "tools/client/client.h"
#include "tools/client/consumer.h"
#include "tools/client/producer.h"

namespace client = mcp::client;
using namespace std::chrono_literals;

static std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

static int fail(const char* what, const client::client_error& e) {
  std::fprintf(stderr, "%s: %s (%s)\n", what, e.message.c_str(), client::error_name(e.code));
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s HOST PORT TOPIC\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  const std::string topic = argv[3];

  // Topic admin goes through a plain connection.
  if (auto c = client::connection::connect(host, port); c && c->hello("example")) {
    (void)c->create_topic(topic, 3);  // TOPIC_EXISTS is fine
  }

  client::producer_options po;
  po.host = host;
  po.port = port;
  po.topic = topic;
  po.linger_ms = 2;
  auto producer = client::producer::create(po);
  if (!producer) return fail("producer", producer.error());

  std::vector<std::string> keys, values;
  std::vector<std::future<client::delivery_result>> acks;
  for (int i = 0; i < 10; ++i) {
    keys.push_back("customer-" + std::to_string(i % 3));
    values.push_back("order " + std::to_string(i));
    client::message m;
    m.key = bytes(keys.back());
    m.value = bytes(values.back());
    acks.push_back(producer->publish(m));
  }
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::string> expected;
  for (std::size_t i = 0; i < acks.size(); ++i) {
    const auto r = acks[i].get();
    if (!r) return fail("publish", r.error());
    std::printf("acked %s -> partition %u offset %llu\n", values[i].c_str(), r->partition,
                static_cast<unsigned long long>(r->offset));
    expected[{r->partition, r->offset}] = values[i];
  }
  if (auto r = producer->close(5s); !r) return fail("close", r.error());

  client::consumer_options co;
  co.host = host;
  co.port = port;
  co.topic = topic;
  auto consumer = client::consumer::create(co);
  if (!consumer) return fail("consumer", consumer.error());
  std::size_t matched = 0;
  while (matched < expected.size()) {
    auto batch = consumer->poll(2s);
    if (!batch) return fail("poll", batch.error());
    if (batch->empty()) break;
    // The records are views into the batch's buffer: valid while `batch` lives.
    for (const auto& rec : *batch) {
      const std::string value(reinterpret_cast<const char*>(rec.value.data()), rec.value.size());
      const auto it = expected.find({rec.partition, rec.offset});
      if (it != expected.end() && it->second == value) ++matched;
      std::printf("read  %s <- partition %u offset %llu\n", value.c_str(), rec.partition,
                  static_cast<unsigned long long>(rec.offset));
    }
  }
  std::printf("%zu of %zu records read back as acknowledged\n", matched, expected.size());
  return matched == expected.size() ? 0 : 1;
}
