#include "broker/io/uring_file_io.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>

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
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
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
    // Group commit: the writes of one dispatch share one round (file_io::defer), so
    // the 50 writes, queued in one turn, take a handful of syncs.
    CHECK((*log)->syncs_issued() < 50);
    CHECK((*log)->segment_count() > 1);
  }
  storage::sync_file_io sio;
  auto again = storage::partition_log::open(dir.path(), o, sio, 2);
  REQUIRE(again.has_value());
  CHECK((*again)->high_watermark() == 500);
  CHECK((*again)->verify().has_value());
}

namespace {

struct io_result final : storage::io_callback {
  std::vector<int> results;
  void io_done(int res) noexcept override { results.push_back(res); }
};

std::string read_all(int fd) {
  std::string s(4096, '\0');
  const auto n = ::pread(fd, s.data(), s.size(), 0);
  s.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return s;
}

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

TEST_CASE("defer runs at the end of the ring's dispatch, after completions that came with it, and counts as in flight") {
  mcp::test::temp_dir dir;
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
  const std::string path = (dir.path() / "f").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  std::vector<std::string> order;
  struct named final : storage::io_callback {
    named(std::vector<std::string>& o, std::string n, storage::file_io* f = nullptr, storage::io_callback* then = nullptr)
        : order(o), name(std::move(n)), io(f), defer_then(then) {}
    std::vector<std::string>& order;
    std::string name;
    storage::file_io* io;
    storage::io_callback* defer_then;  // deferred from this completion
    void io_done(int) noexcept override {
      order.push_back(name);
      if (defer_then != nullptr) io->defer(defer_then);
    }
  };
  named deferred(order, "deferred");
  named w1(order, "write1", &io, &deferred);
  named w2(order, "write2");
  // Not contiguous, so two SQEs: the first completion defers, the second still comes first.
  io.write_at(fd, 0, bytes_of("aa"), &w1);
  io.write_at(fd, 100, bytes_of("bb"), &w2);
  r.run_once(2, 10'000'000'000);  // one dispatch of both CQEs
  CHECK(order == std::vector<std::string>{"write1", "write2", "deferred"});
  // Held until the ring's next dispatch, which does not wait for anything else.
  io.defer(&deferred);
  CHECK(io.in_flight() == 1);
  r.run_once(1, 10'000'000'000);
  CHECK(io.in_flight() == 0);
  CHECK(order.back() == "deferred");
  ::close(fd);
}

TEST_CASE("contiguous writes queued in one turn join one WRITEV; each still gets its own completion") {
  mcp::test::temp_dir dir;
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
  const auto path = dir.path() / "f";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  const int other = ::open((dir.path() / "g").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(other >= 0);
  const std::string a = "aaaa", b = "bbbbbb", c = "cc", d = "dddd", x = "xyz";
  io_result ra, rb, rc, rd, rx;
  io.write_at(fd, 0, bytes_of(a), &ra);
  io.write_at(other, 0, bytes_of(x), &rx);  // another file between them does not stop the join
  io.write_at(fd, 4, bytes_of(b), &rb);
  io.write_at(fd, 10, bytes_of(c), &rc);
  io.write_at(fd, 20, bytes_of(d), &rd);  // not contiguous: its own write
  CHECK(io.writes_coalesced() == 2);
  CHECK(io.in_flight() == 3);
  while (io.in_flight() > 0) r.run_once(1, 10'000'000);
  CHECK(ra.results == std::vector<int>{4});
  CHECK(rb.results == std::vector<int>{6});
  CHECK(rc.results == std::vector<int>{2});
  CHECK(rd.results == std::vector<int>{4});
  CHECK(rx.results == std::vector<int>{3});
  const std::string got = read_all(fd);
  CHECK(got.substr(0, 12) == "aaaabbbbbbcc");
  CHECK(got.substr(20) == "dddd");
  CHECK(read_all(other) == "xyz");

  // Once submitted, an SQE is not changed: the next write takes its own.
  io_result re, rf;
  const std::string e = "ee", f = "ff";
  io.write_at(fd, 24, bytes_of(e), &re);
  r.submit();
  io.write_at(fd, 26, bytes_of(f), &rf);
  CHECK(io.writes_coalesced() == 2);
  while (io.in_flight() > 0) r.run_once(1, 10'000'000);
  CHECK(re.results == std::vector<int>{2});
  CHECK(rf.results == std::vector<int>{2});
  CHECK(read_all(fd).substr(20) == "ddddeeff");
  ::close(fd);
  ::close(other);
}

TEST_CASE("a failed coalesced write fails every part") {
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ::close(p[1]);
  const std::string a = "aa", b = "bb";
  io_result ra, rb;
  io.write_at(p[0], 0, bytes_of(a), &ra);  // the read end of a pipe: EBADF
  io.write_at(p[0], 2, bytes_of(b), &rb);
  CHECK(io.writes_coalesced() == 1);
  while (io.in_flight() > 0) r.run_once(1, 10'000'000);
  REQUIRE(ra.results.size() == 1);
  REQUIRE(rb.results.size() == 1);
  CHECK(ra.results[0] < 0);
  CHECK(rb.results[0] == ra.results[0]);
  ::close(p[0]);
}

TEST_CASE("remove unlinks through the ring, or at once where the kernel lacks UNLINKAT; a missing file is ENOENT") {
  const bool kernel_has_it = broker::io::probe_features().unlinkat;
  for (const bool unlink_op : {true, false}) {
    if (unlink_op && !kernel_has_it) continue;
    CAPTURE(unlink_op);
    mcp::test::temp_dir dir;
    broker::io::ring r({.entries = 64}, broker::io::probe_features());
    broker::io::uring_file_io io(r, unlink_op);
    const std::string there = (dir.path() / "there").string(), missing = (dir.path() / "missing").string();
    ::close(::open(there.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    io_result a, b;
    io.remove(there.c_str(), &a);
    io.remove(missing.c_str(), &b);
    // Through the ring nothing happens before the shard submits.
    CHECK(io.in_flight() == (unlink_op ? 2u : 0u));
    CHECK(std::filesystem::exists(there) == unlink_op);
    while (io.in_flight() > 0) r.run_once(1, 10'000'000);
    REQUIRE(a.results.size() == 1);
    REQUIRE(b.results.size() == 1);
    CHECK(a.results[0] == 0);
    CHECK(b.results[0] == -ENOENT);
    CHECK_FALSE(std::filesystem::exists(there));
  }
}

TEST_CASE("retention driven by the ring: segments leave the log at once, their files once the unlinks complete") {
  mcp::test::temp_dir dir;
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
  storage::log_options o;
  o.segment_bytes = 4096;
  o.index_interval = 1024;
  o.level.level = storage::durability::kind::none;
  o.retention_bytes = 10'000;
  auto log = storage::partition_log::open(dir.path(), o, io, 1);
  REQUIRE(log.has_value());
  acks a;
  std::vector<mcp::test::batch> batches;
  for (int i = 0; i < 40; ++i) batches.push_back(mcp::test::make_batch(4));
  for (auto& b : batches) {
    REQUIRE((*log)->append(b.bytes, b.count, 1, &a).has_value());
    while (!(*log)->idle() || io.in_flight() > 0) r.run_once(1, 10'000'000);
  }
  const auto files = [&] {  // of segments: not the recovery point
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      n += e.path().filename() == std::filesystem::path(storage::recovery_point_name) ? 0 : 1;
    }
    return n;
  };
  const std::size_t segments_before = (*log)->segment_count();
  // The seals went through the ring, and so did the recovery point's writes after them.
  const std::uint64_t active_base = (*log)->segment_at(segments_before - 1).base();
  CHECK((*log)->recovery_point() == active_base);
  CHECK(storage::read_recovery_point(dir.path()).value() == active_base);
  REQUIRE(files() == 3 * segments_before);
  const auto removed = (*log)->apply_retention(2);
  REQUIRE(removed.has_value());
  REQUIRE(*removed > 0);
  CHECK((*log)->segment_count() == segments_before - *removed);
  CHECK((*log)->locate(0, 100).error().code == storage::errc::out_of_range);
  if (io.in_flight() > 0) {
    // Unlinks queued on the ring: the files are still there and the log is not idle.
    CHECK((*log)->files_to_remove() == 3 * *removed);
    CHECK_FALSE((*log)->idle());
    CHECK(files() == 3 * segments_before);
  }
  while (!(*log)->idle() || io.in_flight() > 0) r.run_once(1, 10'000'000);
  CHECK((*log)->files_to_remove() == 0);
  CHECK(files() == 3 * (*log)->segment_count());
  CHECK((*log)->apply_retention(3).value() == 0);
}

TEST_CASE("start_writeback through the ring completes with 0 on a written range and with an error on a bad fd") {
  mcp::test::temp_dir dir;
  broker::io::ring r({.entries = 64}, broker::io::probe_features());
  broker::io::uring_file_io io(r, broker::io::probe_features().unlinkat);
  const std::string path = (dir.path() / "f").string();
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  const std::string data(64 << 10, 'x');
  io_result w, wb, bad;
  io.write_at(fd, 0, bytes_of(data), &w);
  while (io.in_flight() > 0) r.run_once(1, 10'000'000);
  io.start_writeback(fd, 0, data.size(), &wb);
  io.start_writeback(-1, 0, 4096, &bad);
  while (io.in_flight() > 0) r.run_once(1, 10'000'000);
  REQUIRE(wb.results.size() == 1);
  REQUIRE(bad.results.size() == 1);
  CHECK(wb.results[0] == 0);
  CHECK(bad.results[0] == -EBADF);
  ::close(fd);
}
