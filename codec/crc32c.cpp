#include "codec/crc32c.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define MCP_CRC32C_X86 1
#endif

namespace mcp::codec {

namespace {

constexpr std::uint32_t poly = 0x82F63B78u;

// tables[k][b]: the CRC register after byte b followed by k zero bytes.
using slice_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr slice_tables make_slice_tables() {
  slice_tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? poly : 0u);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr slice_tables slice = make_slice_tables();

std::uint64_t load64(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

std::uint32_t crc32c_portable(std::span<const std::byte> data, std::uint32_t crc) noexcept {
  std::uint32_t c = ~crc;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  // Slicing-by-8 assumes little-endian loads; the bytewise loop below is exact everywhere.
  if constexpr (std::endian::native == std::endian::little) {
    while (n >= 8) {
      const std::uint64_t v = load64(p) ^ c;
      c = slice[7][v & 0xFF] ^ slice[6][(v >> 8) & 0xFF] ^ slice[5][(v >> 16) & 0xFF] ^
          slice[4][(v >> 24) & 0xFF] ^ slice[3][(v >> 32) & 0xFF] ^ slice[2][(v >> 40) & 0xFF] ^
          slice[1][(v >> 48) & 0xFF] ^ slice[0][v >> 56];
      p += 8;
      n -= 8;
    }
  }
  while (n-- > 0) c = (c >> 8) ^ slice[0][(c ^ std::to_integer<std::uint32_t>(*p++)) & 0xFF];
  return ~c;
}

#ifdef MCP_CRC32C_X86

namespace {

// Large inputs run three independent CRC streams over three adjacent lanes, because
// one stream of crc32 instructions is latency bound (3 cycles per 8 bytes) while the
// CPU can issue one per cycle. The lane CRCs are then joined with shift_tables.
constexpr std::size_t lane_bytes = 1024;
constexpr std::size_t interleave_min = 3 * lane_bytes;

__attribute__((target("sse4.2"))) std::uint32_t raw_hw(std::uint32_t c, const std::byte* p, std::size_t n) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    c64 = _mm_crc32_u64(c64, load64(p));
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  // The tail in at most three instructions: each crc32 has a 3-cycle latency.
  if (n >= 4) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    c = _mm_crc32_u32(c, v);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    c = _mm_crc32_u16(c, v);
    p += 2;
    n -= 2;
  }
  if (n > 0) c = _mm_crc32_u8(c, std::to_integer<std::uint8_t>(*p));
  return c;
}

// shift(x) = the CRC register after lane_bytes zero bytes from register x. It is
// linear in x, so four 256-entry tables (one per byte of x) compute it.
struct shift_tables {
  std::array<std::array<std::uint32_t, 256>, 4> t{};

  __attribute__((target("sse4.2"))) shift_tables() noexcept {
    static constexpr std::array<std::byte, lane_bytes> zeros{};
    for (std::uint32_t k = 0; k < 4; ++k) {
      for (std::uint32_t b = 0; b < 256; ++b) t[k][b] = raw_hw(b << (8 * k), zeros.data(), zeros.size());
    }
  }

  std::uint32_t shift(std::uint32_t x) const noexcept {
    return t[0][x & 0xFF] ^ t[1][(x >> 8) & 0xFF] ^ t[2][(x >> 16) & 0xFF] ^ t[3][x >> 24];
  }
};

}  // namespace

__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::span<const std::byte> data,
                                                          std::uint32_t crc) noexcept {
  std::uint32_t c = ~crc;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  if (n >= interleave_min) {
    static const shift_tables tables;
    while (n >= interleave_min) {
      std::uint64_t a = c, b = 0, d = 0;
      const std::byte* pa = p;
      const std::byte* pb = p + lane_bytes;
      const std::byte* pd = p + 2 * lane_bytes;
      for (std::size_t i = 0; i < lane_bytes; i += 8) {
        a = _mm_crc32_u64(a, load64(pa + i));
        b = _mm_crc32_u64(b, load64(pb + i));
        d = _mm_crc32_u64(d, load64(pd + i));
      }
      c = tables.shift(tables.shift(static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^
          static_cast<std::uint32_t>(d);
      p += interleave_min;
      n -= interleave_min;
    }
  }
  return ~raw_hw(c, p, n);
}

bool crc32c_hw_available() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}

#else

std::uint32_t crc32c_hw(std::span<const std::byte> data, std::uint32_t crc) noexcept {
  return crc32c_portable(data, crc);
}

bool crc32c_hw_available() noexcept { return false; }

#endif

namespace {
using crc_fn = std::uint32_t (*)(std::span<const std::byte>, std::uint32_t) noexcept;
crc_fn choose() noexcept { return crc32c_hw_available() ? &crc32c_hw : &crc32c_portable; }
// Chosen during static initialisation, so the hot path pays no guard; a caller
// running before that (another static initialiser) still gets a correct answer.
crc_fn g_chosen = choose();
}  // namespace

std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc) noexcept {
  const crc_fn fn = g_chosen;
  return fn != nullptr ? fn(data, crc) : choose()(data, crc);
}

const char* crc32c_implementation() noexcept { return crc32c_hw_available() ? "sse4.2" : "portable"; }

}  // namespace mcp::codec
