#pragma once
// A shard's pool of receive buffers, registered with its ring as a provided-buffer
// ring (IORING_REGISTER_PBUF_RING) so multishot recv picks a buffer per completion.
//
// Ownership: the kernel owns every buffer that is in the ring. A recv completion
// hands one buffer (id from cqe->flags >> IORING_CQE_BUFFER_SHIFT) to the shard as a
// pooled_buffer; the buffer goes back to the ring only when that handle is
// released, i.e. when everything that views its bytes is done (a PUBLISH whose
// records are being written keeps it until the write completes).

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace mcp::broker::io {

class ring;
class buffer_pool;

// Move-only handle of one buffer taken from the pool. Views of its bytes live
// no longer than the handle.
class pooled_buffer {
 public:
  pooled_buffer() = default;
  pooled_buffer(buffer_pool* pool, std::uint16_t id, std::size_t len) : pool_(pool), id_(id), len_(len) {}
  pooled_buffer(pooled_buffer&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), id_(o.id_), len_(o.len_) {}
  pooled_buffer& operator=(pooled_buffer&& o) noexcept {
    if (this != &o) {
      release();
      pool_ = std::exchange(o.pool_, nullptr);
      id_ = o.id_;
      len_ = o.len_;
    }
    return *this;
  }
  pooled_buffer(const pooled_buffer&) = delete;
  pooled_buffer& operator=(const pooled_buffer&) = delete;
  ~pooled_buffer() { release(); }

  std::span<const std::byte> bytes() const noexcept;
  std::uint16_t id() const noexcept { return id_; }
  explicit operator bool() const noexcept { return pool_ != nullptr; }
  void release() noexcept;

 private:
  buffer_pool* pool_ = nullptr;
  std::uint16_t id_ = 0;
  std::size_t len_ = 0;
};

class buffer_pool {
 public:
  // `count` must be a power of two ≤ 32768. Registers the ring under `group_id`.
  // Throws std::runtime_error at start-up if the kernel refuses.
  buffer_pool(ring& r, std::uint16_t group_id, unsigned count, std::size_t buffer_size);
  ~buffer_pool();
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  std::uint16_t group_id() const noexcept { return group_id_; }
  std::size_t buffer_size() const noexcept { return buffer_size_; }
  unsigned count() const noexcept { return count_; }
  // Buffers currently given to the kernel (not held by the shard).
  unsigned available() const noexcept { return available_; }

  // Takes the buffer a recv completion used (`len` bytes filled).
  pooled_buffer take(std::uint16_t id, std::size_t len) noexcept;

  std::byte* data(std::uint16_t id) noexcept { return memory_ + std::size_t{id} * buffer_size_; }

 private:
  friend class pooled_buffer;
  void give_back(std::uint16_t id) noexcept;

  ring& ring_;
  std::uint16_t group_id_;
  unsigned count_;
  std::size_t buffer_size_;
  io_uring_buf_ring* br_ = nullptr;
  std::byte* memory_ = nullptr;
  unsigned available_ = 0;
};

inline std::span<const std::byte> pooled_buffer::bytes() const noexcept {
  return {pool_->data(id_), len_};
}

inline void pooled_buffer::release() noexcept {
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->give_back(id_);
}

}  // namespace mcp::broker::io
