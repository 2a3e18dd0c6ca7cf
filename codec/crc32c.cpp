#include "codec/crc32c.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#include <wmmintrin.h>
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

// ---------------------------------------------------------------- shifting a CRC register
//
// Polynomials mod P in the reflected representation of the CRC register: bit 31
// is the coefficient of x^0, bit 0 that of x^31.

namespace {

// a * b mod P, bit by bit (zlib's multmodp, without its early exit).
constexpr std::uint32_t multmodp(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t p = 0;
  for (int i = 0; i < 32; ++i) {
    if ((a & (1u << (31 - i))) != 0) p ^= b;  // coefficient of x^i in a, times b * x^i
    b = (b & 1u) != 0 ? (b >> 1) ^ poly : b >> 1;
  }
  return p;
}

// xpow[k] = x^(2^k) mod P.
constexpr std::array<std::uint32_t, 64> make_xpow() {
  std::array<std::uint32_t, 64> t{};
  t[0] = 1u << 30;  // x^1
  for (std::size_t k = 1; k < t.size(); ++k) t[k] = multmodp(t[k - 1], t[k - 1]);
  return t;
}
constexpr std::array<std::uint32_t, 64> xpow = make_xpow();

// x^e mod P.
constexpr std::uint32_t xpow_mod(std::uint64_t e) noexcept {
  std::uint32_t p = 1u << 31;  // x^0
  for (std::size_t k = 0; e != 0; e >>= 1, ++k) {
    if ((e & 1u) != 0) p = multmodp(xpow[k], p);
  }
  return p;
}

std::uint32_t shift_portable(std::uint32_t reg, std::size_t n) noexcept {
  return multmodp(xpow_mod(std::uint64_t{n} * 8), reg);
}

#ifdef MCP_CRC32C_X86

// hw_k[k] = x^(2^(k+3) - 33) mod P for k >= 3: the constant that shifts a register
// by 2^k bytes through mul_hw. (x is invertible mod P, but these exponents never go
// below zero, so no inverse is needed.)
constexpr std::array<std::uint32_t, 61> make_hw_k() {
  std::array<std::uint32_t, 61> t{};
  for (std::size_t k = 3; k < t.size(); ++k) t[k] = xpow_mod((std::uint64_t{1} << (k + 3)) - 33);
  return t;
}
constexpr std::array<std::uint32_t, 61> hw_k = make_hw_k();

// a * b * x^33 mod P: the carry-less product of two reflected 32-bit values is
// a*b*x in the reflected 64-bit representation, and crc32 of a 64-bit value from
// register 0 multiplies it by x^32 and reduces it.
__attribute__((target("sse4.2,pclmul"))) std::uint32_t mul_hw(std::uint32_t a, std::uint32_t b) noexcept {
  const __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)),
                                            _mm_cvtsi32_si128(static_cast<int>(b)), 0);
  return static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(prod))));
}

__attribute__((target("sse4.2"))) std::uint32_t shift_low_hw(std::uint32_t reg, std::size_t low) noexcept {
  // 0..7 zero bytes, straight through the crc32 instruction.
  if ((low & 4u) != 0) reg = _mm_crc32_u32(reg, 0);
  if ((low & 2u) != 0) reg = _mm_crc32_u16(reg, 0);
  if ((low & 1u) != 0) reg = _mm_crc32_u8(reg, 0);
  return reg;
}

std::uint32_t hw_k_for(std::size_t hi) noexcept {  // hi: a non-zero multiple of 8 below 2^61
  std::size_t bits = hi;
  std::uint32_t k = hw_k[static_cast<std::size_t>(std::countr_zero(bits))];
  for (bits &= bits - 1; bits != 0; bits &= bits - 1) {
    k = mul_hw(k, hw_k[static_cast<std::size_t>(std::countr_zero(bits))]);  // x^(8a-33) * x^(8b-33) * x^33
  }
  return k;
}

bool detect_shift_hw() noexcept { return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul"); }

#else

bool detect_shift_hw() noexcept { return false; }

#endif

const bool g_shift_hw = detect_shift_hw();

}  // namespace

std::uint32_t crc32c_shifter::shift(std::uint32_t reg, std::size_t n) noexcept {
#ifdef MCP_CRC32C_X86
  if (g_shift_hw && n < (std::size_t{1} << 60)) {
    reg = shift_low_hw(reg, n & 7u);
    const std::size_t hi = n & ~std::size_t{7};
    if (hi == 0) return reg;
    if (hi != cached_n_) {
      cached_k_ = hw_k_for(hi);
      cached_n_ = hi;
    }
    return mul_hw(reg, cached_k_);
  }
#endif
  return shift_portable(reg, n);
}

#ifdef MCP_CRC32C_X86
namespace {
__attribute__((target("sse4.2,pclmul"))) std::uint32_t patch24_hw(std::uint32_t crc, std::uint64_t d0, std::uint64_t d1,
                                                                 std::uint64_t d2, std::size_t n, std::size_t& cached_n,
                                                                 std::uint32_t& cached_k) noexcept {
  std::uint64_t r = _mm_crc32_u64(0, d0);
  r = _mm_crc32_u64(r, d1);
  r = _mm_crc32_u64(r, d2);
  auto reg = static_cast<std::uint32_t>(r);
  if ((n & 4u) != 0) reg = _mm_crc32_u32(reg, 0);
  if ((n & 2u) != 0) reg = _mm_crc32_u16(reg, 0);
  if ((n & 1u) != 0) reg = _mm_crc32_u8(reg, 0);
  const std::size_t hi = n & ~std::size_t{7};
  if (hi != 0) {
    if (hi != cached_n) {
      cached_k = hw_k_for(hi);
      cached_n = hi;
    }
    const __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(reg)),
                                              _mm_cvtsi32_si128(static_cast<int>(cached_k)), 0);
    reg = static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(prod))));
  }
  return crc ^ reg;
}
}  // namespace
#endif

std::uint32_t crc32c_patch24(std::uint32_t crc, std::uint64_t d0, std::uint64_t d1, std::uint64_t d2, std::size_t len,
                             crc32c_shifter& shifter) noexcept {
#ifdef MCP_CRC32C_X86
  if (g_shift_hw && len - 24 < (std::size_t{1} << 60)) {
    return patch24_hw(crc, d0, d1, d2, len - 24, shifter.cached_n_, shifter.cached_k_);
  }
#endif
  std::array<std::byte, 24> delta;
  for (int i = 0; i < 8; ++i) {
    delta[i] = static_cast<std::byte>(d0 >> (8 * i));
    delta[8 + i] = static_cast<std::byte>(d1 >> (8 * i));
    delta[16 + i] = static_cast<std::byte>(d2 >> (8 * i));
  }
  return crc32c_patch(crc, delta, len, shifter);
}

std::uint32_t crc32c_patch(std::uint32_t crc, std::span<const std::byte> delta, std::size_t len,
                           crc32c_shifter& shifter) noexcept {
  // The register over the change from 0 (crc32c undoes its own pre- and post-xor
  // when started from ~0), carried over the unchanged rest as zeros.
  const std::uint32_t reg = ~crc32c(delta, 0xFFFFFFFFu);
  return crc ^ shifter.shift(reg, len - delta.size());
}

}  // namespace mcp::codec
