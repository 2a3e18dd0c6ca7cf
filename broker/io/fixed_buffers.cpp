#include "broker/io/fixed_buffers.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <cassert>
#include <stdexcept>

#include "broker/io/ring.h"

namespace mcp::broker::io {

fixed_buffers::fixed_buffers(ring& r, unsigned count, std::size_t size) : ring_(r), count_(count), size_(size) {
  if (count == 0 || size == 0) throw std::invalid_argument("fixed buffers: count and size must be positive");
  void* mem = mmap(nullptr, size * count, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("fixed buffers: mmap failed");
  memory_ = static_cast<std::byte*>(mem);
  std::vector<iovec> iov(count);
  for (unsigned i = 0; i < count; ++i) iov[i] = {data(i), size};
  const int rc = io_uring_register_buffers(r.raw(), iov.data(), count);
  registered_ = rc == 0;
  register_error_ = rc;
  free_.reserve(count);
  for (unsigned i = count; i > 0; --i) free_.push_back(i - 1);
}

fixed_buffers::~fixed_buffers() {
  if (registered_) io_uring_unregister_buffers(ring_.raw());
  munmap(memory_, size_ * count_);
}

std::optional<unsigned> fixed_buffers::take() noexcept {
  if (free_.empty()) return std::nullopt;
  const unsigned i = free_.back();
  free_.pop_back();
  return i;
}

void fixed_buffers::give_back(unsigned index) noexcept {
  assert(index < count_ && free_.size() < count_);
  free_.push_back(index);
}

}  // namespace mcp::broker::io
