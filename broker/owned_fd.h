#pragma once
// owned_fd: a file descriptor that closes itself, move-only.
//
// Why: a slice of a segment may sit in a connection's send queue (or cross to
// another shard) for as long as the consumer is slow, while retention may delete
// the segment and close its descriptor meanwhile. Each slice in flight therefore
// holds its own duplicate of the segment's descriptor: the bytes stay readable
// until the slice is sent, and a closed number can never be reused under it.

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace mcp::broker {

class owned_fd {
 public:
  owned_fd() = default;
  explicit owned_fd(int fd) noexcept : fd_(fd) {}
  owned_fd(owned_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
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
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace mcp::broker
