// Broker macro-benchmark against a running mcp-broker (perf/broker_bench.sh starts one).
//   publish: C connections, each to the shard port that owns its partition, pipelining
//            PUBLISH batches (64 x 100-byte records by default, up to --inflight unacked),
//            for --seconds; prints acked msgs/s and MB/s.
//   fetch:   one consumer reads the partition-0 backlog from offset 0 to the end with
//            1 MiB FETCHes on a raw socket (no decoding: bytes counted as they arrive);
//            prints GB/s and, with --broker-pid, the broker's CPU seconds per GiB.
// Run: perf/broker_bench.sh (it prints the command lines it uses).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/shard_router.h"
#include "perf/loopback_pair.h"
#include "codec/byte_order.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "tools/client/client.h"

using namespace mcp;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9092;
  unsigned shards = 2;
  std::string topic = "bench";
  std::uint32_t partitions = 2;
  unsigned connections = 2;
  double seconds = 5;
  std::uint32_t batch = 64;
  std::size_t size = 100;
  // Unacked batches per connection: with sync the rate is at most window / (write +
  // fdatasync), so a small window measures the window (16: ~1.2 M msgs/s here, 128:
  // ~2.1 M; perf/results.md). 128 is also mcp-bench's default.
  unsigned inflight = 128;
  std::string durability = "sync";
  bool fetch = false;
  bool latency = false;
  int broker_pid = 0;
};

double cpu_seconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto rp = s.rfind(')');
  std::vector<std::string> f;
  std::size_t i = rp + 2;
  while (i < s.size()) {
    const auto j = s.find(' ', i);
    f.push_back(s.substr(i, j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
}

void publish_phase(const options& o) {
  std::atomic<std::uint64_t> acked{0};
  std::atomic<bool> failed{false};
  const auto deadline = clock_type::now() + std::chrono::duration<double>(o.seconds);
  std::vector<std::thread> threads;
  const auto t0 = clock_type::now();
  for (unsigned i = 0; i < o.connections; ++i) {
    threads.emplace_back([&, i] {
      const std::uint32_t p = i % o.partitions;
      const unsigned owner = broker::owner_shard(o.topic, p, o.shards);
      auto c = client::connection::connect(o.host, static_cast<std::uint16_t>(o.port + 1 + owner));
      if (!c || !c->hello("bench")) {
        failed = true;
        return;
      }
      // The batch is encoded once: the frame CRC covers only the body, so each send
      // just patches the correlation id. The load generator then costs the machine
      // (shared with the broker) almost nothing per message.
      const std::string value(o.size, 'v');
      std::vector<codec::record_input> recs(o.batch);
      for (auto& r : recs) r.value = {reinterpret_cast<const std::byte*>(value.data()), value.size()};
      const codec::publish_header ph{p, o.batch, 0, o.topic};
      std::size_t size = codec::header_size + codec::publish_prefix_size(o.topic);
      for (const auto& r : recs) size += codec::record_frame_size(r);
      std::vector<std::byte> frame(size);
      std::size_t at = codec::header_size + codec::encode_publish_prefix(std::span(frame).subspan(codec::header_size), ph);
      for (const auto& r : recs) at += codec::encode_record(std::span(frame).subspan(at), r);
      codec::seal_frame(frame, codec::opcode::publish, 0);
      std::uint32_t next_corr = 1u << 20;
      std::deque<std::uint32_t> pending;
      while (clock_type::now() < deadline || !pending.empty()) {
        while (pending.size() < o.inflight && clock_type::now() < deadline) {
          codec::store_le<std::uint32_t>(frame.data() + codec::correlation_offset, ++next_corr);
          if (!c->send_bytes(frame)) {
            failed = true;
            return;
          }
          pending.push_back(next_corr);
        }
        std::uint32_t corr = 0;
        auto a = c->read_next_ack(corr);
        if (!a) {
          std::fprintf(stderr, "ack: %s\n", a.error().message.c_str());
          failed = true;
          return;
        }
        pending.pop_front();
        acked += a->count;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double rate = static_cast<double>(acked.load()) / s;
  std::printf("publish %-5s %u conns, batch %u x %zu B, %u in flight: %.2f M msgs/s acked (%.0f MB/s of values)%s\n",
              o.durability.c_str(), o.connections, o.batch, o.size, o.inflight, rate / 1e6,
              rate * static_cast<double>(o.size) / 1e6, failed ? "  [errors]" : "");
}

// Round trip of single-record publishes, sequential: through the owning shard's
// port (direct) and through the other shard's port (forwarded over the shard
// queues and woken with MSG_RING). Prints the median of 2000.
void latency_phase(const options& o) {
  const unsigned owner = broker::owner_shard(o.topic, 0, o.shards);
  for (const bool forwarded : {false, true}) {
    const unsigned via = forwarded ? (owner + 1) % o.shards : owner;
    auto c = client::connection::connect(o.host, static_cast<std::uint16_t>(o.port + 1 + via));
    if (!c || !c->hello("bench-latency")) return;
    const std::string value(o.size, 'v');
    codec::record_input in;
    in.value = {reinterpret_cast<const std::byte*>(value.data()), value.size()};
    std::vector<double> us;
    for (int i = 0; i < 2000; ++i) {
      const auto t = clock_type::now();
      if (!c->publish(o.topic, 0, std::span(&in, 1))) return;
      us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t).count());
    }
    std::sort(us.begin(), us.end());
    std::printf("publish round trip, 1 record, %s (%s): p50 %.0f us, p99 %.0f us\n",
                forwarded ? "forwarded between shards" : "direct to the owner", o.durability.c_str(),
                us[us.size() / 2], us[us.size() * 99 / 100]);
  }
}

bool read_exact(int fd, std::byte* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::recv(fd, out + done, n - done, 0);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

void fetch_phase(const options& o) {
  const unsigned owner = broker::owner_shard(o.topic, 0, o.shards);
  auto c = client::connection::connect(o.host, static_cast<std::uint16_t>(o.port + 1 + owner));
  if (!c || !c->hello("bench-fetch")) {
    std::fprintf(stderr, "fetch: cannot connect\n");
    return;
  }
  const int fd = c->fd();
  std::vector<std::byte> sink(1 << 20);
  std::uint64_t offset = 0, bytes = 0;
  const double cpu0 = cpu_seconds(o.broker_pid);
  const auto t0 = clock_type::now();
  for (std::uint32_t corr = 1000;; ++corr) {
    std::vector<std::byte> body, frame;
    codec::append_fetch(body, {offset, 0, 1 << 20, 0, 0, o.topic});
    codec::append_frame(frame, codec::opcode::fetch, corr, body);
    if (!c->send_bytes(frame)) return;
    std::array<std::byte, codec::header_size + codec::records_size> head{};
    if (!read_exact(fd, head.data(), head.size())) return;
    const auto h = codec::decode_records(std::span(head).subspan(codec::header_size));
    if (!h) {
      std::fprintf(stderr, "fetch: unexpected reply\n");
      return;
    }
    if (h->record_count == 0) break;
    std::uint64_t left = h->byte_count;
    while (left > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, sink.size()));
      if (!read_exact(fd, sink.data(), n)) return;
      left -= n;
    }
    bytes += h->byte_count;
    offset += h->record_count;
  }
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double cpu = cpu_seconds(o.broker_pid) - cpu0;
  const double gib = static_cast<double>(bytes) / (1024.0 * 1024 * 1024);
  std::printf("fetch backlog: %.2f GiB, %llu records in %.2f s: %.2f GB/s", gib, static_cast<unsigned long long>(offset),
              s, static_cast<double>(bytes) / s / 1e9);
  if (o.broker_pid > 0) std::printf(", broker CPU %.3f s/GiB", cpu / gib);
  std::printf("\n");
}

// The ceiling for fetch: a bare sendfile loop from `path` to a loopback TCP socket
// whose other end a thread drains, the same file the broker served.
void sendfile_ceiling(const std::string& path) {
  const auto pair = perf::loopback_tcp_pair(false);
  if (!pair) {
    std::fprintf(stderr, "ceiling: no loopback socket\n");
    return;
  }
  const auto [out, drained] = *pair;
  std::thread reader([fd = drained] {
    std::vector<char> buf(1 << 20);
    while (::recv(fd, buf.data(), buf.size(), 0) > 0) {
    }
    ::close(fd);
  });
  const int in = ::open(path.c_str(), O_RDONLY);
  struct stat st {};
  ::fstat(in, &st);
  off_t off = 0;
  const auto t0 = clock_type::now();
  while (off < st.st_size) {
    if (::sendfile(out, in, &off, static_cast<std::size_t>(std::min<off_t>(st.st_size - off, 1 << 20))) <= 0) break;
  }
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  ::close(out);
  reader.join();
  ::close(in);
  std::printf("ceiling: bare sendfile of the same segment (%.2f GiB) to loopback: %.2f GB/s\n",
              static_cast<double>(st.st_size) / (1024.0 * 1024 * 1024), static_cast<double>(st.st_size) / s / 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
    if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoi(next()));
    else if (a == "--shards") o.shards = static_cast<unsigned>(std::stoi(next()));
    else if (a == "--topic") o.topic = next();
    else if (a == "--partitions") o.partitions = static_cast<std::uint32_t>(std::stoi(next()));
    else if (a == "--connections") o.connections = static_cast<unsigned>(std::stoi(next()));
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--batch") o.batch = static_cast<std::uint32_t>(std::stoi(next()));
    else if (a == "--size") o.size = static_cast<std::size_t>(std::stoi(next()));
    else if (a == "--inflight") o.inflight = static_cast<unsigned>(std::stoi(next()));
    else if (a == "--durability") o.durability = next();
    else if (a == "--fetch") o.fetch = true;
    else if (a == "--latency") o.latency = true;
    else if (a == "--ceiling-file") {
      sendfile_ceiling(next());
      return 0;
    }
    else if (a == "--broker-pid") o.broker_pid = std::stoi(next());
    else {
      std::fprintf(stderr, "broker_bench: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  auto admin = client::connection::connect(o.host, o.port);
  if (!admin || !admin->hello("bench-admin")) {
    std::fprintf(stderr, "broker_bench: no broker at %s:%u\n", o.host.c_str(), o.port);
    return 1;
  }
  if (!o.fetch) {
    const auto kind = o.durability == "none" ? fb::DurabilityKind::None : fb::DurabilityKind::Sync;
    if (auto r = admin->create_topic(o.topic, o.partitions, kind); !r) {
      std::fprintf(stderr, "create topic: %s\n", r.error().message.c_str());
      return 1;
    }
    if (o.latency) {
      latency_phase(o);
    } else {
      publish_phase(o);
    }
  } else {
    fetch_phase(o);
  }
  return 0;
}
