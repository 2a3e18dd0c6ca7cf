#pragma once
// HOST:PORT of a broker, as the command-line tools take it (`--broker`).

#include <cstdint>
#include <string>
#include <string_view>

namespace mcp::client {

struct broker_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9092;
};

// HOST:PORT with a port in 1..65535 (digits only); `[v6]:PORT` drops the
// brackets; an empty host is 127.0.0.1. False (and `out` unchanged) if `text`
// is not one.
bool parse_broker(std::string_view text, broker_address& out);

}  // namespace mcp::client
