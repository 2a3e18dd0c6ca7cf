#include "storage/sync_file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace mcp::storage {

void sync_file_io::write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, io_callback* cb) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(pos + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      cb->io_done(-errno);
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  cb->io_done(static_cast<int>(done));
}

void sync_file_io::datasync(int fd, io_callback* cb) {
  cb->io_done(::fdatasync(fd) == 0 ? 0 : -errno);
}

void sync_file_io::start_writeback(int fd, std::uint64_t pos, std::uint64_t len, io_callback* cb) {
  const int rc = ::sync_file_range(fd, static_cast<off_t>(pos), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  cb->io_done(rc == 0 ? 0 : -errno);
}

void sync_file_io::remove(const char* path, io_callback* cb) { cb->io_done(::unlink(path) == 0 ? 0 : -errno); }

}  // namespace mcp::storage
