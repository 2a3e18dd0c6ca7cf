#include "storage/durability.h"

#include <fmt/format.h>

#include <charconv>

namespace mcp::storage {

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::io_error: return "io error";
    case errc::corrupt: return "corrupt";
    case errc::invalid_argument: return "invalid argument";
    case errc::not_found: return "not found";
    case errc::exists: return "exists";
    case errc::out_of_range: return "out of range";
    case errc::failed: return "failed";
    case errc::would_block: return "would block";
  }
  return "unknown";
}

result<durability> parse_durability(std::string_view text) {
  if (text == "sync") return durability{durability::kind::sync, 0};
  if (text == "none") return durability{durability::kind::none, 0};
  constexpr std::string_view prefix = "interval:";
  if (text.substr(0, prefix.size()) == prefix) {
    const std::string_view num = text.substr(prefix.size());
    std::uint32_t ms = 0;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec == std::errc() && end == num.data() + num.size() && !num.empty() && ms >= 1 && ms <= 3'600'000) {
      return durability{durability::kind::interval, ms};
    }
    return fail(errc::invalid_argument,
                fmt::format("durability '{}': the interval must be a whole number of ms in 1..3600000", text));
  }
  return fail(errc::invalid_argument,
              fmt::format("durability '{}' is not one of: sync, none, interval:MS", text));
}

std::string to_string(const durability& d) {
  switch (d.level) {
    case durability::kind::sync: return "sync";
    case durability::kind::none: return "none";
    case durability::kind::interval: return fmt::format("interval:{}", d.interval_ms);
  }
  return "?";
}

}  // namespace mcp::storage
