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

}  // namespace mcp::codec
