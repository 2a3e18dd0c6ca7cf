#pragma once
// How `mcp sub` prints a record: the value alone and a newline, or one JSON
// object a line (partition, offset, timestamp, key, value; bytes outside
// printable ASCII as \u00NN, so any value gives valid JSON).

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "codec/record.h"

namespace mcp::cli {

inline std::string json_escape(std::span<const std::byte> b) {
  std::string out;
  for (const auto byte : b) {
    const auto c = std::to_integer<unsigned char>(byte);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// `format`: "value" or "json".
inline void print_record(std::string_view format, std::uint32_t partition, const codec::record_view& rec) {
  if (format == "json") {
    std::printf("{\"partition\":%u,\"offset\":%llu,\"timestamp\":%lld,\"key\":\"%s\",\"value\":\"%s\"}\n", partition,
                static_cast<unsigned long long>(rec.offset), static_cast<long long>(rec.timestamp_ms),
                json_escape(rec.key).c_str(), json_escape(rec.value).c_str());
  } else {
    std::fwrite(rec.value.data(), 1, rec.value.size(), stdout);
    std::fputc('\n', stdout);
  }
}

}  // namespace mcp::cli
