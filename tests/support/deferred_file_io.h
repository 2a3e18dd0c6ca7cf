#pragma once
// A file_io whose writes land in the file at once but whose completions are held
// until the test releases them, in any order: lets tests reorder write
// completions and watch what the log acknowledges in between. Can fail the Nth
// operation with an errno.

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "storage/file_io.h"

namespace mcp::test {

class deferred_file_io final : public storage::file_io {
 public:
  struct op {
    bool is_sync = false;
    bool is_remove = false;
    bool is_writeback = false;
    int fd = -1;
    std::size_t bytes = 0;
    storage::io_callback* cb = nullptr;
    int result = 0;
    std::string path;  // of a removal
    bool is_defer = false;  // a deferred call (hold_defers)
  };

  void write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, storage::io_callback* cb) override {
    int res = static_cast<int>(bytes.size());
    if (++ops_seen_ == fail_nth_) {
      res = -fail_errno_;
    } else if (::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(pos)) != static_cast<ssize_t>(bytes.size())) {
      res = -errno;
    }
    ops.push_back({false, false, false, fd, bytes.size(), cb, res, {}});
  }
  void datasync(int fd, storage::io_callback* cb) override {
    const int res = (++ops_seen_ == fail_nth_) ? -fail_errno_ : (::fdatasync(fd) == 0 ? 0 : -errno);
    ops.push_back({true, false, false, fd, 0, cb, res, {}});
    ++syncs;
  }

  // Held like the others; does nothing to the file (it changes nothing a test can see).
  void start_writeback(int fd, std::uint64_t pos, std::uint64_t len, storage::io_callback* cb) override {
    ops.push_back({false, false, true, fd, 0, cb, 0, {}});
    writebacks.push_back({pos, len});
  }
  // Unlinks at once, like the others; the completion is held.
  void remove(const char* path, storage::io_callback* cb) override {
    const int res = (++ops_seen_ == fail_nth_) ? -fail_errno_ : (::unlink(path) == 0 ? 0 : -errno);
    ops.push_back({false, true, false, -1, 0, cb, res, path});
    ++removes;
  }

  // With hold_defers, a deferred call is held like an operation (is_defer) until
  // released; without, it runs at once (the interface's default).
  void defer(storage::io_callback* cb) override {
    if (!hold_defers) {
      cb->io_done(0);
      return;
    }
    op o;
    o.is_defer = true;
    o.cb = cb;
    ops.push_back(o);
  }

  // Completes the i-th held operation.
  void complete(std::size_t i) {
    op o = ops[i];
    ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(i));
    o.cb->io_done(o.result);
  }
  void complete_all() {
    while (!ops.empty()) complete(0);
  }
  void fail_operation(unsigned nth, int err) {
    fail_nth_ = ops_seen_ + nth;
    fail_errno_ = err;
  }

  std::deque<op> ops;
  bool hold_defers = false;
  unsigned syncs = 0;
  unsigned removes = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> writebacks;  // (position, length) of each

 private:
  unsigned ops_seen_ = 0;
  unsigned fail_nth_ = 0;
  int fail_errno_ = EIO;
};

}  // namespace mcp::test
