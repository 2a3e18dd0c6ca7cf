// A real crash: a child process appends with `sync` and reports every completed
// (acknowledged) offset on a pipe; it is SIGKILLed at a random moment; after
// reopening, every reported offset must be present and intact.

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "codec/frame_decoder.h"
#include "codec/record.h"
#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t per_batch = 16;

std::string value_of(std::uint64_t offset) {
  std::string v = "record-" + std::to_string(offset);
  v.resize(100, '.');
  return v;
}

log_options crash_opts() {
  log_options o;
  o.segment_bytes = 256 << 10;  // several rolls during a run
  o.index_interval = 4096;
  o.level.level = durability::kind::sync;
  return o;
}

struct reporter final : append_callback {
  int fd;
  explicit reporter(int f) : fd(f) {}
  void append_done(std::uint64_t first, std::uint32_t count, const error* err) noexcept override {
    if (err != nullptr) _exit(3);
    const std::uint64_t last = first + count - 1;
    if (::write(fd, &last, sizeof last) != sizeof last) _exit(4);
  }
};

[[noreturn]] void child(const fs::path& dir, int fd) {
  sync_file_io io;
  auto log = partition_log::open(dir, crash_opts(), io, 1);
  if (!log) _exit(2);
  reporter rep(fd);
  for (std::uint64_t next = (*log)->log_end();; next += per_batch) {
    mcp::test::batch b;
    b.count = per_batch;
    for (std::uint32_t i = 0; i < per_batch; ++i) {
      const std::string v = value_of(next + i);
      mcp::codec::record_input in;
      in.value = mcp::test::as_bytes(v);
      const std::size_t at = b.bytes.size();
      b.bytes.resize(at + mcp::codec::record_frame_size(in));
      mcp::codec::encode_record(std::span(b.bytes).subspan(at), in);
    }
    if (!(*log)->append(b.bytes, per_batch, 1, &rep)) _exit(5);
  }
}

}  // namespace

TEST_CASE("SIGKILL during sync appends never loses an acknowledged record") {
  mcp::test::temp_dir dir;
  std::mt19937 rng(20261124);
  std::uint64_t acked_before = 0;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(p[0]);
      child(dir.path(), p[1]);
    }
    ::close(p[1]);
    // The kill lands a random time after the child's first acknowledgement, so
    // every round kills appends in progress however slow the start (recovery,
    // a sanitizer build, a slow first fdatasync on a loaded machine).
    pollfd first{p[0], POLLIN, 0};
    const bool started = ::poll(&first, 1, 20'000) == 1;
    const auto run_for = std::chrono::milliseconds(50 + rng() % 250);
    if (started) std::this_thread::sleep_for(run_for);
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    REQUIRE(started);
    // Every offset the child reported before it died.
    std::uint64_t max_acked = 0;
    bool any = false;
    std::uint64_t v = 0;
    while (::read(p[0], &v, sizeof v) == sizeof v) {
      max_acked = v;
      any = true;
    }
    ::close(p[0]);
    REQUIRE(any);
    MESSAGE("round " << round << ": killed " << run_for.count() << " ms after its first ack, acked up to offset " << max_acked);

    sync_file_io io;
    auto log = partition_log::open(dir.path(), crash_opts(), io, 2);
    REQUIRE(log.has_value());
    CHECK((*log)->high_watermark() > max_acked);
    CHECK((*log)->verify().has_value());
    // Every acknowledged record is there with its own value.
    std::uint64_t next = acked_before;
    std::vector<std::byte> buf;
    while (next <= max_acked) {
      auto s = (*log)->locate(next, 1 << 20);
      REQUIRE(s.has_value());
      REQUIRE(s->bytes > 0);
      buf.resize(s->bytes);
      REQUIRE(::pread(s->fd, buf.data(), s->bytes, static_cast<off_t>(s->position)) == static_cast<ssize_t>(s->bytes));
      std::span<const std::byte> rest = buf;
      bool all_match = true;
      while (!rest.empty()) {
        const auto f = mcp::codec::parse_frame(rest, {});
        REQUIRE(f.status == mcp::codec::errc::ok);
        const auto r = mcp::codec::decode_record(f.frame.body);
        REQUIRE(r.has_value());
        all_match = all_match && r->offset == next && mcp::test::as_string(r->value) == value_of(next);
        ++next;
        rest = rest.subspan(f.frame.bytes.size());
      }
      CHECK(all_match);
    }
    acked_before = max_acked + 1;
  }
}
