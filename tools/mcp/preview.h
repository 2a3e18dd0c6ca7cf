#pragma once
// Printable previews of record bytes for the command line.

#include <fmt/format.h>

#include <cstddef>
#include <span>
#include <string>

namespace mcp::cli {

// Printable ASCII as is, anything else as \xNN; at most `max` bytes, then a count.
inline std::string preview(std::span<const std::byte> bytes, std::size_t max = 64) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = std::to_integer<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (bytes.size() > max) out += fmt::format("...(+{} bytes)", bytes.size() - max);
  return out;
}

}  // namespace mcp::cli
