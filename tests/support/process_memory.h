#pragma once
// A process's resident memory, for tests that check broker memory stays bounded.

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace mcp::test {

// VmRSS of `pid` in KiB (0 if it cannot be read).
inline std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

}  // namespace mcp::test
