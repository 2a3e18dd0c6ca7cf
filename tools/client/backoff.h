#pragma once
// Exponential backoff with full jitter (the AWS architecture blog's "full
// jitter"): the n-th wait is uniform in [0, min(cap, initial * 2^n)]. Jitter
// spreads the reconnects of many clients after a broker restart instead of
// having them all arrive in the same millisecond.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace mcp::client {

class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap)
      : initial_(std::max<std::int64_t>(1, initial.count())), cap_(std::max(initial_, cap.count())),
        rng_(std::random_device{}()) {}

  // The wait before the next attempt; each call doubles the ceiling up to the cap.
  std::chrono::milliseconds next() {
    const std::int64_t ceiling = std::min(cap_, initial_ << std::min(attempt_, 20u));
    ++attempt_;
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, ceiling)(rng_));
  }
  // The ceiling the next call draws under.
  std::chrono::milliseconds ceiling() const noexcept {
    return std::chrono::milliseconds(std::min(cap_, initial_ << std::min(attempt_, 20u)));
  }
  void reset() noexcept { attempt_ = 0; }
  unsigned attempts() const noexcept { return attempt_; }

 private:
  std::int64_t initial_;
  std::int64_t cap_;
  unsigned attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mcp::client
