// Latency probe: one message at a time through a running broker, to see what the
// broker itself adds at low load, apart from any load generator. A consumer
// thread holds a long-poll FETCH on one partition of its own topic; the main
// thread publishes one 100-byte record every --gap-us (waiting for its ACK) and
// times PUBLISH -> ACK and PUBLISH -> RECORDS received by the consumer.
// Prints p50/p90/p99/max of both in microseconds; with --outliers-us N also each
// end-to-end time above N with when it happened (periodic stalls show up as a
// regular spacing).
// Run: build/perf/latency_probe --broker HOST:PORT [--count N] [--gap-us G]
//        [--durability none|sync] [--topic NAME] [--outliers-us N]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "codec/byte_order.h"
#include "tools/client/client.h"

using namespace mcp;

namespace {

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void print(const char* what, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
  std::printf("%-22s p50 %7.1f  p90 %7.1f  p99 %7.1f  max %8.1f us (%zu samples)\n", what, at(0.5), at(0.9), at(0.99),
              v.back(), v.size());
}

int usage(const char* why) {
  std::fprintf(stderr, "latency_probe: %s\nusage: latency_probe --broker HOST:PORT [--count N] [--gap-us G] "
               "[--durability none|sync] [--topic NAME] [--outliers-us N]\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host;
  std::uint16_t port = 0;
  int count = 2000, gap_us = 500;
  double outliers_us = 0;
  std::string topic = "latency-probe", durability = "none";
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return usage("every flag takes a value");
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--broker") {
      const auto colon = v.rfind(':');
      if (colon == std::string::npos) return usage("--broker wants HOST:PORT");
      host = v.substr(0, colon);
      port = static_cast<std::uint16_t>(std::atoi(v.c_str() + colon + 1));
    } else if (a == "--count") {
      count = std::atoi(v.c_str());
    } else if (a == "--gap-us") {
      gap_us = std::atoi(v.c_str());
    } else if (a == "--durability") {
      durability = v;
    } else if (a == "--topic") {
      topic = v;
    } else if (a == "--outliers-us") {
      outliers_us = std::atof(v.c_str());
    } else {
      return usage(("unknown flag " + a).c_str());
    }
  }
  if (port == 0 || count <= 0 || gap_us < 0 || (durability != "none" && durability != "sync")) return usage("bad arguments");

  auto admin = client::connection::connect(host, port);
  if (!admin || !admin->hello("latency-probe")) return std::fprintf(stderr, "cannot connect to the broker\n"), 1;
  (void)admin->create_topic(topic, 1, durability == "sync" ? fb::DurabilityKind::Sync : fb::DurabilityKind::None);
  auto md = admin->metadata({topic});
  if (!md || md->topics.empty() || md->topics[0]->partitions.empty()) return std::fprintf(stderr, "no metadata\n"), 1;
  const std::uint16_t owner = md->topics[0]->partitions[0]->port;
  std::uint64_t next = md->topics[0]->partitions[0]->log_end_offset;

  auto pub = client::connection::connect(host, owner);
  auto sub = client::connection::connect(host, owner);
  if (!pub || !pub->hello("latency-probe-pub") || !sub || !sub->hello("latency-probe-sub")) return 1;

  const std::uint64_t t_start = now_ns();
  std::atomic<bool> stop{false};
  std::vector<double> e2e, ack;
  std::thread reader([&] {
    while (!stop.load()) {
      auto f = sub->fetch(topic, 0, next, 1 << 20, 200);
      const std::uint64_t t = now_ns();
      if (!f) {
        std::fprintf(stderr, "fetch: %s\n", f.error().message.c_str());
        return;
      }
      if (f->records.empty()) continue;
      next = f->records.back().offset + 1;
      // Each record carries its own send time: a reply can land after the
      // publisher has sent the next record, so a shared "last sent" would mismatch.
      for (const auto& r : f->records) {
        if (r.value.size() < sizeof(std::uint64_t)) continue;
        const auto sent = codec::load_le<std::uint64_t>(r.value.data());
        if (sent < t_start || sent > t) continue;  // not ours (an earlier run's record)
        e2e.push_back(static_cast<double>(t - sent) / 1e3);
        if (outliers_us > 0 && e2e.back() > outliers_us) {
          std::fprintf(stderr, "outlier %.1f us at %.3f s\n", e2e.back(), static_cast<double>(t - t_start) / 1e9);
        }
      }
    }
  });
  std::string value(100, 'x');
  codec::record_input rec;
  rec.value = std::as_bytes(std::span(value.data(), value.size()));
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    const std::uint64_t t0 = now_ns();
    codec::store_le<std::uint64_t>(reinterpret_cast<std::byte*>(value.data()), t0);
    auto a = pub->publish(topic, 0, std::span(&rec, 1));
    if (!a) {
      std::fprintf(stderr, "publish: %s\n", a.error().message.c_str());
      failed = 1;
      break;
    }
    ack.push_back(static_cast<double>(now_ns() - t0) / 1e3);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  reader.join();
  std::printf("%d records, one at a time every %d us, durability %s\n", count, gap_us, durability.c_str());
  print("publish -> ack", ack);
  print("publish -> consumer", e2e);
  return failed;
}
