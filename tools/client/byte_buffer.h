#pragma once
// A growable byte buffer whose resize leaves the new bytes unset. The client
// grows its batch buffers by a reply's announced size and lets recv fill them:
// zeroing them first was a visible share of a consumer's time.

#include <cstddef>
#include <memory>
#include <vector>

namespace mcp::client {

template <class T>
struct no_init_allocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = no_init_allocator<U>;
  };
  no_init_allocator() noexcept = default;
  template <class U>
  no_init_allocator(const no_init_allocator<U>&) noexcept {}  // NOLINT: converting, as std::allocator's
  // Value-initialization (resize(n), vector(n)) becomes default-initialization:
  // for std::byte, nothing is written.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    std::allocator_traits<std::allocator<T>>::construct(*this, p, std::forward<Args>(args)...);
  }
};

using byte_buffer = std::vector<std::byte, no_init_allocator<std::byte>>;

}  // namespace mcp::client
