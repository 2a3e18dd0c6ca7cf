#include "broker/cached_copy.h"

#include <sys/uio.h>

namespace mcp::broker {

std::vector<std::byte> copy_if_cached(int fd, std::uint64_t pos, std::size_t len, std::size_t front) {
  std::vector<std::byte> out(front + len);
  std::size_t got = 0;
  while (got < len) {
    iovec v{out.data() + front + got, len - got};
    const ssize_t n = ::preadv2(fd, &v, 1, static_cast<off_t>(pos + got), RWF_NOWAIT);
    // EAGAIN: a page is not cached (or its lock is held); 0: the file is shorter
    // than the slice, which the slow path reports. Either way: not here.
    if (n <= 0) return {};
    got += static_cast<std::size_t>(n);
  }
  return out;
}

}  // namespace mcp::broker
