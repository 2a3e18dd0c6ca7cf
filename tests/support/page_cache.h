#pragma once
// Drops segment files' pages from the page cache, so that tests can exercise the
// cold read paths (RWF_NOWAIT misses) of a running broker.

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace mcp::test {

// fdatasync + POSIX_FADV_DONTNEED on every .log file under `dir` (recursively).
// Returns how many files were evicted, as checked by a nowait read of their first
// page failing; a file system that keeps the pages (tmpfs) counts 0.
inline int evict_segments(const std::filesystem::path& dir) {
  int evicted = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".log" || e.file_size() == 0) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::fdatasync(fd) == 0 && ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0) {
      char b[4096];
      iovec v{b, sizeof b};
      if (::preadv2(fd, &v, 1, 0, RWF_NOWAIT) < 0 && errno == EAGAIN) ++evicted;
    }
    ::close(fd);
  }
  return evicted;
}

}  // namespace mcp::test
