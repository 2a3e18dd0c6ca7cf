#pragma once
// The shard's buffers for the copy delivery path (--delivery copy): a segment
// range is read into one with IORING_OP_READ_FIXED, then sent from it. They are
// registered with the ring once (io_uring_register_buffers), so a read does not
// pin and unpin the pages each time, and they are reused, so a delivery costs no
// allocation and no zeroing.
//
// Ownership: a connection holds at most one buffer at a time, from the READ
// until the last byte of it is sent; one that finds none free waits (the shard
// keeps a queue) instead of allocating, so the copy path's memory is bounded by
// count * size per shard whatever the consumers do.
//
// If the kernel refuses the registration (RLIMIT_MEMLOCK, say), the buffers are
// still used, with plain READ: registered() says which.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace mcp::broker::io {

class ring;

class fixed_buffers {
 public:
  // Throws std::runtime_error if the memory cannot be mapped (start-up only).
  fixed_buffers(ring& r, unsigned count, std::size_t size);
  ~fixed_buffers();
  fixed_buffers(const fixed_buffers&) = delete;
  fixed_buffers& operator=(const fixed_buffers&) = delete;

  std::optional<unsigned> take() noexcept;  // a free buffer's index, or none
  void give_back(unsigned index) noexcept;
  std::byte* data(unsigned index) noexcept { return memory_ + std::size_t{index} * size_; }
  std::size_t size() const noexcept { return size_; }
  unsigned count() const noexcept { return count_; }
  unsigned available() const noexcept { return static_cast<unsigned>(free_.size()); }
  bool registered() const noexcept { return registered_; }
  int register_error() const noexcept { return register_error_; }  // -errno of a refused registration

 private:
  ring& ring_;
  unsigned count_;
  std::size_t size_;
  std::byte* memory_ = nullptr;
  std::vector<unsigned> free_;
  bool registered_ = false;
  int register_error_ = 0;
};

}  // namespace mcp::broker::io
