#pragma once
// Drops files' pages from the page cache, so that tests can exercise the cold
// read paths (RWF_NOWAIT misses).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

namespace mcp::test {

// fdatasync + POSIX_FADV_DONTNEED until mincore() shows no page of the file
// resident (pages still under I/O, e.g. readahead, cannot be dropped at once);
// checking with mincore starts no readahead, unlike a read would. False if the
// pages stay (tmpfs keeps them) after ~1 s of tries.
inline bool evict_file(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return false;
  const auto len = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return false;
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> resident((len + static_cast<std::size_t>(page) - 1) / static_cast<std::size_t>(page));
  bool evicted = false;
  for (int i = 0; i < 100 && !evicted; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::fdatasync(fd) != 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) break;
    if (::mincore(map, len, resident.data()) != 0) break;
    evicted = true;
    for (const unsigned char r : resident) evicted = evicted && (r & 1) == 0;
  }
  ::munmap(map, len);
  return evicted;
}

// evict_file on every non-empty .log file under `dir` (recursively); how many went.
inline int evict_segments(const std::filesystem::path& dir) {
  int evicted = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".log" || e.file_size() == 0) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (evict_file(fd)) ++evicted;
    ::close(fd);
  }
  return evicted;
}

}  // namespace mcp::test
