// Consumer groups on the real broker (docs/groups.md), spoken frame by frame so
// that these tests check the broker, not a client library.

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/bytes.h"
#include "tests/support/page_cache.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::broker_process;
using steady = std::chrono::steady_clock;

namespace {

struct delivered {
  std::uint32_t partition;
  std::uint64_t offset;
  std::uint16_t deliveries;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A group member over one raw connection.
class member {
 public:
  member(const broker_process& b, const std::string& topic, const std::string& group, std::uint32_t credit,
         std::uint32_t ack_wait_ms = 0, std::uint32_t max_deliver = 0, std::uint16_t port = 0)
      : conn_(b.connect(port)) {
    fb::SubscribeT s;
    s.topic = topic;
    s.group = group;
    s.credit = credit;
    s.start = fb::StartPosition::Earliest;
    s.ack_wait_ms = ack_wait_ms;
    s.max_deliver = max_deliver;
    std::vector<std::byte> out;
    codec::append_control(out, codec::opcode::subscribe, sub_, s);
    REQUIRE(conn_.send_bytes(out));
    auto f = conn_.read_frame();
    REQUIRE(f.has_value());
    REQUIRE(f->header.op == codec::opcode::ok);
    REQUIRE(f->header.correlation == sub_);
  }

  // Deliveries that arrive within `timeout_ms` (stops early once `want` arrived).
  std::vector<delivered> receive(std::size_t want, int timeout_ms) {
    std::vector<delivered> out;
    const auto until = steady::now() + std::chrono::milliseconds(timeout_ms);
    while (out.size() < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
      if (left <= 0) break;
      auto f = conn_.read_frame(static_cast<int>(left));
      if (!f) break;
      if (f->header.op == codec::opcode::pong) continue;  // the answer to ping()
      REQUIRE(f->header.op == codec::opcode::delivery);
      const auto d = codec::decode_delivery(f->body);
      REQUIRE(d.has_value());
      CHECK(d->subscription == sub_);
      for (std::uint32_t i = 0; i < d->record_count; ++i) {
        auto rf = conn_.read_frame();
        REQUIRE(rf.has_value());
        REQUIRE(rf->header.op == codec::opcode::record);
        const auto r = codec::decode_record(rf->body);
        REQUIRE(r.has_value());
        CHECK(r->offset == d->first_offset + i);
        delivered x{d->partition, r->offset, d->delivery_count, std::string(as_string(r->value)), {}};
        auto it = r->headers();
        for (codec::record_header h; it.next(h);) x.headers.emplace_back(std::string(h.name), std::string(as_string(h.value)));
        out.push_back(std::move(x));
      }
    }
    return out;
  }

  void ack(std::uint32_t partition, std::uint64_t first, std::uint64_t last) {
    std::vector<std::byte> body;
    const codec::offset_range r{first, last};
    codec::append_commit(body, sub_, partition, std::span(&r, 1));
    send(codec::opcode::commit, body);
  }
  void ack_all(const std::vector<delivered>& ds) {
    for (const auto& d : ds) ack(d.partition, d.offset, d.offset);
  }
  void nack(std::uint32_t partition, std::uint64_t offset, std::uint32_t delay_ms, std::uint16_t flags = 0) {
    std::array<std::byte, codec::nack_size> body{};
    codec::encode_nack(body, {sub_, partition, offset, delay_ms, flags});
    send(codec::opcode::nack, body);
  }
  // Keeps the connection alive past the broker's idle timeout.
  void ping() {
    std::array<std::byte, 8> token{};
    send(codec::opcode::ping, token);
  }
  void credit(std::uint32_t n) {
    std::array<std::byte, codec::credit_size> body{};
    codec::encode_credit(body, {sub_, n});
    send(codec::opcode::credit, body);
  }

 private:
  void send(codec::opcode op, std::span<const std::byte> body) {
    std::vector<std::byte> out;
    codec::append_frame(out, op, 900, body);
    REQUIRE(conn_.send_bytes(out));
  }

  client::connection conn_;
  std::uint32_t sub_ = 77;
};

void publish_n(client::connection& c, const std::string& topic, std::uint32_t partitions, int n,
               const std::string& prefix = "m") {
  std::vector<std::string> values;
  for (int i = 0; i < n; ++i) values.push_back(prefix + std::to_string(i));
  for (std::uint32_t p = 0; p < partitions; ++p) {
    std::vector<codec::record_input> recs;
    for (int i = static_cast<int>(p); i < n; i += static_cast<int>(partitions)) {
      codec::record_input in;
      in.value = as_bytes(values[static_cast<std::size_t>(i)]);
      recs.push_back(in);
    }
    for (std::size_t at = 0; at < recs.size(); at += 500) {
      const auto end = std::min(recs.size(), at + 500);
      REQUIRE(c.publish(topic, p, std::span(recs).subspan(at, end - at)));
    }
  }
}

// A record's headers by name (the dead-letter topic's mcp.dlq.* fields).
std::map<std::string, std::string> headers_of(const codec::record_view& r) {
  std::map<std::string, std::string> h;
  auto it = r.headers();
  for (codec::record_header x; it.next(x);) h[std::string(x.name)] = std::string(as_string(x.value));
  return h;
}

}  // namespace

TEST_CASE("one member receives every record once, within its credit, and acks them") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g1", 1));
  publish_n(admin, "g1", 1, 1000);
  member m(b, "g1", "workers", 100);
  std::set<std::string> seen;
  for (int round = 0; round < 20 && seen.size() < 1000; ++round) {
    // Without acks the member holds at most its credit.
    const auto ds = m.receive(1000, 300);
    CHECK(ds.size() <= 100);
    for (const auto& d : ds) {
      CHECK(d.deliveries == 1);
      CHECK(seen.insert(d.value).second);
    }
    m.ack_all(ds);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("a group reads records whose pages are not in the page cache: every one delivered once, byte-exact") {
  broker_process b({.shards = 1, .durability = "none"});
  auto admin = b.connect();
  REQUIRE(admin.create_topic("gcold", 1));
  publish_n(admin, "gcold", 1, 20000, std::string(150, 'c'));  // ~4 MB
  if (mcp::test::evict_segments(b.data_dir() / "topics" / "gcold") == 0) {
    MESSAGE("the page cache kept the segment (tmpfs?): the deliveries below are warm");
  }
  member m(b, "gcold", "cold-readers", 1000);
  std::set<std::uint64_t> seen;
  for (int round = 0; round < 200 && seen.size() < 20000; ++round) {
    const auto ds = m.receive(1000, 500);
    for (const auto& d : ds) {
      CHECK(d.value == std::string(150, 'c') + std::to_string(d.offset));
      CHECK(seen.insert(d.offset).second);
    }
    m.ack_all(ds);
  }
  CHECK(seen.size() == 20000);
}

TEST_CASE("deliveries copied into the reply and spliced ones carry the same bytes") {
  // --copy-max-bytes 0: every leased run is spliced; 1 MiB: every cached run is
  // copied after its DELIVERY frame. Runs of 1 and of many records, back to back.
  for (const char* copy_max : {"0", "1048576"}) {
    CAPTURE(copy_max);
    broker_process b({.shards = 2, .durability = "none", .extra = {"--copy-max-bytes", copy_max}});
    auto admin = b.connect();
    REQUIRE(admin.create_topic("gcopy", 2));
    publish_n(admin, "gcopy", 2, 4000, std::string(90, 'v'));
    member one(b, "gcopy", "singles", 1);
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) {
      const auto ds = one.receive(1, 2000);
      REQUIRE(ds.size() == 1);
      CHECK(ds[0].value == std::string(90, 'v') + std::to_string(ds[0].offset * 2 + ds[0].partition));
      one.ack_all(ds);
    }
    member many(b, "gcopy", "batches", 1000);
    for (int round = 0; round < 100 && seen.size() < 4000; ++round) {
      const auto ds = many.receive(1000, 500);
      for (const auto& d : ds) {
        CHECK(d.value == std::string(90, 'v') + std::to_string(d.offset * 2 + d.partition));
        CHECK(seen.insert(d.value).second);
      }
      many.ack_all(ds);
    }
    CHECK(seen.size() == 4000);
  }
}

TEST_CASE("members share a topic whose partitions live on both shards; each record goes to one of them") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g2", 4));
  publish_n(admin, "g2", 4, 2000);
  member a(b, "g2", "pool", 50, 0, 0, b.shard_port(0));
  member c(b, "g2", "pool", 50, 0, 0, b.shard_port(1));
  std::multiset<std::string> seen;
  std::size_t by_a = 0, by_c = 0;
  for (int round = 0; round < 200 && seen.size() < 2000; ++round) {
    for (auto* m : {&a, &c}) {
      const auto ds = m->receive(50, 20);
      (m == &a ? by_a : by_c) += ds.size();
      for (const auto& d : ds) seen.insert(d.value);
      m->ack_all(ds);
    }
  }
  CHECK(seen.size() == 2000);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 2000);
  CHECK(by_a > 0);
  CHECK(by_c > 0);
}

TEST_CASE("a member with credit 1 never holds two records; CREDIT raises the window") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g3", 2));
  publish_n(admin, "g3", 2, 20);
  member m(b, "g3", "one", 1);
  auto first = m.receive(5, 300);
  REQUIRE(first.size() == 1);
  m.ack_all(first);
  auto second = m.receive(5, 300);
  REQUIRE(second.size() == 1);
  CHECK(second[0].value != first[0].value);
  m.credit(4);
  const auto more = m.receive(10, 300);
  CHECK(more.size() == 4);
}

TEST_CASE("a member that leaves hands its leases to the others at once") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g4", 2));
  publish_n(admin, "g4", 2, 10);
  std::optional<member> quitter;
  quitter.emplace(b, "g4", "pool", 10);
  const auto held = quitter->receive(10, 500);
  REQUIRE(held.size() == 10);
  member stayer(b, "g4", "pool", 10);
  CHECK(stayer.receive(1, 200).empty());  // everything is leased to the quitter
  const auto t0 = steady::now();
  quitter.reset();  // closes its socket; ack_wait (30 s) is not waited for
  const auto got = stayer.receive(10, 3000);
  CHECK(got.size() == 10);
  CHECK(steady::now() - t0 < std::chrono::seconds(2));
  for (const auto& d : got) CHECK(d.deliveries == 2);
}

TEST_CASE("NACK with a delay redelivers after the delay, not before; an unacked lease expires after ack_wait") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g5", 1));
  publish_n(admin, "g5", 1, 2);
  member m(b, "g5", "w", 1, /*ack_wait_ms=*/400);
  auto d = m.receive(1, 500);
  REQUIRE(d.size() == 1);
  const auto t0 = steady::now();
  m.nack(0, d[0].offset, 500);
  // The other record comes first (the NACKed one is not due yet).
  auto other = m.receive(1, 300);
  REQUIRE(other.size() == 1);
  CHECK(other[0].offset != d[0].offset);
  m.ack_all(other);
  auto again = m.receive(1, 2000);
  REQUIRE(again.size() == 1);
  CHECK(again[0].offset == d[0].offset);
  CHECK(again[0].deliveries == 2);
  CHECK(steady::now() - t0 >= std::chrono::milliseconds(480));
  // Not acked: after ack_wait it is delivered a third time.
  auto third = m.receive(1, 2000);
  REQUIRE(third.size() == 1);
  CHECK(third[0].offset == d[0].offset);
  CHECK(third[0].deliveries == 3);
}

TEST_CASE("a poison record goes to the dead-letter topic after max_deliver; the rest flow") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g6", 1));
  publish_n(admin, "g6", 1, 50);
  member m(b, "g6", "w", 10, 0, /*max_deliver=*/3);
  std::set<std::string> acked;
  int poison_deliveries = 0;
  for (int round = 0; round < 100 && acked.size() < 49; ++round) {
    for (const auto& d : m.receive(10, 100)) {
      if (d.value == "m7") {
        ++poison_deliveries;
        m.nack(d.partition, d.offset, 0);
      } else {
        acked.insert(d.value);
        m.ack(d.partition, d.offset, d.offset);
      }
    }
  }
  CHECK(acked.size() == 49);
  CHECK(poison_deliveries == 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto f = admin.fetch("g6.w.dlq", 0, 0);
  REQUIRE(f.has_value());
  REQUIRE(f->records.size() == 1);
  CHECK(std::string(as_string(f->records[0].value)) == "m7");
  const auto h = headers_of(f->records[0]);
  CHECK(h.at("mcp.dlq.topic") == "g6");
  CHECK(h.at("mcp.dlq.offset") == "7");
  CHECK(h.at("mcp.dlq.deliveries") == "3");
  CHECK(h.at("mcp.dlq.reason") == "nacked");
}

TEST_CASE("a NACK with the dead-letter flag sends the record to the dead-letter topic at once") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g6r", 1));
  publish_n(admin, "g6r", 1, 20);
  member m(b, "g6r", "w", 20, 0, /*max_deliver=*/5);
  std::set<std::string> acked;
  int rejected_deliveries = 0;
  for (int round = 0; round < 50 && acked.size() < 19; ++round) {
    for (const auto& d : m.receive(20, 100)) {
      if (d.value == "m3") {
        ++rejected_deliveries;
        m.nack(d.partition, d.offset, 0, codec::nack_flag_dead_letter);
      } else {
        acked.insert(d.value);
        m.ack(d.partition, d.offset, d.offset);
      }
    }
  }
  CHECK(acked.size() == 19);
  CHECK(m.receive(1, 300).empty());  // not delivered again
  CHECK(rejected_deliveries == 1);
  const auto f = admin.fetch("g6r.w.dlq", 0, 0);
  REQUIRE(f.has_value());
  REQUIRE(f->records.size() == 1);
  CHECK(std::string(as_string(f->records[0].value)) == "m3");
  const auto h = headers_of(f->records[0]);
  CHECK(h.at("mcp.dlq.deliveries") == "1");
  CHECK(h.at("mcp.dlq.reason") == "rejected");
  // Dead-lettered counts as done: the group's position passes it.
  std::uint64_t committed = 0, dead = 0;
  for (int i = 0; i < 50 && committed != 20; ++i) {
    auto g = admin.groups("w");
    REQUIRE(g.has_value());
    for (const auto& gi : g->groups) {
      if (gi->topic != "g6r") continue;
      for (const auto& p : gi->partitions) {
        committed = p->committed;
        dead = p->dead_lettered;
      }
    }
    if (committed != 20) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(committed == 20);
  CHECK(dead == 1);
}

TEST_CASE("a record dead-lettered while its pages are not in the page cache reaches the dead-letter topic intact") {
  // The shard reads it nowait; a miss is read through the ring and the dead-lettering retried.
  broker_process b({.shards = 1, .durability = "none"});
  auto admin = b.connect();
  REQUIRE(admin.create_topic("gdc", 1));
  publish_n(admin, "gdc", 1, 20000, std::string(150, 'c'));  // ~4 MB
  member m(b, "gdc", "w", 100, 0, /*max_deliver=*/5);
  auto first = m.receive(100, 1000);
  REQUIRE(!first.empty());
  if (mcp::test::evict_segments(b.data_dir() / "topics" / "gdc") == 0) {
    MESSAGE("the page cache kept the segment (tmpfs?): the dead-lettering below reads warm pages");
  }
  const auto doomed = first.back();
  m.nack(doomed.partition, doomed.offset, 0, codec::nack_flag_dead_letter);
  first.pop_back();
  m.ack_all(first);
  std::optional<client::fetched> f;
  for (int i = 0; i < 100; ++i) {
    auto r = admin.fetch("gdc.w.dlq", 0, 0);  // UNKNOWN_TOPIC until the broker has created it
    if (r && !r->records.empty()) {
      f = std::move(*r);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(f.has_value());
  REQUIRE(f->records.size() == 1);
  CHECK(std::string(as_string(f->records[0].value)) == std::string(150, 'c') + std::to_string(doomed.offset));
  const auto h = headers_of(f->records[0]);
  CHECK(h.at("mcp.dlq.offset") == std::to_string(doomed.offset));
  CHECK(h.at("mcp.dlq.reason") == "rejected");
}

TEST_CASE("two groups on one topic each get every record") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g7", 2));
  publish_n(admin, "g7", 2, 300);
  member x(b, "g7", "x", 1000);
  member y(b, "g7", "y", 1000);
  CHECK(x.receive(300, 3000).size() == 300);
  CHECK(y.receive(300, 3000).size() == 300);
}

TEST_CASE("after a restart the group resumes at its committed position") {
  broker_process b;
  {
    auto admin = b.connect();
    REQUIRE(admin.create_topic("g8", 1));
    publish_n(admin, "g8", 1, 100);
    member m(b, "g8", "keep", 60);
    const auto ds = m.receive(60, 2000);
    REQUIRE(ds.size() == 60);
    m.ack(0, 0, 39);  // 40..59 stay leased and unacked
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  REQUIRE(b.stop() == 0);
  b.start();
  member m(b, "g8", "keep", 1000);
  const auto ds = m.receive(100, 2000);
  REQUIRE(ds.size() == 60);
  CHECK(ds.front().offset == 40);
  std::set<std::uint64_t> offsets;
  for (const auto& d : ds) offsets.insert(d.offset);
  CHECK(*offsets.begin() == 40);
  CHECK(*offsets.rbegin() == 99);
}

TEST_CASE("GROUPS reports members, leases, positions and lag gathered from both shards") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g9", 4));
  publish_n(admin, "g9", 4, 40);  // 10 records per partition
  member m(b, "g9", "watch", 8, 60000, 3, b.shard_port(0));
  const auto ds = m.receive(8, 2000);
  REQUIRE(ds.size() == 8);
  // Ack the first two of one partition's deliveries, so that one partition's committed position moves.
  std::map<std::uint32_t, std::vector<std::uint64_t>> by_part;
  for (const auto& d : ds) by_part[d.partition].push_back(d.offset);
  const auto& [acked_part, offsets] = *by_part.begin();
  REQUIRE(offsets.front() == 0);
  m.ack(acked_part, offsets.front(), offsets.front());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  auto info = admin.groups("watch");
  REQUIRE(info.has_value());
  REQUIRE(info->groups.size() == 1);
  const auto& g = *info->groups[0];
  CHECK(g.name == "watch");
  CHECK(g.topic == "g9");
  REQUIRE(g.members.size() == 1);
  CHECK(g.members[0]->credit == 8);
  // The ack freed room for one more lease: the member holds its full credit again.
  CHECK(g.members[0]->in_flight == 8);
  CHECK(g.members[0]->shard == 0);
  // Every partition reports, whichever shard owns it, in partition order.
  REQUIRE(g.partitions.size() == 4);
  std::uint64_t leased = 0, lag = 0;
  for (std::uint32_t p = 0; p < 4; ++p) {
    const auto& pi = *g.partitions[p];
    CHECK(pi.partition == p);
    CHECK(pi.high_watermark == 10);
    if (pi.active) {
      CHECK(pi.ack_wait_ms == 60000);
      CHECK(pi.max_deliver == 3);
    }
    CHECK(pi.lag_records == pi.high_watermark - pi.committed);
    CHECK(pi.committed == (p == acked_part ? 1u : 0u));
    if (pi.lag_records > 0) CHECK(pi.lag_ms >= 0);
    leased += pi.leased;
    lag += pi.lag_records;
  }
  CHECK(leased == 8);
  CHECK(lag == 39);

  // Every group: a second group on the same topic shows up; an unknown name gives none.
  member other(b, "g9", "second", 1);
  REQUIRE(other.receive(1, 2000).size() == 1);
  auto all = admin.groups();
  REQUIRE(all.has_value());
  CHECK(all->groups.size() == 2);
  auto none = admin.groups("nobody");
  REQUIRE(none.has_value());
  CHECK(none->groups.empty());

  // A member that leaves disappears from the list and its leases are released.
  {
    member gone(b, "g9", "brief", 5);
    REQUIRE(gone.receive(5, 2000).size() == 5);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto brief = admin.groups("brief");
  REQUIRE(brief.has_value());
  REQUIRE(brief->groups.size() == 1);
  CHECK(brief->groups[0]->members.empty());
  std::uint64_t brief_leased = 0;
  for (const auto& pi : brief->groups[0]->partitions) brief_leased += pi->leased;
  CHECK(brief_leased == 0);
}

TEST_CASE("GROUPS lag in time: -1 while the record's pages are read from disk, the age once they are in") {
  broker_process b({.shards = 1, .durability = "none"});
  auto admin = b.connect();
  REQUIRE(admin.create_topic("glag", 1));
  publish_n(admin, "glag", 1, 20000, std::string(150, 'l'));  // ~4 MB
  member m(b, "glag", "slow", 20000);
  REQUIRE(m.receive(20000, 10000).size() == 20000);
  // The committed position moves ~3 MB into the segment: far from the log start,
  // whose record the same request also reads (and whose readahead must not bring
  // this one in).
  m.ack(0, 0, 14999);
  struct lag {
    std::uint64_t committed;
    std::int64_t ms;
  };
  const auto lag_now = [&] {
    auto info = admin.groups("slow");
    REQUIRE(info.has_value());
    REQUIRE(info->groups.size() == 1);
    REQUIRE(info->groups[0]->partitions.size() == 1);
    const auto& pi = *info->groups[0]->partitions[0];
    return lag{pi.committed, pi.lag_ms};
  };
  lag l = lag_now();
  for (int i = 0; i < 100 && l.committed != 15000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    l = lag_now();
  }
  REQUIRE(l.committed == 15000);
  CHECK(l.ms >= 0);
  if (mcp::test::evict_segments(b.data_dir() / "topics" / "glag") == 0) {
    MESSAGE("the page cache kept the segment (tmpfs?): the cold half is not exercised");
    return;
  }
  // The shard does not wait for the disk. (A readahead started by a nowait miss
  // elsewhere could bring the page in first: then evict and ask again.)
  bool unknown = lag_now().ms == -1;
  for (int i = 0; i < 10 && !unknown; ++i) {
    mcp::test::evict_segments(b.data_dir() / "topics" / "glag");
    unknown = lag_now().ms == -1;
  }
  CHECK(unknown);
  std::int64_t later = -1;
  for (int i = 0; i < 100 && later < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    later = lag_now().ms;
  }
  CHECK(later >= 0);
}

TEST_CASE("a member that goes silent loses its leases at the idle timeout, long before ack_wait") {
  broker_process b({.extra = {"--idle-timeout-ms", "400"}});
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g10", 2));
  publish_n(admin, "g10", 2, 10);
  member silent(b, "g10", "pool", 10);  // ack_wait: the default 30 s
  REQUIRE(silent.receive(10, 1000).size() == 10);
  member stayer(b, "g10", "pool", 10);
  const auto t0 = steady::now();
  std::vector<delivered> got;
  while (got.size() < 10 && steady::now() - t0 < std::chrono::seconds(5)) {
    stayer.ping();
    const auto ds = stayer.receive(10 - got.size(), 100);
    got.insert(got.end(), ds.begin(), ds.end());
  }
  CHECK(got.size() == 10);
  CHECK(steady::now() - t0 < std::chrono::seconds(3));
  for (const auto& d : got) CHECK(d.deliveries == 2);
}

TEST_CASE("members joining and leaving do not pause the others; a new member gets work at once") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("g11", 2));
  constexpr int records = 80000;
  publish_n(admin, "g11", 2, records);
  member steady_member(b, "g11", "pool", 20);
  std::atomic<bool> done{false};
  std::atomic<long long> worst_first_lease_us{0};
  std::atomic<int> joins{0};
  std::thread churn([&] {
    while (!done.load() && joins.load() < 10) {
      const auto t = steady::now();
      member visitor(b, "g11", "pool", 5);
      const auto first = visitor.receive(1, 2000);
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t).count();
      if (first.empty()) worst_first_lease_us = 1'000'000'000;
      worst_first_lease_us = std::max<long long>(worst_first_lease_us.load(), us);
      ++joins;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      // Leaves holding leases: they go back to the pool.
    }
  });
  long long worst_gap_us = 0;
  auto last = steady::now();
  const auto t_end = last + std::chrono::seconds(3);
  // A fast machine drains 20,000 records in a quarter of a second: stop the steady
  // member while a quarter is left, so a joining member always has work to be given.
  std::size_t consumed = 0;
  while (steady::now() < t_end && joins.load() < 10 && consumed < records * 3 / 4) {
    const auto ds = steady_member.receive(20, 50);
    consumed += ds.size();
    const auto now = steady::now();
    if (!ds.empty()) {
      worst_gap_us = std::max<long long>(worst_gap_us, std::chrono::duration_cast<std::chrono::microseconds>(now - last).count());
      last = now;
    }
    steady_member.ack_all(ds);
  }
  done = true;
  churn.join();
  MESSAGE("joins/leaves: " << joins.load() << "; longest wait of the steady member between deliveries: " << worst_gap_us
                           << " us; slowest first lease of a joining member (connect + SUBSCRIBE + lease): "
                           << worst_first_lease_us.load() << " us");
  CHECK(joins.load() >= 5);
  // No rebalance: generous bounds that only a stop-the-world pause would break on a loaded
  // machine (the figures above are the measurement; the target is 10 ms).
  CHECK(worst_gap_us < 500'000);
  CHECK(worst_first_lease_us.load() < 1'000'000);
}
