#pragma once
// A connected pair of loopback TCP sockets, for the benchmarks' bare ceilings
// (no broker): a listener on an ephemeral 127.0.0.1 port, one connect, one
// accept, the listener closed. Blocking sockets; the caller closes both ends.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <utility>

namespace mcp::perf {

// (connecting end, accepted end), or nothing if loopback refused any step.
inline std::optional<std::pair<int, int>> loopback_tcp_pair(bool nodelay) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const int c = ::socket(AF_INET, SOCK_STREAM, 0);
  // The backlog holds the connection until accept, so one thread can do both.
  const bool ok = c >= 0 && ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(lfd, 1) == 0 &&
                  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
                  ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  const int s = ok ? ::accept(lfd, nullptr, nullptr) : -1;
  ::close(lfd);
  if (s < 0) {
    if (c >= 0) ::close(c);
    return std::nullopt;
  }
  if (nodelay) {
    const int one = 1;
    for (int fd : {c, s}) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return std::pair{c, s};
}

}  // namespace mcp::perf
