#pragma once
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final
// xor 0xFFFFFFFF): the checksum of every frame body. crc32c() dispatches at run
// time to the SSE4.2 instruction path when the CPU has it, else to a portable
// slicing-by-8 table path; both are exposed so tests and benchmarks compare them.

#include <cstddef>
#include <cstdint>
#include <span>

namespace mcp::codec {

// Extends `crc` (the CRC32C of earlier bytes, 0 for none) over `data`:
// crc32c("123456789") == 0xE3069283 and crc32c(b, crc32c(a)) == crc32c(a ++ b).
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

std::uint32_t crc32c_portable(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;
// Precondition: crc32c_hw_available().
std::uint32_t crc32c_hw(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;
bool crc32c_hw_available() noexcept;

// What crc32c() dispatches to: "sse4.2" or "portable".
const char* crc32c_implementation() noexcept;

// Updating a CRC without reading the message again. CRC32C is affine: for two
// messages of one length, crc(M) ^ crc(M') is the CRC register (initial value 0,
// no final xor) after M ^ M', so when only the first bytes change the new CRC
// follows from the old one, the change, and the length of the rest.
//
// crc32c_shifter::shift(reg, n) is the CRC register after n zero bytes starting
// from `reg`: reg * x^(8n) mod P. With SSE4.2 + PCLMUL that is one carry-less
// multiply by a constant that depends on n, cached for the last n (a batch of
// records of one size pays for it once); otherwise a portable square-and-multiply.
// Not thread-safe: one per thread or per batch.
class crc32c_shifter {
 public:
  std::uint32_t shift(std::uint32_t reg, std::size_t n) noexcept;

 private:
  friend std::uint32_t crc32c_patch24(std::uint32_t, std::uint64_t, std::uint64_t, std::uint64_t, std::size_t,
                                      crc32c_shifter&) noexcept;
  std::size_t cached_n_ = 0;  // multiple of 8; 0: nothing cached
  std::uint32_t cached_k_ = 0;
};

// The CRC32C of a `len`-byte message whose CRC32C is `crc`, after its first
// delta.size() bytes were xored with `delta` (delta.size() <= len). Exact: it
// needs no trust in `crc` (a wrong `crc` gives a wrong result, never a right one).
std::uint32_t crc32c_patch(std::uint32_t crc, std::span<const std::byte> delta, std::size_t len,
                           crc32c_shifter& shifter) noexcept;
// The same for a change in the first 24 bytes given as three little-endian words
// (bytes 0-7, 8-15, 16-23) of xor: one call, no memory round trip (record stamping).
std::uint32_t crc32c_patch24(std::uint32_t crc, std::uint64_t d0, std::uint64_t d1, std::uint64_t d2, std::size_t len,
                             crc32c_shifter& shifter) noexcept;

}  // namespace mcp::codec
