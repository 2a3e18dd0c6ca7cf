#pragma once
// Bounded single-producer / single-consumer queue: the only way shards hand work
// to each other. Lock-free: the producer owns `tail_`, the consumer owns `head_`;
// each publishes its index with release and reads the other's with acquire.
// Capacity is a power of two. Thread contract: exactly one producer thread and
// one consumer thread for the queue's lifetime.

#include <atomic>
#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace mcp::broker {

template <class T>
class spsc_queue {
 public:
  explicit spsc_queue(std::size_t capacity) : mask_(capacity - 1), slots_(new slot[capacity]) {
    assert(capacity >= 2 && (capacity & (capacity - 1)) == 0);
  }
  ~spsc_queue() {
    while (try_pop()) {
    }
  }
  spsc_queue(const spsc_queue&) = delete;
  spsc_queue& operator=(const spsc_queue&) = delete;

  // Producer: false when full (the caller keeps the item and retries later).
  bool try_push(T&& v) {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ > mask_) return false;
    }
    new (slots_[t & mask_].storage) T(std::move(v));
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // Consumer: the oldest item, or nothing.
  std::optional<T> try_pop() {
    const std::size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) return std::nullopt;
    }
    T* p = std::launder(reinterpret_cast<T*>(slots_[h & mask_].storage));
    std::optional<T> out(std::move(*p));
    p->~T();
    head_.store(h + 1, std::memory_order_release);
    return out;
  }

  // Either side: a snapshot, exact only when the other side is idle.
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  struct slot {
    alignas(T) unsigned char storage[sizeof(T)];
  };
  static constexpr std::size_t line = 64;

  const std::size_t mask_;
  std::unique_ptr<slot[]> slots_;
  alignas(line) std::atomic<std::size_t> head_{0};  // written by the consumer
  std::size_t tail_cache_ = 0;                      // consumer's view of tail_
  alignas(line) std::atomic<std::size_t> tail_{0};  // written by the producer
  std::size_t head_cache_ = 0;                      // producer's view of head_
};

}  // namespace mcp::broker
