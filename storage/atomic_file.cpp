#include "storage/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/durable_dirs.h"

namespace mcp::storage {

namespace fs = std::filesystem;

fs::path temp_path_for(const fs::path& path) { return fs::path(path.string() + ".tmp"); }

result<void> write_file_atomically(const fs::path& path, std::span<const std::byte> bytes) {
  const fs::path tmp = temp_path_for(path);
  auto io_fail = [](const fs::path& p, const char* what) {
    return fail(errc::io_error, fmt::format("{} {}: {}", what, p.string(), std::strerror(errno)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_fail(tmp, "create");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return io_fail(tmp, "write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return io_fail(tmp, "fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return io_fail(path, "rename onto");
  return sync_directory(path.parent_path());
}

}  // namespace mcp::storage
