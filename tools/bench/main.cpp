// mcp-bench: the load generator. Producers publish, consumers read, and every
// consumed message is checked (exactly once, in order per partition and producer)
// and timed end to end from the producer's send time carried in the message
// (with --rate, from its *scheduled* send time, so a stalled broker cannot hide a
// stall: coordinated omission corrected, as wrk2 does). One live line a second,
// a summary at the end, --json for machines. Exit 1 if verification fails.
// With --group, the consumers are members of one consumer group (--workers of
// them) that ack every record; then verification is "every published message
// acked at least once", and redeliveries are counted.

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "storage/durability.h"
#include "tools/bench/embedded_broker.h"
#include "tools/bench/histogram.h"
#include "tools/bench/host_cpu.h"
#include "tools/bench/payload.h"
#include "tools/bench/placement.h"
#include "tools/client/broker_address.h"
#include "tools/client/client.h"
#include "tools/client/consumer.h"
#include "tools/client/group_consumer.h"

using namespace mcp;
using steady = std::chrono::steady_clock;

namespace {

struct options {
  std::string broker;
  bool embedded = false;
  unsigned shards = 2;
  // The defaults are the headline run on a 2-core machine (scripts/run.sh): one
  // producer and one consumer per core, two partitions per shard.
  unsigned producers = 2;
  unsigned consumers = 2;
  std::uint32_t partitions = 4;
  std::size_t size = 100;
  std::uint64_t messages = 0;
  double duration = 10;
  double rate = 0;
  std::uint32_t batch = 64;
  // Unacknowledged batches per connection. A producer's throughput is at most its
  // window over the ACK round trip (Little's law), and with `sync` that round trip
  // includes an fdatasync (0.3-0.6 ms alone here, several ms under load): 8 batches of
  // 64 held `sync` to ~0.4 M msgs/s whatever the broker could do. 128 batches of
  // 100-byte messages are ~1.3 MB per connection; the client library's producer
  // allows 32 MiB unacknowledged by default (perf/results.md, "in-flight window").
  unsigned inflight = 128;
  std::string fetch = "poll";
  std::string placement = "shard";
  std::int64_t linger_us = -1;  // with --rate: how long a batch waits after its first message is due; -1: until full
  std::string durability = "sync";
  // Of the bench topic, so a long run's disk use stays bounded: per partition, -1
  // unlimited; a segment size, 0 for the broker's default.
  std::int64_t retention_bytes = -1;
  std::int64_t segment_bytes = 0;
  bool json = false;
  std::string topic;
  std::string group;         // consumers are members of this group (empty: stream readers)
  unsigned workers = 4;      // with --group: members
  // With --group: records each member may hold unacked, its window. As with
  // --inflight, a member takes at most credit / round trip: 256 held 8 workers to
  // ~1.3 M acked msgs/s, 1024 (about NATS JetStream's default max_ack_pending of
  // 1000) gives ~1.7 M (perf/results.md).
  std::uint32_t credit = 1024;
};

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count());
}

struct shared_state {
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<std::uint64_t> redelivered{0};  // --group: deliveries with a delivery count above 1
  std::atomic<std::uint64_t> reconnects{0};   // --group: members that lost their connection and subscribed again
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> producers_done{false};
  std::atomic<bool> stop_consumers{false};
  std::mutex error_mu;
  std::string first_error;
  void error(const std::string& e) {
    errors.fetch_add(1);
    std::lock_guard lk(error_mu);
    if (first_error.empty()) first_error = e;
  }
};

// Every producer and consumer thread connects first and then waits here for the
// others, so the clock starts with every connection up: a message scheduled while
// a consumer was still connecting would time the connect, not the broker. A
// thread that gives up (nothing to do, cannot connect) still counts itself off.
class start_gate {
 public:
  explicit start_gate(std::latch& l) : latch_(l) {}
  start_gate(const start_gate&) = delete;
  start_gate& operator=(const start_gate&) = delete;
  ~start_gate() {
    if (!passed_) latch_.count_down();
  }
  void pass() {
    if (passed_) return;
    passed_ = true;
    latch_.arrive_and_wait();
  }

 private:
  std::latch& latch_;
  bool passed_ = false;
};

void produce(const options& o, unsigned me, const bench::thread_share& share,
             const std::map<std::uint32_t, std::uint16_t>& port_of, const std::string& host, std::uint64_t quota,
             std::latch& ready, shared_state& st) {
  start_gate gate(ready);
  const auto& parts = share.partitions;
  if (parts.empty()) return;
  if (share.core) bench::pin_this_thread(*share.core);
  std::map<std::uint16_t, client::connection> conns;  // one per owning shard port
  for (const auto p : parts) {
    const auto port = port_of.at(p);
    if (conns.count(port) != 0) continue;
    auto c = client::connection::connect(host, port);
    if (!c || !c->hello("mcp-bench")) return st.error("producer cannot connect");
    conns.emplace(port, std::move(*c));
  }
  std::map<std::uint32_t, std::uint64_t> seq;
  std::map<std::uint16_t, std::size_t> pending;  // unacknowledged batches per connection
  std::vector<std::string> values(o.batch, std::string(o.size, '.'));
  std::vector<codec::record_input> recs(o.batch);
  const double per_producer_rate = o.rate > 0 ? o.rate / o.producers : 0;
  // The default 50 us timer slack would be added to every scheduled send.
  if (per_producer_rate > 0) ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  gate.pass();
  const auto deadline = steady::now() + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(o.duration));
  const std::uint64_t start_ns = now_ns();
  std::uint64_t sent = 0;
  std::size_t next_part = 0;
  auto drain_one = [&](std::uint16_t port) -> bool {
    std::uint32_t corr = 0;
    auto a = conns.at(port).read_next_ack(corr);
    --pending[port];
    if (!a) {
      st.error("publish failed: " + a.error().message);
      return false;
    }
    st.published.fetch_add(a->count, std::memory_order_relaxed);
    return true;
  };
  // Every ACK already here, on every connection, without waiting; with `wait`,
  // first waits (poll) until one arrives on any connection.
  std::vector<pollfd> fds;  // reap's, kept: it runs at every wake-up of a rate-limited producer
  auto reap = [&](bool wait) -> bool {
    const auto failed = [&](const std::string& why) {
      st.error("publish failed: " + why);
      return false;
    };
    if (wait) {
      fds.clear();
      for (auto& [port, c] : conns) {
        if (pending[port] > 0) fds.push_back({c.fd(), POLLIN, 0});
      }
      if (!fds.empty() && ::poll(fds.data(), fds.size(), 10000) == 0) return failed("no ACK from the broker within 10 s");
    }
    for (auto& [port, c] : conns) {
      while (pending[port] > 0) {
        auto f = c.try_next_frame(0);
        if (!f) return failed(f.error().message);
        if (!*f) break;
        --pending[port];
        const codec::frame_view& fv = **f;
        if (fv.header.op == codec::opcode::error) {
          return failed(client::error_from(client::owned_frame{fv.header, {fv.body.begin(), fv.body.end()}}).message);
        }
        if (fv.header.op != codec::opcode::ack) {
          return failed(fmt::format("{} in answer to PUBLISH", codec::opcode_name(fv.header.op)));
        }
        const auto a = codec::decode_ack(fv.body);
        if (!a) return failed("malformed ACK");
        st.published.fetch_add(a->count, std::memory_order_relaxed);
      }
    }
    return true;
  };
  while ((o.messages == 0 || sent < quota) && (o.messages != 0 || steady::now() < deadline)) {
    std::uint32_t p = parts[next_part++ % parts.size()];
    std::uint16_t port = port_of.at(p);
    std::uint32_t n =
        o.messages == 0 ? o.batch : static_cast<std::uint32_t>(std::min<std::uint64_t>(o.batch, quota - sent));
    if (per_producer_rate > 0) {
      // No message goes out before its scheduled time. By default a batch leaves
      // when its last message is due, so it is always full; with --linger-us L it
      // leaves L after its first message is due, with every message due by then
      // (at most --batch), as a client with a linger time does. Either way, while
      // the broker holds --inflight batches unacknowledged, due messages pile up.
      // Sleep, not spin: on a machine shared with the broker a spinning generator takes
      // the broker's CPU. Oversleeping is charged to latency (the clock starts at `due`).
      const auto due_at = [&](std::uint64_t i) {
        return start_ns + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / per_producer_rate);
      };
      const std::uint64_t due =
          o.linger_us < 0 ? due_at(sent + n - 1) : due_at(sent) + static_cast<std::uint64_t>(o.linger_us) * 1000;
      std::uint64_t now = now_ns();
      if (now < due) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
        now = now_ns();
      }
      if (o.linger_us >= 0) {
        const auto due_by_now =
            static_cast<std::uint64_t>(static_cast<double>(now - start_ns) * per_producer_rate / 1e9) + 1;
        n = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(due_by_now > sent ? due_by_now - sent : 1, 1, n));
      }
      // Like a client's partitioner that skips a partition with a full queue: the
      // batch goes to the next partition whose connection has room, and only when
      // none has does the producer wait, for an ACK from any of them.
      if (!reap(false)) return;
      for (std::size_t tried = 0;; ++tried) {
        if (pending[port] < o.inflight) break;
        if (tried >= parts.size()) {
          if (!reap(true)) return;
          tried = 0;
        }
        p = parts[next_part++ % parts.size()];
        port = port_of.at(p);
      }
    }
    const std::uint64_t t = now_ns();
    for (std::uint32_t k = 0; k < n; ++k) {
      // With a rate, each message carries the time it was due, not when it went out.
      const std::uint64_t send_ns =
          per_producer_rate > 0 ? start_ns + static_cast<std::uint64_t>(static_cast<double>(sent + k) * 1e9 / per_producer_rate)
                                : t;
      bench::write_payload(std::as_writable_bytes(std::span(values[k].data(), values[k].size())),
                           {send_ns, me, seq[p]++});
      recs[k].value = std::as_bytes(std::span(values[k].data(), values[k].size()));
    }
    while (pending[port] >= o.inflight) {
      if (!drain_one(port)) return;
    }
    auto corr = conns.at(port).send_publish(o.topic, p, std::span(recs).first(n));
    if (!corr) return st.error("publish failed: " + corr.error().message);
    ++pending[port];
    sent += n;
  }
  for (auto& [port, n] : pending) {
    while (n > 0) {
      if (!drain_one(port)) return;
    }
  }
}

// A stream reader of its share of the partitions, through the client library's
// consumer: one long-poll FETCH in flight per partition, so a quiet partition
// never holds up a busy one.
void consume(const options& o, const bench::thread_share& share, const std::string& host, std::uint16_t port,
             std::latch& ready, shared_state& st, bench::histogram& hist) {
  start_gate gate(ready);
  if (share.partitions.empty()) return;
  if (share.core) bench::pin_this_thread(*share.core);
  client::consumer_options co;
  co.host = host;
  co.port = port;
  co.topic = o.topic;
  co.partitions = share.partitions;
  co.client_name = "mcp-bench-consumer";
  co.max_wait_ms = 100;
  co.follow = o.fetch == "follow";
  auto c = client::consumer::create(co);
  if (!c) return st.error("consumer cannot start: " + c.error().message);
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> expected;  // (partition, producer) -> next seq
  // The first poll connects to the partitions' owners without waiting.
  for (bool first = true; !st.stop_consumers.load(); first = false) {
    auto batch = c->poll(std::chrono::milliseconds(first ? 0 : 20));
    if (!batch) return st.error("fetch failed: " + batch.error().message);
    gate.pass();
    const std::uint64_t t = now_ns();
    for (const auto& rec : *batch) {
      bench::payload pl;
      if (!bench::read_payload(rec.value, pl)) {
        st.error(fmt::format("partition {} offset {}: not an mcp-bench message", rec.partition, rec.offset));
        continue;
      }
      auto& want = expected[{rec.partition, pl.producer}];
      if (pl.seq != want) {
        st.error(fmt::format("partition {} offset {}: producer {} sequence {} where {} was expected ({})", rec.partition,
                             rec.offset, pl.producer, pl.seq, want, pl.seq < want ? "duplicate" : "gap"));
      }
      want = pl.seq + 1;
      hist.record(t > pl.send_ns ? (t - pl.send_ns) / 1000 : 0);
    }
    st.consumed.fetch_add(batch->size(), std::memory_order_relaxed);
  }
}

// A group member: takes leases, times each record, acks it. Remembers what it
// acked as (partition << 48 | producer << 40 | sequence) for the check at the end.
void consume_group(const options& o, const std::string& host, std::uint16_t port, std::optional<unsigned> core,
                   std::latch& ready, shared_state& st, bench::histogram& hist, std::vector<std::uint64_t>& acked) {
  start_gate gate(ready);
  if (core) bench::pin_this_thread(*core);
  client::group_consumer_options go;
  go.host = host;
  go.port = port;
  go.topic = o.topic;
  go.group = o.group;
  go.credit = o.credit;
  go.start = client::group_start::earliest();
  go.client_name = "mcp-bench-worker";
  auto gc = client::group_consumer::create(go);
  if (!gc) return st.error("group member cannot subscribe: " + gc.error().message);
  gate.pass();
  while (!st.stop_consumers.load()) {
    auto batch = gc->poll(std::chrono::milliseconds(20));
    if (!batch) {
      // A lost or stuck connection (the broker drops it, or its records stall past the
      // consumer's timeout on an overloaded machine) releases this member's leases to the
      // others and the next poll reconnects: what it held comes back as redeliveries.
      const auto code = batch.error().code;
      if (code == client::local_error::disconnected || code == client::local_error::timeout) {
        st.reconnects.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      return st.error("group poll failed: " + batch.error().message);
    }
    const std::uint64_t t = now_ns();
    std::uint64_t again = 0;
    for (const auto& rec : *batch) {
      bench::payload pl;
      if (!bench::read_payload(rec.value, pl)) {
        st.error(fmt::format("partition {} offset {}: not an mcp-bench message", rec.partition, rec.offset));
        continue;
      }
      if (rec.delivery_count > 1) ++again;
      hist.record(t > pl.send_ns ? (t - pl.send_ns) / 1000 : 0);
      acked.push_back((static_cast<std::uint64_t>(rec.partition) << 48) | (static_cast<std::uint64_t>(pl.producer & 0xFF) << 40) |
                      (pl.seq & ((std::uint64_t{1} << 40) - 1)));
      gc->ack(rec);
    }
    st.redelivered.fetch_add(again, std::memory_order_relaxed);
    st.consumed.fetch_add(batch->size(), std::memory_order_relaxed);
  }
  (void)gc->close();
}

// --group: each producer numbers its messages per partition from 0, so for every
// (partition, producer) the acked sequence numbers must be dense from 0, and the
// distinct messages acked must add up to what was published. Returns that count.
std::uint64_t check_group_coverage(std::vector<std::vector<std::uint64_t>>& per_worker, std::uint64_t published,
                                   shared_state& st) {
  std::vector<std::uint64_t> all;
  for (auto& v : per_worker) {
    all.insert(all.end(), v.begin(), v.end());
    std::vector<std::uint64_t>().swap(v);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  constexpr std::uint64_t seq_mask = (std::uint64_t{1} << 40) - 1;
  for (auto it = all.begin(); it != all.end();) {
    const std::uint64_t stream = *it & ~seq_mask;
    const auto end = std::lower_bound(it, all.end(), stream + seq_mask + 1);
    const auto distinct = static_cast<std::uint64_t>(end - it);
    const std::uint64_t last = *(end - 1) & seq_mask;
    if (last + 1 != distinct) {
      st.error(fmt::format("partition {} producer {}: {} distinct messages acked up to sequence {} (a gap)", stream >> 48,
                           (stream >> 40) & 0xFF, distinct, last));
    }
    it = end;
  }
  if (all.size() != published) {
    st.error(fmt::format("{} distinct messages acked of {} published", all.size(), published));
  }
  return all.size();
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"mcp-bench: load generator for the MCP broker (publishes, consumes, verifies, measures)"};
  app.option_defaults()->always_capture_default();
  auto* broker_opt = app.add_option("--broker", o.broker, "HOST:PORT of a running broker");
  auto* emb = app.add_flag("--embedded", o.embedded, "start a broker on a free loopback port with a temp data dir");
  broker_opt->excludes(emb);
  app.add_option("--shards", o.shards, "shards of the embedded broker")->check(CLI::Range(1u, 64u));
  app.add_option("--producers", o.producers, "producer threads")->check(CLI::Range(1u, 256u));
  app.add_option("--consumers", o.consumers, "consumer threads")->check(CLI::Range(0u, 256u));
  app.add_option("--partitions", o.partitions, "partitions of the bench topic")->check(CLI::Range(1u, 10000u));
  app.add_option("--size", o.size, "message size in bytes (>= 24: send time, producer, sequence)")
      ->check(CLI::Range(std::size_t{24}, std::size_t{1} << 20));
  auto* msgs = app.add_option("--messages", o.messages, "total messages (instead of --duration)");
  app.add_option("--duration", o.duration, "seconds to publish for")->excludes(msgs)->check(CLI::Range(0.1, 3600.0));
  app.add_option("--rate", o.rate, "messages per second over all producers; 0 = flat out")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--batch", o.batch, "messages per PUBLISH")->check(CLI::Range(1u, 100000u));
  app.add_option("--linger-us", o.linger_us,
                 "with --rate: a batch leaves this long after its first message is due, with every message due by "
                 "then; -1: when its last message is due (full batches)")
      ->check(CLI::Range(std::int64_t{-1}, std::int64_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--fetch", o.fetch,
                 "how stream consumers fetch: follow (one FETCH per partition the broker keeps answering) | poll "
                 "(one FETCH per answer)")
      ->check(CLI::IsMember({"follow", "poll"}));
  app.add_option("--placement", o.placement,
                 "shard: each producer and consumer serves the partitions of one shard and runs on that shard's core "
                 "(a local broker pins shard i to core i mod cores; group member i subscribes on shard i mod shards) | "
                 "spread: partitions dealt round robin, threads placed by the kernel")
      ->check(CLI::IsMember({"shard", "spread"}));
  app.add_option("--inflight", o.inflight, "unacknowledged batches per connection (the producer's window)")->check(CLI::Range(1u, 1024u));
  app.add_option("--durability", o.durability, "sync | none | interval:MS (topic and embedded broker)");
  app.add_option("--retention-bytes", o.retention_bytes,
                 "bench topic's retention per partition, -1 unlimited (records deleted before they are consumed count "
                 "as lost)")
      ->check(CLI::Range(std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()))
      ->capture_default_str();
  app.add_option("--segment-bytes", o.segment_bytes, "bench topic's segment size, 4096..1073741824 (0: broker default)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30))
      ->capture_default_str();
  app.add_flag("--json", o.json, "print the summary as one JSON object on the last line");
  auto* group_opt = app.add_option("--group", o.group, "consumers join this consumer group and ack every record");
  app.add_option("--workers", o.workers, "with --group: group members (threads)")->check(CLI::Range(1u, 256u))->needs(group_opt);
  app.add_option("--credit", o.credit, "with --group: records each member may hold unacked")
      ->check(CLI::Range(1u, 1u << 20))
      ->needs(group_opt);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!o.embedded && o.broker.empty()) o.embedded = true;  // one-command demo by default
  if (o.group.empty() && o.consumers > o.partitions) {
    // A stream consumer reads whole partitions: a second one on a partition would
    // read its records again and the exactly-once check would count them twice.
    std::fprintf(stderr,
                 "mcp-bench: --consumers %u is more than --partitions %u: each stream consumer reads whole partitions; "
                 "use --partitions %u or more, or --group NAME --workers %u for competing consumers\n",
                 o.consumers, o.partitions, o.consumers, o.consumers);
    return 2;
  }
  client::broker_address address;
  if (!o.embedded && !client::parse_broker(o.broker, address)) {
    std::fprintf(stderr, "mcp-bench: --broker '%s' is not HOST:PORT (a port in 1..65535)\n", o.broker.c_str());
    return 2;
  }
  // Checked here, before an embedded broker is started with it.
  const auto level = storage::parse_durability(o.durability);
  if (!level) {
    std::fprintf(stderr, "mcp-bench: --durability: %s\n", level.error().message.c_str());
    return 2;
  }

  std::optional<bench::embedded_broker> embedded;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  try {
    if (o.embedded) {
      embedded.emplace(bench::embedded_broker::find_binary(argv[0]), o.shards, o.durability);
      port = embedded->port();
    } else {
      host = address.host;
      port = address.port;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mcp-bench: %s\n", e.what());
    return 1;
  }

  auto admin = client::connection::connect(host, port);
  if (!admin || !admin->hello("mcp-bench")) {
    std::fprintf(stderr, "mcp-bench: no broker at %s:%u\n", host.c_str(), port);
    return 1;
  }
  o.topic = fmt::format("bench-{}-{}", ::getpid(), std::chrono::system_clock::now().time_since_epoch().count() % 1000000);
  fb::TopicConfigT topic_config;
  topic_config.partitions = o.partitions;
  topic_config.durability = level->level == storage::durability::kind::none   ? fb::DurabilityKind::None
                            : level->level == storage::durability::kind::sync ? fb::DurabilityKind::Sync
                                                                               : fb::DurabilityKind::Interval;
  topic_config.durability_interval_ms = level->interval_ms;
  topic_config.retention_bytes = o.retention_bytes;
  topic_config.segment_bytes = o.segment_bytes;
  if (auto r = admin->create_topic(o.topic, topic_config); !r) {
    std::fprintf(stderr, "mcp-bench: create topic: %s\n", r.error().message.c_str());
    return 1;
  }
  auto meta = admin->metadata({o.topic});
  if (!meta || meta->topics.empty()) {
    std::fprintf(stderr, "mcp-bench: no metadata for the bench topic\n");
    return 1;
  }
  std::map<std::uint32_t, std::uint16_t> port_of;
  std::map<std::uint32_t, unsigned> shard_of;
  std::map<unsigned, std::uint16_t> port_of_shard;
  for (const auto& p : meta->topics[0]->partitions) {
    port_of[p->partition] = p->port;
    shard_of[p->partition] = p->shard;
    port_of_shard[p->shard] = p->port;
  }
  const auto how = o.placement == "shard" ? bench::placement::shard : bench::placement::spread;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const auto producer_shares = bench::share_partitions(how, o.producers, shard_of, cores);

  shared_state st;
  const bool grouped = !o.group.empty();
  if (grouped) o.consumers = o.workers;
  // Group members take leases from every partition; placed, member i subscribes
  // on the port of shard i mod shards (its subscription lives there, and that
  // shard's deliveries go out from the core it runs on) and runs on that core.
  const auto consumer_shares = bench::share_partitions(how, grouped ? 0 : o.consumers, shard_of, cores);
  const auto member_at = [&](unsigned i) -> std::pair<std::uint16_t, std::optional<unsigned>> {
    if (how != bench::placement::shard || port_of_shard.empty()) return {port, std::nullopt};
    auto it = port_of_shard.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(i % port_of_shard.size()));
    return {it->second, it->first % cores};
  };
  std::vector<std::unique_ptr<bench::histogram>> hists;
  for (unsigned i = 0; i < o.consumers; ++i) hists.push_back(std::make_unique<bench::histogram>());
  std::vector<std::vector<std::uint64_t>> acked_by(grouped ? o.consumers : 0);
  const auto cpu_before = bench::read_host_cpu();
  std::latch ready(static_cast<std::ptrdiff_t>(o.consumers + o.producers + 1));
  std::vector<std::thread> producers, consumers;
  for (unsigned i = 0; i < o.consumers; ++i) {
    if (grouped) {
      consumers.emplace_back([&, i] {
        const auto [member_port, core] = member_at(i);
        consume_group(o, host, member_port, core, ready, st, *hists[i], acked_by[i]);
      });
    } else {
      consumers.emplace_back([&, i] { consume(o, consumer_shares[i], host, port, ready, st, *hists[i]); });
    }
  }
  for (unsigned i = 0; i < o.producers; ++i) {
    const std::uint64_t quota = o.messages / o.producers + (i < o.messages % o.producers ? 1 : 0);
    producers.emplace_back([&, i, quota] { produce(o, i, producer_shares[i], port_of, host, quota, ready, st); });
  }
  ready.arrive_and_wait();
  const auto t0 = steady::now();
  std::thread waiter([&] {
    for (auto& t : producers) t.join();
    st.producers_done = true;
  });

  // Live lines until the producers are done and the consumers have caught up
  // (or stopped making progress for 10 s).
  std::uint64_t last_pub = 0, last_con = 0;
  auto last_progress = steady::now();
  auto publish_end = steady::now();
  bool publish_ended = false;
  for (int tick = 1;; ++tick) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const bool done = st.producers_done.load();
    if (done && !publish_ended) {
      publish_ended = true;
      publish_end = steady::now();
    }
    const auto pub = st.published.load(), con = st.consumed.load();
    if (con != last_con || pub != last_pub) last_progress = steady::now();
    // With a group, acks of redeliveries do not count toward catching up.
    const bool caught_up = o.consumers == 0 || con - std::min(con, grouped ? st.redelivered.load() : 0) >= pub;
    if (done && (caught_up || steady::now() - last_progress > std::chrono::seconds(10) || st.errors > 0)) break;
    if (tick % 10 == 0) {
      bench::histogram live;
      for (const auto& h : hists) h->merge_into(live);
      const double el = std::chrono::duration<double>(steady::now() - t0).count();
      std::fprintf(stderr, "[%5.1fs] published %.0f/s  consumed %.0f/s  %.1f MB/s  e2e p50 %llu us  p99 %llu us\n", el,
                   static_cast<double>(pub - last_pub), static_cast<double>(con - last_con),
                   static_cast<double>(pub - last_pub) * static_cast<double>(o.size) / 1e6,
                   static_cast<unsigned long long>(live.percentile(0.5)),
                   static_cast<unsigned long long>(live.percentile(0.99)));
      last_pub = pub;
      last_con = con;
    }
  }
  st.stop_consumers = true;
  waiter.join();
  for (auto& t : consumers) t.join();
  const auto t_end = steady::now();
  const auto cpu_after = bench::read_host_cpu();
  const bool have_host_cpu = cpu_before && cpu_after;
  const bench::cpu_share host_cpu = have_host_cpu ? bench::share_between(*cpu_before, *cpu_after) : bench::cpu_share{};

  bench::histogram all;
  for (const auto& h : hists) h->merge_into(all);
  const std::uint64_t published = st.published.load(), consumed = st.consumed.load();
  // With a group, "consumed" counts distinct messages acked; acks of redeliveries come on top.
  const std::uint64_t acks = consumed;
  const std::uint64_t distinct = grouped ? check_group_coverage(acked_by, published, st) : consumed;
  const double pub_s = std::chrono::duration<double>(publish_end - t0).count();
  const double e2e_s = std::chrono::duration<double>(t_end - t0).count();
  const bool verified = st.errors == 0 && (o.consumers == 0 || distinct == published);
  const double pub_rate = static_cast<double>(published) / pub_s;
  const double e2e_rate = static_cast<double>(distinct) / e2e_s;
  const double acked_rate = static_cast<double>(acks) / e2e_s;
  const double mb = pub_rate * static_cast<double>(o.size) / 1e6;

  std::printf("published %llu messages in %.2f s: %.0f msgs/s, %.1f MB/s (%zu-byte messages, batch %u, %s)\n",
              static_cast<unsigned long long>(published), pub_s, pub_rate, mb, o.size, o.batch, o.durability.c_str());
  std::printf("consumed  %llu messages: %.0f msgs/s end to end\n", static_cast<unsigned long long>(distinct), e2e_rate);
  if (grouped) {
    std::printf("group %s, %u workers: %llu acks (%.0f acked msgs/s), %llu redelivered, %llu reconnects\n",
                o.group.c_str(), o.workers, static_cast<unsigned long long>(acks), acked_rate,
                static_cast<unsigned long long>(st.redelivered.load()), static_cast<unsigned long long>(st.reconnects.load()));
  }
  std::printf("e2e latency (us): p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu%s\n",
              static_cast<unsigned long long>(all.percentile(0.5)), static_cast<unsigned long long>(all.percentile(0.9)),
              static_cast<unsigned long long>(all.percentile(0.99)), static_cast<unsigned long long>(all.percentile(0.999)),
              static_cast<unsigned long long>(all.max()), o.rate > 0 ? " (from scheduled send times)" : "");
  if (have_host_cpu) {
    std::printf("host CPU during the run (whole machine): user %.0f%%  system %.0f%%  softirq %.0f%%  iowait %.0f%%  "
                "steal %.0f%%  idle %.0f%%\n",
                host_cpu.user, host_cpu.system, host_cpu.softirq, host_cpu.iowait, host_cpu.steal, host_cpu.idle);
    // A VM's host took that share of the CPUs: tails (and throughput) of such a
    // run are the neighbours' as much as the broker's.
    if (host_cpu.steal >= 10) std::printf("note: %.0f%% of the CPU time was stolen by the VM's host\n", host_cpu.steal);
  }
  if (verified && grouped) {
    std::printf("verified: every published message acked by the group at least once\n");
  } else if (verified) {
    std::printf("verified: every published message consumed exactly once, in order per partition\n");
  } else if (st.errors == 0) {
    std::printf("VERIFICATION FAILED: %llu of %llu published messages consumed (the consumers made no progress for 10 s)\n",
                static_cast<unsigned long long>(distinct), static_cast<unsigned long long>(published));
  } else {
    std::printf("VERIFICATION FAILED: %llu problems; first: %s (published %llu, consumed %llu)\n",
                static_cast<unsigned long long>(st.errors.load()), st.first_error.c_str(),
                static_cast<unsigned long long>(published), static_cast<unsigned long long>(distinct));
  }
  if (o.json) {
    const std::string group_keys =
        grouped ? fmt::format("\"acked\":{},\"acked_msgs_per_s\":{:.0f},\"redelivered\":{},\"reconnects\":{},", acks,
                              acked_rate, st.redelivered.load(), st.reconnects.load())
                : std::string();
    const std::string group_params =
        grouped ? fmt::format(",\"group\":\"{}\",\"workers\":{},\"credit\":{}", o.group, o.workers, o.credit) : std::string();
    const std::string host_keys =
        have_host_cpu ? fmt::format("\"host_cpu_pct\":{{\"user\":{:.1f},\"system\":{:.1f},\"softirq\":{:.1f},\"iowait\":{:.1f},"
                           "\"steal\":{:.1f},\"idle\":{:.1f}}},",
                           host_cpu.user, host_cpu.system, host_cpu.softirq, host_cpu.iowait, host_cpu.steal, host_cpu.idle)
             : std::string();
    std::printf(
        "{%s%s\"published\":%llu,\"consumed\":%llu,\"publish_msgs_per_s\":%.0f,\"e2e_msgs_per_s\":%.0f,\"mb_per_s\":%.2f,"
        "\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu},\"verified\":%s,"
        "\"errors\":%llu,\"params\":{\"producers\":%u,\"consumers\":%u,\"partitions\":%u,\"size\":%zu,\"batch\":%u,"
        "\"rate\":%.0f,\"linger_us\":%lld,\"fetch\":\"%s\",\"placement\":\"%s\",\"durability\":\"%s\",\"retention_bytes\":%lld,\"segment_bytes\":%lld,"
        "\"embedded\":%s%s}}\n",
        group_keys.c_str(), host_keys.c_str(), static_cast<unsigned long long>(published), static_cast<unsigned long long>(distinct), pub_rate,
        e2e_rate, mb,
        static_cast<unsigned long long>(all.percentile(0.5)), static_cast<unsigned long long>(all.percentile(0.9)),
        static_cast<unsigned long long>(all.percentile(0.99)), static_cast<unsigned long long>(all.percentile(0.999)),
        static_cast<unsigned long long>(all.max()), verified ? "true" : "false",
        static_cast<unsigned long long>(st.errors.load()), o.producers, o.consumers, o.partitions, o.size, o.batch, o.rate,
        static_cast<long long>(o.linger_us), o.fetch.c_str(), o.placement.c_str(), o.durability.c_str(), static_cast<long long>(o.retention_bytes),
        static_cast<long long>(o.segment_bytes), o.embedded ? "true" : "false", group_params.c_str());
  }
  return verified ? 0 : 1;
}
