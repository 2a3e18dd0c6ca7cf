#include "tools/client/broker_address.h"

namespace mcp::client {

bool parse_broker(std::string_view text, broker_address& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return false;
  const std::string_view port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string_view::npos || port.size() > 5) return false;
  unsigned long v = 0;
  for (const char c : port) v = v * 10 + static_cast<unsigned long>(c - '0');
  if (v == 0 || v > 65535) return false;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  out.host = host.empty() ? std::string("127.0.0.1") : std::string(host);
  out.port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace mcp::client
