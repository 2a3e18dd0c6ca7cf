// A partition log whose write fails (here: the broker's file-size limit, as a
// full disk would) refuses its appends with STORAGE_ERROR and says why, in the
// ERROR and in METADATA; the broker survives it, keeps serving every other
// partition and the records the failed one stored, stops cleanly, and a restart
// recovers the log with every acknowledged record.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/broker_fixture.h"
#include "tests/support/bytes.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::as_string;
using mcp::test::broker_process;

namespace {

constexpr std::uint64_t file_limit = 256 << 10;
constexpr std::uint64_t producer = 0x5eed;

// Records of an idempotent producer when `first_seq` is given.
std::vector<codec::record_input> records_of(const std::vector<std::string>& values, std::int64_t first_seq = -1) {
  std::vector<codec::record_input> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    codec::record_input in;
    in.value = as_bytes(values[i]);
    if (first_seq >= 0) {
      in.producer_id = producer;
      in.sequence = static_cast<std::uint32_t>(first_seq + static_cast<std::int64_t>(i));
    }
    out.push_back(in);
  }
  return out;
}

// `n` values of 1000 bytes, numbered from `from`.
std::vector<std::string> batch(int from, int n) {
  std::vector<std::string> out;
  for (int i = from; i < from + n; ++i) {
    std::string v = "value-" + std::to_string(i);
    v.resize(1000, '#');
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::string> fetch_all(client::connection& c, const std::string& topic) {
  std::vector<std::string> out;
  for (std::uint64_t next = 0;;) {
    auto f = c.fetch(topic, 0, next, 1 << 20);
    REQUIRE(f.has_value());
    if (f->records.empty()) return out;
    for (const auto& r : f->records) out.emplace_back(as_string(r.value));
    next = f->records.back().offset + 1;
  }
}

void create(client::connection& c, const std::string& name, std::int64_t segment_bytes) {
  fb::TopicConfigT cfg;
  cfg.partitions = 1;
  cfg.segment_bytes = segment_bytes;
  REQUIRE(c.create_topic(name, cfg).has_value());
}

// The failure METADATA reports for partition 0 of `topic`, asked of its owner's port.
std::string failure_of(const broker_process& b, const std::string& topic) {
  auto main = b.connect();
  auto m = main.metadata({topic});
  REQUIRE(m.has_value());
  REQUIRE(m->topics.size() == 1);
  auto owner = b.connect(m->topics[0]->partitions.at(0)->port);
  auto om = owner.metadata({topic});
  REQUIRE(om.has_value());
  return om->topics.at(0)->partitions.at(0)->failure;
}

}  // namespace

TEST_CASE("a log whose write fails refuses appends with STORAGE_ERROR and says why; a restart recovers every acked record") {
  broker_process b({.shards = 2, .durability = "sync", .max_file_bytes = file_limit});
  auto c = b.connect();
  create(c, "big", 1 << 20);      // its first segment runs into the limit
  create(c, "small", 64 << 10);   // rolls long before it

  // From an idempotent producer: the batch the failure cuts short is resent after
  // the restart, and must then be stored whole, not taken for a duplicate of the
  // part of it that reached the file.
  std::vector<std::string> acked;
  std::vector<std::string> refused;
  client::client_error first_error;
  for (int i = 0; i < 100; ++i) {  // 20 KB a batch: the limit is met by the 13th
    const auto values = batch(static_cast<int>(acked.size()), 20);
    auto a = c.publish("big", 0, records_of(values, static_cast<std::int64_t>(acked.size())));
    if (!a) {
      first_error = a.error();
      refused = values;
      break;
    }
    CHECK(a->first_offset == acked.size());
    acked.insert(acked.end(), values.begin(), values.end());
  }
  REQUIRE(first_error.code == codec::error_code::storage_error);
  CHECK(first_error.message.find("File too large") != std::string::npos);
  CHECK(acked.size() >= 200);  // 10 batches of 20 KB fit under 256 KiB

  // The log refuses what follows, small or not, until the broker restarts.
  auto again = c.publish("big", 0, records_of({"tiny"}));
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code == codec::error_code::storage_error);
  CHECK(failure_of(b, "big").find("File too large") != std::string::npos);

  // Everything else goes on: another topic takes appends (its segments stay
  // under the limit), and the failed one serves what it stored.
  for (int i = 0; i < 20; ++i) REQUIRE(c.publish("small", 0, records_of(batch(i * 20, 20))).has_value());
  CHECK(fetch_all(c, "small").size() == 400);
  CHECK(failure_of(b, "small").empty());
  CHECK(fetch_all(c, "big") == acked);

  CHECK(b.stop() == 0);  // a failed log does not stop a clean shutdown
  b.limit_file_size(0);
  b.start();
  auto r = b.connect();
  // The records of the refused batch that reached the file are gone with it: a
  // batch is stored whole or not at all.
  CHECK(fetch_all(r, "big") == acked);
  CHECK(failure_of(b, "big").empty());
  auto resent = r.publish("big", 0, records_of(refused, static_cast<std::int64_t>(acked.size())));
  REQUIRE(resent.has_value());
  CHECK(resent->first_offset == acked.size());
  CHECK(resent->count == refused.size());
  CHECK((resent->flags & codec::ack_flag_duplicate) == 0);
  auto all = acked;
  all.insert(all.end(), refused.begin(), refused.end());
  CHECK(fetch_all(r, "big") == all);
  CHECK(fetch_all(r, "small").size() == 400);
}
