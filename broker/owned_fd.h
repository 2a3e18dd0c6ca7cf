#pragma once
// owned_fd: a file descriptor that closes itself, move-only.
//
// Why: a slice of a segment may sit in a connection's send queue (or cross to
// another shard) for as long as the consumer is slow, while retention may delete
// the segment and close its descriptor meanwhile. Each slice in flight therefore
// holds its own duplicate of the segment's descriptor: the bytes stay readable
// until the slice is sent, and a closed number can never be reused under it.
//
// The close of such a duplicate can be the deleted file's last reference, and the
// kernel frees the file's blocks in that close: ~100-200 ms for a large segment on
// a disk with discard, on whichever thread closes. So a duplicate made before a
// deletion (segment_files_deleted() bumps the epoch) checks at close whether its
// file is gone; if so, and the thread has an fd_closer (a shard: an
// IORING_OP_CLOSE run by an io-wq worker), the close goes there.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <utility>

namespace mcp::broker {

// Bumped whenever segment files are deleted (retention, topic deletion).
inline std::atomic<std::uint64_t> deletion_epoch{0};
inline void segment_files_deleted() noexcept { deletion_epoch.fetch_add(1, std::memory_order_relaxed); }

// Where the calling thread sends the close of a descriptor whose file is deleted.
struct fd_closer {
  void* ctx = nullptr;
  void (*close)(void* ctx, int fd) noexcept = nullptr;
};
inline thread_local fd_closer thread_fd_closer;

class owned_fd {
 public:
  owned_fd() = default;
  explicit owned_fd(int fd) noexcept : fd_(fd), epoch_(deletion_epoch.load(std::memory_order_relaxed)) {}
  owned_fd(owned_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), epoch_(o.epoch_) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
      epoch_ = o.epoch_;
    }
    return *this;
  }
  owned_fd(const owned_fd&) = delete;
  owned_fd& operator=(const owned_fd&) = delete;
  ~owned_fd() { reset(); }

  // A duplicate of `fd` (close-on-exec); invalid (get() < 0) when the process is out of descriptors.
  static owned_fd duplicate(int fd) noexcept { return owned_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ < 0) return;
    const fd_closer c = thread_fd_closer;
    if (c.close != nullptr && epoch_ != deletion_epoch.load(std::memory_order_relaxed) && deleted(fd_)) {
      c.close(c.ctx, fd_);
    } else {
      ::close(fd_);
    }
    fd_ = -1;
  }

 private:
  static bool deleted(int fd) noexcept {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && st.st_nlink == 0;
  }

  int fd_ = -1;
  std::uint64_t epoch_ = 0;
};

}  // namespace mcp::broker
