#include "broker/io/uring_file_io.h"

#include <doctest/doctest.h>

#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp;

namespace {

struct acks final : storage::append_callback {
  std::vector<std::uint64_t> firsts;
  bool all_ok = true;
  void append_done(std::uint64_t first, std::uint32_t, const storage::error* err) noexcept override {
    firsts.push_back(first);
    all_ok = all_ok && err == nullptr;
  }
};

}  // namespace

TEST_CASE("a partition log driven by the ring appends with sync and reads back after reopening") {
  mcp::test::temp_dir dir;
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r);
  storage::log_options o;
  o.segment_bytes = 64 << 10;
  o.level.level = storage::durability::kind::sync;
  {
    auto log = storage::partition_log::open(dir.path(), o, io, 1);
    REQUIRE(log.has_value());
    acks a;
    std::vector<mcp::test::batch> batches;
    for (int i = 0; i < 50; ++i) batches.push_back(mcp::test::make_batch(10));
    for (auto& b : batches) REQUIRE((*log)->append(b.bytes, b.count, 1, &a).has_value());
    for (int spins = 0; a.firsts.size() < 50 && spins < 10000; ++spins) r.run_once(1, 10'000'000);
    while (!(*log)->idle() || io.in_flight() > 0) r.run_once(1, 10'000'000);
    REQUIRE(a.firsts.size() == 50);
    CHECK(a.all_ok);
    for (std::size_t i = 0; i < a.firsts.size(); ++i) CHECK(a.firsts[i] == i * 10);
    CHECK((*log)->syncs_issued() < 50);  // group commit shared syncs between batches in flight
    CHECK((*log)->segment_count() > 1);
  }
  storage::sync_file_io sio;
  auto again = storage::partition_log::open(dir.path(), o, sio, 2);
  REQUIRE(again.has_value());
  CHECK((*again)->high_watermark() == 500);
  CHECK((*again)->verify().has_value());
}
