// Storage append benchmark: 100-byte records in batches of 64, on one core.
//  1. the disk's own sequential write rate: 256 MiB of 1 MiB buffered writes + one fdatasync;
//  2. append with `none` (the log's work + page-cache writes);
//  3. append with `sync` and 64 appends in flight, sharing group commits: writes complete
//     on the benchmark thread, fdatasync runs on a helper thread (as the broker's ring
//     would run it asynchronously), and completions are delivered back to the loop.
// Each figure is the median of --runs runs (default 3). Prints one line per figure.
// Run: build/perf/storage_bench [--runs N] [--records N] [--dir PATH]

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "codec/record.h"
#include "storage/partition_log.h"

using namespace mcp;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Writes complete when the loop polls; syncs run on a helper thread.
class bench_io final : public storage::file_io {
 public:
  bench_io() : worker_([this] { run(); }) {}
  ~bench_io() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void write_at(int fd, std::uint64_t pos, std::span<const std::byte> b, storage::io_callback* cb) override {
    std::size_t written = 0;
    while (written < b.size()) {
      const ssize_t n = ::pwrite(fd, b.data() + written, b.size() - written, static_cast<off_t>(pos + written));
      if (n <= 0) {
        local_.push_back({cb, -errno});
        return;
      }
      written += static_cast<std::size_t>(n);
    }
    local_.push_back({cb, static_cast<int>(written)});
  }
  void datasync(int fd, storage::io_callback* cb) override {
    {
      std::lock_guard lk(mu_);
      sync_queue_.push_back({fd, cb});
    }
    cv_.notify_one();
  }
  void start_writeback(int fd, std::uint64_t pos, std::uint64_t len, storage::io_callback* cb) override {
    const int rc = ::sync_file_range(fd, static_cast<off_t>(pos), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
    local_.push_back({cb, rc == 0 ? 0 : -errno});
  }
  // The benchmark applies no retention; a removal runs at once, reported at the next poll.
  void remove(const char* path, storage::io_callback* cb) override { local_.push_back({cb, ::unlink(path) == 0 ? 0 : -errno}); }
  // Like the broker's ring, after the completions at hand (those of the writes
  // issued since the last poll), before waiting.
  void defer(storage::io_callback* cb) override { deferred_.push_back(cb); }
  // Delivers finished operations on the calling thread, as the broker's ring
  // dispatches a batch of completions: the writes issued since the last poll,
  // then deferred calls, then syncs the helper finished. Waits briefly for a
  // sync only if it delivered nothing else.
  void poll(bool wait) {
    std::vector<done> mine;
    mine.swap(local_);
    for (auto& d : mine) d.cb->io_done(d.res);
    std::vector<storage::io_callback*> later;
    later.swap(deferred_);
    for (auto* cb : later) cb->io_done(0);
    std::vector<done> ready;
    {
      std::unique_lock lk(mu_);
      // Something delivered, or queued by what was: no reason to wait.
      const bool busy = !mine.empty() || !later.empty() || !local_.empty() || !deferred_.empty();
      if (wait && !busy && finished_.empty()) {
        cv_done_.wait_for(lk, std::chrono::milliseconds(5), [this] { return !finished_.empty(); });
      }
      ready.swap(finished_);
    }
    for (auto& d : ready) d.cb->io_done(d.res);
  }

 private:
  struct done {
    storage::io_callback* cb;
    int res;
  };
  struct sync_req {
    int fd;
    storage::io_callback* cb;
  };
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [this] { return stop_ || !sync_queue_.empty(); });
      if (stop_) return;
      auto req = sync_queue_.front();
      sync_queue_.pop_front();
      lk.unlock();
      const int res = ::fdatasync(req.fd) == 0 ? 0 : -errno;
      lk.lock();
      finished_.push_back({req.cb, res});
      cv_done_.notify_one();
    }
  }
  std::vector<done> local_;
  std::vector<storage::io_callback*> deferred_;
  std::mutex mu_;
  std::condition_variable cv_, cv_done_;
  std::deque<sync_req> sync_queue_;
  std::vector<done> finished_;
  bool stop_ = false;
  std::thread worker_;
};

std::vector<std::byte> make_batch(std::size_t records) {
  std::vector<std::byte> value(100, std::byte{'v'});
  codec::record_input in;
  in.value = value;
  std::vector<std::byte> out(records * codec::record_frame_size(in));
  for (std::size_t i = 0; i < records; ++i) {
    codec::encode_record(std::span(out).subspan(i * codec::record_frame_size(in)), in);
  }
  return out;
}

struct counter final : storage::append_callback {
  std::uint64_t done = 0;
  unsigned inflight = 0;
  bool failed = false;
  void append_done(std::uint64_t, std::uint32_t count, const storage::error* err) noexcept override {
    done += count;
    --inflight;
    failed = failed || err != nullptr;
  }
};

double disk_mb_per_s(const fs::path& dir) {
  const fs::path p = dir / "disk-probe";
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char> buf(1 << 20, 'x');
  const auto t = clock_type::now();
  for (int i = 0; i < 256; ++i) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::abort();
  }
  ::fdatasync(fd);
  const double s = seconds_since(t);
  ::close(fd);
  fs::remove(p);
  return 256.0 / s;
}

double append_rate(const fs::path& dir, storage::durability::kind level, std::uint64_t records, unsigned depth,
                   std::uint64_t* syncs) {
  fs::remove_all(dir / "log");
  bench_io io;
  storage::log_options o;
  o.level.level = level;
  auto log = storage::partition_log::open(dir / "log", o, io, 1);
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    std::exit(1);
  }
  constexpr std::uint32_t batch = 64;
  std::vector<std::vector<std::byte>> buffers;
  for (unsigned i = 0; i < depth; ++i) buffers.push_back(make_batch(batch));
  counter c;
  std::uint64_t issued = 0;
  unsigned next_buf = 0;
  const auto t = clock_type::now();
  while (c.done < records) {
    // A buffer is reused only after its append completed: with depth buffers and at
    // most depth in flight, the round-robin one is free.
    while (c.inflight < depth && issued < records) {
      ++c.inflight;
      if (!(*log)->append(buffers[next_buf], batch, 1, &c)) std::abort();
      next_buf = (next_buf + 1) % depth;
      issued += batch;
    }
    io.poll(true);
  }
  const double s = seconds_since(t);
  while (!(*log)->idle()) io.poll(true);
  if (c.failed) std::abort();
  if (syncs != nullptr) *syncs = (*log)->syncs_issued();
  return static_cast<double>(records) / s;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  std::uint64_t records = 4'000'000;
  fs::path dir = fs::temp_directory_path() / ("mcp-storage-bench-" + std::to_string(::getpid()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    else if (a == "--records") records = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--dir") dir = argv[i + 1];
  }
  fs::create_directories(dir);
  std::vector<double> disk, none, sync;
  std::uint64_t syncs = 0;
  for (int r = 0; r < runs; ++r) {
    disk.push_back(disk_mb_per_s(dir));
    none.push_back(append_rate(dir, storage::durability::kind::none, records, 1, nullptr));
    sync.push_back(append_rate(dir, storage::durability::kind::sync, records, 64, &syncs));
  }
  fs::remove_all(dir);
  const double rec_bytes = 156.0;  // 100-byte value + 40-byte record fields + 16-byte frame header
  std::printf("disk sequential write (1 MiB writes + fdatasync): %.0f MB/s\n", median(disk));
  std::printf("append none, batches of 64 x 100 B:               %.2f M records/s (%.0f MB/s)\n",
              median(none) / 1e6, median(none) * rec_bytes / 1e6);
  std::printf("append sync, 64 appends in flight, group commit:  %.2f M records/s (%.0f MB/s, %.0f records per fdatasync in the last run)\n",
              median(sync) / 1e6, median(sync) * rec_bytes / 1e6,
              syncs ? static_cast<double>(records) / static_cast<double>(syncs) : 0.0);
  std::printf("(median of %d runs, %llu records each)\n", runs, static_cast<unsigned long long>(records));
  return 0;
}
