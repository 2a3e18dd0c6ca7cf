#include "broker/io/buffer_pool.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cassert>
#include <cstring>
#include <stdexcept>

#include "broker/io/ring.h"

namespace mcp::broker::io {

buffer_pool::buffer_pool(ring& r, std::uint16_t group_id, unsigned count, std::size_t buffer_size)
    : ring_(r), group_id_(group_id), count_(count), buffer_size_(buffer_size) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0) {
    throw std::invalid_argument(fmt::format("buffer pool count {} is not a power of two in 1..32768", count));
  }
  // The ring of buffer descriptors must be page aligned; mmap gives that and zeroes it.
  const std::size_t ring_bytes = sizeof(io_uring_buf) * count;
  void* ring_mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED) throw std::runtime_error("buffer pool: mmap of the buffer ring failed");
  br_ = static_cast<io_uring_buf_ring*>(ring_mem);
  void* mem = mmap(nullptr, buffer_size * count, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    munmap(ring_mem, ring_bytes);
    throw std::runtime_error("buffer pool: mmap of the buffers failed");
  }
  memory_ = static_cast<std::byte*>(mem);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  const int rc = io_uring_register_buf_ring(r.raw(), &reg, 0);
  if (rc != 0) {
    munmap(mem, buffer_size * count);
    munmap(ring_mem, ring_bytes);
    throw std::runtime_error(fmt::format("io_uring_register_buf_ring: {}", std::strerror(-rc)));
  }
  io_uring_buf_ring_init(br_);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, data(static_cast<std::uint16_t>(i)), static_cast<unsigned>(buffer_size),
                          static_cast<unsigned short>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  available_ = count;
}

buffer_pool::~buffer_pool() {
  io_uring_unregister_buf_ring(ring_.raw(), group_id_);
  munmap(memory_, buffer_size_ * count_);
  munmap(br_, sizeof(io_uring_buf) * count_);
}

pooled_buffer buffer_pool::take(std::uint16_t id, std::size_t len) noexcept {
  assert(id < count_ && len <= buffer_size_);
  assert(available_ > 0);
  --available_;
  return pooled_buffer(this, id, len);
}

void buffer_pool::give_back(std::uint16_t id) noexcept {
  io_uring_buf_ring_add(br_, data(id), static_cast<unsigned>(buffer_size_), id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  ++available_;
  assert(available_ <= count_);
}

}  // namespace mcp::broker::io
