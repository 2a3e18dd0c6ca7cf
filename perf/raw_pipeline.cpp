// Raw pipeline: the ceiling under mcp-bench, with no broker. Per core, a producer
// thread writes fixed-size messages to a relay thread over loopback TCP; the relay
// appends what it reads to a file (write(2), page cache) and forwards the same
// bytes to a consumer thread over a second connection; the consumer times each
// message from the send time it carries. No framing, parsing, CRC, offsets,
// acknowledgements or batching rules beyond "what is due goes out": what is left
// is what the machine (loopback TCP, wake-ups, the page cache) costs.
//
// Flat out (--rate 0) it prints msgs/s end to end; with --rate R (over all
// pipelines) each message is timed from its *scheduled* send time, the producer
// sending every message due when it wakes, at most --linger-us after the first of
// them was due (as mcp-bench --linger-us), and it prints the latency p50..max.
// Every pipeline's three threads are pinned to its core (as mcp-bench
// --placement shard with the broker's shard there); --spread leaves them to the
// kernel.
// Run: build-rel/perf/raw_pipeline [--seconds 5] [--rate 100000] [--linger-us 100]
//        [--size 100] [--pipelines 2] [--dir /work] [--spread]

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "perf/loopback_pair.h"
#include "tools/bench/histogram.h"

using namespace mcp;

namespace {

using clk = std::chrono::steady_clock;

struct settings {
  double seconds = 5;
  double rate = 100000;  // over all pipelines; 0: flat out
  long linger_us = 100;
  std::size_t size = 100;
  unsigned pipelines = 2;
  std::string dir = "/work";
  bool spread = false;
};

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch()).count());
}

void pin(unsigned core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// A connected loopback pair (client end, server end), TCP_NODELAY on both.
std::pair<int, int> tcp_pair() {
  auto p = perf::loopback_tcp_pair(true);
  if (!p) die("loopback TCP pair");
  return *p;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

struct pipeline {
  int producer_fd = -1, relay_in = -1, relay_out = -1, consumer_fd = -1, file = -1;
  std::uint64_t sent = 0, received = 0;
  bench::histogram latency;  // µs
};

void produce(const settings& s, unsigned core, pipeline& p, std::uint64_t start, std::uint64_t end) {
  if (!s.spread) pin(core);
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  const double per_ns = s.rate > 0 ? s.rate / s.pipelines / 1e9 : 0;
  const std::size_t batch_max = 64;
  std::vector<char> buf(batch_max * s.size, '.');
  // Flat out too, the run starts at `start`, which the msgs/s figure counts from.
  const std::uint64_t now0 = now_ns();
  if (now0 < start) std::this_thread::sleep_for(std::chrono::nanoseconds(start - now0));
  for (;;) {
    std::uint64_t now = now_ns();
    if (now >= end) break;
    std::uint64_t n = batch_max;
    if (per_ns > 0) {
      const auto due_of = [&](std::uint64_t i) { return start + static_cast<std::uint64_t>(static_cast<double>(i) / per_ns); };
      const std::uint64_t leave = due_of(p.sent) + static_cast<std::uint64_t>(s.linger_us) * 1000;
      if (now < leave) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(leave - now));
        now = now_ns();
      }
      const auto due_by_now = static_cast<std::uint64_t>(static_cast<double>(now - start) * per_ns) + 1;
      n = std::clamp<std::uint64_t>(due_by_now > p.sent ? due_by_now - p.sent : 1, 1, batch_max);
      for (std::uint64_t k = 0; k < n; ++k) {
        const std::uint64_t due = due_of(p.sent + k);
        std::memcpy(buf.data() + k * s.size, &due, sizeof due);
      }
    } else {
      for (std::uint64_t k = 0; k < n; ++k) std::memcpy(buf.data() + k * s.size, &now, sizeof now);
    }
    if (!write_all(p.producer_fd, buf.data(), n * s.size)) die("producer write");
    p.sent += n;
  }
  ::shutdown(p.producer_fd, SHUT_WR);
}

void relay(const settings& s, unsigned core, pipeline& p) {
  if (!s.spread) pin(core);
  std::vector<char> buf(256 << 10);
  off_t file_pos = 0;
  for (;;) {
    const ssize_t r = ::read(p.relay_in, buf.data(), buf.size());
    if (r < 0) die("relay read");
    if (r == 0) break;
    if (::pwrite(p.file, buf.data(), static_cast<std::size_t>(r), file_pos) != r) die("relay append");
    file_pos += r;
    if (!write_all(p.relay_out, buf.data(), static_cast<std::size_t>(r))) die("relay forward");
  }
  ::shutdown(p.relay_out, SHUT_WR);
}

void consume(const settings& s, unsigned core, pipeline& p) {
  if (!s.spread) pin(core);
  std::vector<char> buf(256 << 10);
  std::size_t have = 0;
  for (;;) {
    const ssize_t r = ::read(p.consumer_fd, buf.data() + have, buf.size() - have);
    if (r < 0) die("consumer read");
    if (r == 0) break;
    have += static_cast<std::size_t>(r);
    const std::uint64_t t = now_ns();
    std::size_t at = 0;
    for (; at + s.size <= have; at += s.size) {
      std::uint64_t sent;
      std::memcpy(&sent, buf.data() + at, sizeof sent);
      p.latency.record(t > sent ? (t - sent) / 1000 : 0);
      ++p.received;
    }
    std::memmove(buf.data(), buf.data() + at, have - at);
    have -= at;
  }
}

bool parse(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool v = i + 1 < argc;
    if (a == "--seconds" && v) {
      s.seconds = std::atof(argv[++i]);
    } else if (a == "--rate" && v) {
      s.rate = std::atof(argv[++i]);
    } else if (a == "--linger-us" && v) {
      s.linger_us = std::atol(argv[++i]);
    } else if (a == "--size" && v) {
      s.size = static_cast<std::size_t>(std::atol(argv[++i]));
    } else if (a == "--pipelines" && v) {
      s.pipelines = static_cast<unsigned>(std::atol(argv[++i]));
    } else if (a == "--dir" && v) {
      s.dir = argv[++i];
    } else if (a == "--spread") {
      s.spread = true;
    } else {
      std::fprintf(stderr,
                   "usage: raw_pipeline [--seconds S] [--rate R (0: flat out)] [--linger-us L] [--size B] [--pipelines N] "
                   "[--dir D] [--spread]\n");
      return false;
    }
  }
  if (s.seconds < 0.1 || s.seconds > 600 || s.rate < 0 || s.linger_us < 0 || s.size < 8 || s.size > 65536 ||
      s.pipelines < 1 || s.pipelines > 64) {
    std::fprintf(stderr, "raw_pipeline: --seconds 0.1..600, --rate >= 0, --linger-us >= 0, --size 8..65536, --pipelines 1..64\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (!parse(argc, argv, s)) return 2;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<pipeline> ps(s.pipelines);
  std::vector<std::string> files;
  for (unsigned i = 0; i < s.pipelines; ++i) {
    auto [a, b] = tcp_pair();
    auto [c, d] = tcp_pair();
    ps[i].producer_fd = a;
    ps[i].relay_in = b;
    ps[i].relay_out = c;
    ps[i].consumer_fd = d;
    files.push_back(s.dir + "/raw_pipeline." + std::to_string(::getpid()) + "." + std::to_string(i));
    ps[i].file = ::open(files.back().c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (ps[i].file < 0) die(("open " + files.back()).c_str());
  }
  const std::uint64_t start = now_ns() + 10'000'000;  // every thread up before the first message is due
  const std::uint64_t end = start + static_cast<std::uint64_t>(s.seconds * 1e9);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < s.pipelines; ++i) {
    const unsigned core = i % cores;
    threads.emplace_back([&, i, core] { consume(s, core, ps[i]); });
    threads.emplace_back([&, i, core] { relay(s, core, ps[i]); });
    threads.emplace_back([&, i, core] { produce(s, core, ps[i], start, end); });
  }
  for (auto& t : threads) t.join();
  const double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  bench::histogram all;
  std::uint64_t sent = 0, received = 0;
  for (auto& p : ps) {
    p.latency.merge_into(all);
    sent += p.sent;
    received += p.received;
    ::close(p.file);
    for (int fd : {p.producer_fd, p.relay_in, p.relay_out, p.consumer_fd}) ::close(fd);
  }
  for (const auto& f : files) ::unlink(f.c_str());
  std::printf("%u pipelines (%s), %zu-byte messages, %s: sent %llu, received %llu, %.2f M msgs/s end to end\n", s.pipelines,
              s.spread ? "spread" : "pinned per core", s.size,
              s.rate > 0 ? ("rate " + std::to_string(static_cast<long long>(s.rate)) + "/s, linger " +
                            std::to_string(s.linger_us) + " us")
                               .c_str()
                         : "flat out",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
              static_cast<double>(received) / elapsed / 1e6);
  std::printf("e2e latency (us%s): p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
              s.rate > 0 ? ", from scheduled send times" : "", static_cast<unsigned long long>(all.percentile(0.5)),
              static_cast<unsigned long long>(all.percentile(0.9)), static_cast<unsigned long long>(all.percentile(0.99)),
              static_cast<unsigned long long>(all.percentile(0.999)), static_cast<unsigned long long>(all.max()));
  return received == sent ? 0 : 1;
}
