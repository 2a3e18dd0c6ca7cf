#pragma once
// mcp-bench --embedded: an mcp-broker child process on a free loopback port with a
// temp data dir, stopped (SIGTERM, then SIGKILL after 10 s) and removed on
// destruction. The child dies with mcp-bench (PR_SET_PDEATHSIG).

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace mcp::bench {

class embedded_broker {
 public:
  // Throws std::runtime_error naming what failed (start-up only).
  embedded_broker(const std::string& binary, unsigned shards, const std::string& durability);
  ~embedded_broker();
  embedded_broker(const embedded_broker&) = delete;
  embedded_broker& operator=(const embedded_broker&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }

  // The mcp-broker next to `argv0` (installed side by side, or the build tree's broker/).
  static std::string find_binary(const char* argv0);

 private:
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mcp::bench
