#pragma once
#include <cstdint>
#include <string>

namespace mcp::cli {

// mcp log dump DIR [--limit N]; mcp log verify DIR. Exit codes: 0 fine, 1 a problem.
int log_dump(const std::string& root, std::uint64_t limit);
int log_verify(const std::string& root);

}  // namespace mcp::cli
