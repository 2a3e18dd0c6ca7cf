#pragma once
// Little-endian loads and stores at any alignment. Every on-wire and on-disk
// integer of the project is little-endian (docs/protocol.md); these are the only
// functions that touch their bytes.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace mcp::codec {

template <class T>
constexpr T byteswap_if_big(T v) noexcept {
  static_assert(std::is_integral_v<T>);
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    if constexpr (sizeof(T) == 2) return static_cast<T>(__builtin_bswap16(static_cast<std::uint16_t>(v)));
    if constexpr (sizeof(T) == 4) return static_cast<T>(__builtin_bswap32(static_cast<std::uint32_t>(v)));
    if constexpr (sizeof(T) == 8) return static_cast<T>(__builtin_bswap64(static_cast<std::uint64_t>(v)));
  }
  return v;
}

template <class T>
inline T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return byteswap_if_big(v);
}

template <class T>
inline void store_le(std::byte* p, T v) noexcept {
  v = byteswap_if_big(v);
  std::memcpy(p, &v, sizeof(T));
}

}  // namespace mcp::codec
