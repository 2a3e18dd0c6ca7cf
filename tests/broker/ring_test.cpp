#include "broker/io/ring.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "broker/io/buffer_pool.h"

using namespace mcp::broker::io;

namespace {

struct recorder final : io_completion {
  std::vector<int> results;
  std::vector<std::uint32_t> flags;
  void complete(int res, std::uint32_t f) noexcept override {
    results.push_back(res);
    flags.push_back(f);
  }
};

struct socket_pair {
  int fd[2] = {-1, -1};
  socket_pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0); }
  ~socket_pair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

}  // namespace

TEST_CASE("the feature probe names what a missing feature would be") {
  const auto f = probe_features();
  MESSAGE("kernel io_uring features: " << f.describe());
  ring_features none;
  CHECK(none.missing_required().size() == 3);
  ring_features all = none;
  all.multishot_accept = all.multishot_recv = all.provided_buffer_ring = true;
  CHECK(all.missing_required().empty());
}

TEST_CASE("a NOP completes through its completion object") {
  const auto f = probe_features();
  ring r({.entries = 8}, f);
  recorder rec;
  io_uring_sqe* sqe = r.get_sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, make_user_data(&rec));
  CHECK(r.run_once(1, 1'000'000'000) == 1);
  REQUIRE(rec.results.size() == 1);
  CHECK(rec.results[0] == 0);
}

TEST_CASE("after_batch runs once the batch's CQEs are handled, and run_once does not wait while one is queued") {
  ring r({.entries = 8}, probe_features());
  std::vector<std::string> order;
  struct named final : io_completion {
    named(std::vector<std::string>& o, std::string n) : order(o), name(std::move(n)) {}
    std::vector<std::string>& order;
    std::string name;
    void complete(int, std::uint32_t) noexcept override { order.push_back(name); }
  };
  named nop1(order, "nop1"), nop2(order, "nop2"), late(order, "after");
  // Queued from within the batch's first completion: it still runs after the second.
  struct queuer final : io_completion {
    queuer(ring& rr, io_completion& t, std::vector<std::string>& o) : r(rr), then(t), order(o) {}
    ring& r;
    io_completion& then;
    std::vector<std::string>& order;
    void complete(int, std::uint32_t) noexcept override {
      order.push_back("nop0");
      r.after_batch(&then);
    }
  } first(r, late, order);
  for (io_completion* c : std::initializer_list<io_completion*>{&first, &nop1, &nop2}) {
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, make_user_data(c));
  }
  CHECK(r.run_once(3, 1'000'000'000) == 4);
  CHECK(order == std::vector<std::string>{"nop0", "nop1", "nop2", "after"});
  // Nothing in flight: with one queued, run_once returns at once (a 10 s wait otherwise).
  order.clear();
  r.after_batch(&late);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(r.run_once(1, 10'000'000'000) == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(order == std::vector<std::string>{"after"});
}

TEST_CASE("get_sqe submits when the submission queue is full") {
  ring r({.entries = 4}, probe_features());
  recorder rec;
  for (int i = 0; i < 10; ++i) {
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, make_user_data(&rec));
  }
  for (int spins = 0; rec.results.size() < 10 && spins < 100; ++spins) r.run_once(1, 100'000'000);
  CHECK(rec.results.size() == 10);
}

TEST_CASE("multishot recv fills pool buffers; a buffer returns to the ring only when released") {
  const auto f = probe_features();
  if (!f.multishot_recv || !f.provided_buffer_ring) {
    MESSAGE("skipped: kernel lacks multishot recv / buffer rings");
    return;
  }
  ring r({.entries = 16}, f);
  buffer_pool pool(r, 1, 4, 64);
  CHECK(pool.available() == 4);
  socket_pair sp;
  recorder rec;
  io_uring_sqe* sqe = r.get_sqe();
  io_uring_prep_recv_multishot(sqe, sp.fd[0], nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = pool.group_id();
  io_uring_sqe_set_data64(sqe, make_user_data(&rec));
  r.submit();

  const std::string msg = "hello, pool";
  REQUIRE(::write(sp.fd[1], msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
  for (int spins = 0; rec.results.empty() && spins < 100; ++spins) r.run_once(1, 100'000'000);
  REQUIRE(rec.results.size() == 1);
  CHECK(rec.results[0] == static_cast<int>(msg.size()));
  CHECK((rec.flags[0] & IORING_CQE_F_BUFFER) != 0);
  CHECK((rec.flags[0] & IORING_CQE_F_MORE) != 0);
  const auto id = static_cast<std::uint16_t>(rec.flags[0] >> IORING_CQE_BUFFER_SHIFT);
  {
    pooled_buffer b = pool.take(id, static_cast<std::size_t>(rec.results[0]));
    CHECK(pool.available() == 3);
    CHECK(std::string(reinterpret_cast<const char*>(b.bytes().data()), b.bytes().size()) == msg);
    pooled_buffer moved = std::move(b);
    CHECK_FALSE(static_cast<bool>(b));  // NOLINT(bugprone-use-after-move): moved-from is empty
    CHECK(pool.available() == 3);
  }
  CHECK(pool.available() == 4);

  // Cancel the multishot recv so the socket can close (an armed one keeps it open).
  recorder cancel;
  sqe = r.get_sqe();
  io_uring_prep_cancel_fd(sqe, sp.fd[0], 0);
  io_uring_sqe_set_data64(sqe, make_user_data(&cancel));
  for (int spins = 0; (cancel.results.empty() || rec.results.size() < 2) && spins < 100; ++spins) {
    r.run_once(1, 100'000'000);
  }
  CHECK(cancel.results.size() == 1);
  REQUIRE(rec.results.size() == 2);
  CHECK(rec.results[1] == -ECANCELED);
}
