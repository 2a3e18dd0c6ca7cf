// Idempotent publishing against the real broker: a batch resent with the same
// producer id and sequences is answered with its original offsets and stored
// once, also across a broker crash; gaps and mixed batches are refused.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "broker/shard_router.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/bytes.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::broker_process;

namespace {

struct idem_batch {
  std::vector<std::string> values;
  std::vector<codec::record_input> records;
};

idem_batch make(std::uint64_t producer, std::uint32_t first_seq, std::uint32_t n, const std::string& tag) {
  idem_batch b;
  for (std::uint32_t i = 0; i < n; ++i) b.values.push_back(tag + std::to_string(first_seq + i));
  for (std::uint32_t i = 0; i < n; ++i) {
    codec::record_input in;
    in.producer_id = producer;
    in.sequence = first_seq + i;
    in.value = as_bytes(b.values[i]);
    b.records.push_back(in);
  }
  return b;
}

std::vector<std::string> all_values(client::connection& c, const std::string& topic, std::uint32_t partition) {
  std::vector<std::string> out;
  std::uint64_t next = 0;
  for (;;) {
    auto f = c.fetch(topic, partition, next, 1 << 20, 0);
    REQUIRE(f.has_value());
    if (f->records.empty()) break;
    for (const auto& r : f->records) out.emplace_back(as_string(r.value));
    next = f->records.back().offset + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("a resent idempotent batch is acked as a duplicate with its original offsets, on both paths") {
  broker_process b;
  auto admin = b.connect();
  REQUIRE(admin.create_topic("idem", 4));
  for (unsigned via_shard = 0; via_shard < 2; ++via_shard) {
    // Partition owned by shard 1, reached directly (its shard port) and forwarded (shard 0's port).
    std::uint32_t part = 0;
    while (broker::owner_shard("idem", part, 2) != 1) ++part;
    auto c = b.connect(b.shard_port(via_shard));
    const std::uint64_t producer = 0x1000 + via_shard;
    auto first = make(producer, 0, 5, "a");
    auto second = make(producer, 5, 3, "b");
    const auto a1 = c.publish("idem", part, first.records);
    REQUIRE(a1.has_value());
    CHECK((a1->flags & codec::ack_flag_duplicate) == 0);
    const auto a2 = c.publish("idem", part, second.records);
    REQUIRE(a2.has_value());
    // The same bytes again: nothing stored, original offsets, duplicate flag.
    const auto r1 = c.publish("idem", part, first.records);
    REQUIRE(r1.has_value());
    CHECK((r1->flags & codec::ack_flag_duplicate) != 0);
    CHECK(r1->first_offset == a1->first_offset);
    CHECK(r1->count == 5);
    const auto r2 = c.publish("idem", part, second.records);
    REQUIRE(r2.has_value());
    CHECK((r2->flags & codec::ack_flag_duplicate) != 0);
    CHECK(r2->first_offset == a2->first_offset);
  }
  std::uint32_t part = 0;
  while (broker::owner_shard("idem", part, 2) != 1) ++part;
  const auto values = all_values(admin, "idem", part);
  CHECK(values == std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "b5", "b6", "b7",
                                           "a0", "a1", "a2", "a3", "a4", "b5", "b6", "b7"});
}

TEST_CASE("pipelined resends of batches still in flight are stored once") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("pipe", 1));
  std::vector<idem_batch> batches;
  for (std::uint32_t i = 0; i < 20; ++i) batches.push_back(make(77, i * 4, 4, "p"));
  std::vector<std::uint32_t> corrs;
  // Every batch twice, back to back, before reading any ACK.
  for (const auto& bt : batches) {
    for (int k = 0; k < 2; ++k) {
      auto corr = c.send_publish("pipe", 0, bt.records);
      REQUIRE(corr.has_value());
      corrs.push_back(*corr);
    }
  }
  for (std::size_t i = 0; i < corrs.size(); ++i) {
    const auto a = c.read_ack(corrs[i]);
    REQUIRE(a.has_value());
    CHECK(a->first_offset == (i / 2) * 4);
    CHECK(((a->flags & codec::ack_flag_duplicate) != 0) == (i % 2 == 1));
  }
  CHECK(all_values(c, "pipe", 0).size() == 80);
}

TEST_CASE("a gap in sequences is OUT_OF_ORDER_SEQUENCE; a batch mixing producers is malformed") {
  broker_process b;
  auto c = b.connect();
  REQUIRE(c.create_topic("gap", 1));
  REQUIRE(c.publish("gap", 0, make(5, 0, 4, "g").records));
  const auto gap = c.publish("gap", 0, make(5, 10, 4, "g").records);
  REQUIRE_FALSE(gap.has_value());
  CHECK(gap.error().code == codec::error_code::out_of_order_sequence);
  auto mixed = make(5, 4, 2, "m");
  mixed.records[1].producer_id = 6;
  const auto m = c.publish("gap", 0, mixed.records);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().code == codec::error_code::malformed_body);
  auto holes = make(5, 4, 3, "h");
  holes.records[2].sequence = 9;
  const auto h = c.publish("gap", 0, holes.records);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().code == codec::error_code::malformed_body);
  // The connection and the producer go on where they were.
  const auto ok = c.publish("gap", 0, make(5, 4, 2, "n").records);
  REQUIRE(ok.has_value());
  CHECK(ok->first_offset == 4);
  CHECK(all_values(c, "gap", 0).size() == 6);
}

TEST_CASE("after kill -9 and a restart, a resent batch is still recognised") {
  broker_process b;
  std::uint64_t first_offset = 0;
  auto batch = make(0xFEED, 0, 10, "k");
  auto next = make(0xFEED, 10, 10, "k");
  {
    auto c = b.connect();
    REQUIRE(c.create_topic("crash", 1));
    REQUIRE(c.publish("crash", 0, make(0, 0, 3, "plain").records));
    const auto a = c.publish("crash", 0, batch.records);
    REQUIRE(a.has_value());
    first_offset = a->first_offset;
    REQUIRE(c.publish("crash", 0, next.records));
  }
  b.kill_now();
  b.start();
  auto c = b.connect();
  const auto again = c.publish("crash", 0, batch.records);
  REQUIRE(again.has_value());
  CHECK((again->flags & codec::ack_flag_duplicate) != 0);
  CHECK(again->first_offset == first_offset);
  const auto more = c.publish("crash", 0, make(0xFEED, 20, 5, "k").records);
  REQUIRE(more.has_value());
  CHECK(more->first_offset == 23);
  CHECK(all_values(c, "crash", 0).size() == 28);
}
