#pragma once
// Small helpers for building byte buffers in tests.

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>
#include <vector>

namespace mcp::test {

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string_view as_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline std::vector<std::byte> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xFF);
  return v;
}

inline std::vector<std::byte> hex_bytes(std::string_view hex) {
  std::vector<std::byte> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int hi = -1;
  for (const char c : hex) {
    const int n = nibble(c);
    if (n < 0) continue;  // spaces and line breaks as in the docs
    if (hi < 0) {
      hi = n;
    } else {
      out.push_back(static_cast<std::byte>(hi * 16 + n));
      hi = -1;
    }
  }
  return out;
}

}  // namespace mcp::test
