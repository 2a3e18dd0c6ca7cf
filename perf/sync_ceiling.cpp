// What the disk alone allows `sync` latency to be: the ceiling for the broker's
// `--durability sync` end-to-end latency at a given message rate.
//
// No broker, no network, no parsing. Appends of `--batch` messages of `--size`
// bytes arrive at a fixed `--rate` (messages/s over all files), round robin over
// `--files` files (one appender thread each, buffered pwrite), as a broker's
// partitions would; `--syncers` threads run group commit over them (each owns files
// i % syncers: while a file has unsynced appends, fdatasync it, then every append
// it covered is done). An append's latency runs from the time it was due to the
// end of the fdatasync that covered it. Prints syncs/s and p50/p90/p99/p99.9/max
// of that latency, and the same for plain (unsynced) pwrite as the floor.
//
// Run: build-rel/perf/sync_ceiling [--dir D] [--rate R] [--size B] [--batch N]
//      [--files F] [--syncers S] [--seconds T] [--prewritten 0|1]     (bounded: T <= 60)

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct options {
  std::string dir = ".";
  double rate = 100000;
  std::size_t size = 100;
  unsigned batch = 5;
  unsigned files = 4;
  unsigned syncers = 1;
  double seconds = 5;
  // Fill each file with zeros (written, fsynced) before the run, so appends
  // overwrite blocks already allocated and written: an fdatasync then has no
  // block allocation or file size to write back, only the data and a flush.
  bool prewritten = false;
};

void print_latency(const char* what, std::vector<std::int64_t>& v) {
  if (v.empty()) {
    std::printf("%-28s no samples\n", what);
    return;
  }
  std::sort(v.begin(), v.end());
  const auto at = [&](double q) { return static_cast<double>(v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]) / 1e3; };
  std::printf("%-28s p50 %8.0f  p90 %8.0f  p99 %8.0f  p99.9 %8.0f  max %8.0f us  (%zu appends)\n", what, at(0.5),
              at(0.9), at(0.99), at(0.999), static_cast<double>(v.back()) / 1e3, v.size());
}

// One file: appends are written by the appender and covered by its syncer.
struct file_state {
  int fd = -1;
  std::mutex mu;
  std::vector<std::int64_t> due;  // due time of each append written, in order
  std::size_t synced = 0;         // appends below are covered by a completed fdatasync
};

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--dir") o.dir = v;
    else if (k == "--rate") o.rate = std::atof(v);
    else if (k == "--size") o.size = static_cast<std::size_t>(std::atol(v));
    else if (k == "--batch") o.batch = static_cast<unsigned>(std::atoi(v));
    else if (k == "--files") o.files = static_cast<unsigned>(std::atoi(v));
    else if (k == "--syncers") o.syncers = static_cast<unsigned>(std::atoi(v));
    else if (k == "--seconds") o.seconds = std::atof(v);
    else if (k == "--prewritten") o.prewritten = std::string(v) == "1";
    else {
      std::fprintf(stderr, "sync_ceiling: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if ((argc - 1) % 2 != 0 || o.rate <= 0 || o.size == 0 || o.batch == 0 || o.files == 0 || o.syncers == 0 ||
      o.syncers > o.files || o.seconds <= 0 || o.seconds > 60) {
    std::fprintf(stderr,
                 "usage: sync_ceiling [--dir D] [--rate MSGS_PER_S] [--size B] [--batch N] [--files F] "
                 "[--syncers S<=F] [--seconds T<=60] [--prewritten 0|1]\n");
    return 2;
  }
  const fs::path dir = fs::path(o.dir) / ("sync_ceiling." + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<file_state> files(o.files);
  for (unsigned f = 0; f < o.files; ++f) {
    files[f].fd = ::open((dir / std::to_string(f)).c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
    if (files[f].fd < 0) {
      std::perror("sync_ceiling: open");
      return 1;
    }
  }
  const std::vector<std::byte> buf(o.size * o.batch, std::byte{0x5a});
  const double appends_per_s = o.rate / o.batch;
  const auto total = static_cast<std::size_t>(appends_per_s * o.seconds);
  if (o.prewritten) {
    const std::size_t per_file = (total / o.files + 1) * buf.size();
    const std::vector<std::byte> zeros(1 << 20);
    for (auto& f : files) {
      for (std::size_t at = 0; at < per_file; at += zeros.size()) {
        if (::pwrite(f.fd, zeros.data(), zeros.size(), static_cast<off_t>(at)) != static_cast<ssize_t>(zeros.size())) {
          std::perror("sync_ceiling: prewrite");
          return 1;
        }
      }
      ::fsync(f.fd);
    }
  }

  std::vector<std::int64_t> synced_lat;
  std::vector<std::int64_t> write_lat;
  std::mutex lat_mu;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> syncs{0};
  std::vector<std::thread> syncers;
  for (unsigned s = 0; s < o.syncers; ++s) {
    syncers.emplace_back([&, s] {
      std::vector<std::int64_t> mine;
      for (;;) {
        bool did = false;
        for (unsigned f = s; f < o.files; f += o.syncers) {
          file_state& fs_ = files[f];
          std::size_t upto;
          {
            std::lock_guard lk(fs_.mu);
            upto = fs_.due.size();
          }
          if (upto == fs_.synced) continue;
          ::fdatasync(fs_.fd);
          const std::int64_t t = now_ns();
          std::lock_guard lk(fs_.mu);
          for (std::size_t i = fs_.synced; i < upto; ++i) mine.push_back(t - fs_.due[i]);
          fs_.synced = upto;
          syncs.fetch_add(1, std::memory_order_relaxed);
          did = true;
        }
        if (!did) {
          if (stop.load()) break;
          std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
      }
      std::lock_guard lk(lat_mu);
      synced_lat.insert(synced_lat.end(), mine.begin(), mine.end());
    });
  }

  // One appender per file, so a write that waits for its file's sync (journal-less
  // ext4 holds the inode lock while fdatasync writes the inode) holds back only
  // that file, as an io-wq worker's would in the broker.
  const std::int64_t start = now_ns();
  std::vector<std::thread> appenders;
  std::atomic<bool> failed{false};
  for (unsigned fi = 0; fi < o.files; ++fi) {
    appenders.emplace_back([&, fi] {
      file_state& f = files[fi];
      std::vector<std::int64_t> mine;
      std::uint64_t pos = 0;
      for (std::size_t k = fi; k < total; k += o.files) {
        const auto due = start + static_cast<std::int64_t>(static_cast<double>(k) * 1e9 / appends_per_s);
        for (std::int64_t t = now_ns(); t < due; t = now_ns()) {
          if (due - t > 100'000) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        if (::pwrite(f.fd, buf.data(), buf.size(), static_cast<off_t>(pos)) != static_cast<ssize_t>(buf.size())) {
          std::perror("sync_ceiling: pwrite");
          failed = true;
          return;
        }
        mine.push_back(now_ns() - due);
        pos += buf.size();
        std::lock_guard lk(f.mu);
        f.due.push_back(due);
      }
      std::lock_guard lk(lat_mu);
      write_lat.insert(write_lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : appenders) t.join();
  const double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  stop = true;
  for (auto& t : syncers) t.join();
  for (auto& f : files) ::close(f.fd);
  fs::remove_all(dir);

  if (failed) return 1;
  std::printf("sync_ceiling: %.0f msgs/s of %zu B in appends of %u, %u files, %u syncer(s), %.1f s, dir %s\n", o.rate,
              o.size, o.batch, o.files, o.syncers, elapsed, o.dir.c_str());
  std::printf("fdatasyncs: %.0f/s\n", static_cast<double>(syncs.load()) / elapsed);
  print_latency("written (page cache)", write_lat);
  print_latency("synced (group commit)", synced_lat);
  return 0;
}
