#include "storage/recovery_point.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec/byte_order.h"
#include "codec/crc32c.h"

namespace mcp::storage {

namespace fs = std::filesystem;
using codec::load_le;
using codec::store_le;

std::array<std::byte, recovery_point_size> encode_recovery_point(std::uint64_t base) noexcept {
  std::array<std::byte, recovery_point_size> out{};
  store_le<std::uint32_t>(out.data(), recovery_point_magic);
  store_le<std::uint16_t>(out.data() + 4, recovery_point_format);
  store_le<std::uint16_t>(out.data() + 6, 0);
  store_le<std::uint64_t>(out.data() + 8, base);
  store_le<std::uint32_t>(out.data() + 16, codec::crc32c(std::span(out).first(16)));
  return out;
}

result<std::uint64_t> decode_recovery_point(std::span<const std::byte> b) {
  if (b.size() != recovery_point_size) {
    return fail(errc::corrupt, fmt::format("{} bytes where a recovery point has {}", b.size(), recovery_point_size));
  }
  if (load_le<std::uint32_t>(b.data()) != recovery_point_magic) {
    return fail(errc::corrupt, "not a recovery point (bad magic)");
  }
  if (codec::crc32c(b.first(16)) != load_le<std::uint32_t>(b.data() + 16)) {
    return fail(errc::corrupt, "CRC mismatch (a torn or damaged write)");
  }
  if (const auto v = load_le<std::uint16_t>(b.data() + 4); v != recovery_point_format) {
    return fail(errc::corrupt, fmt::format("format version {} is not supported ({} is)", v, recovery_point_format));
  }
  if (load_le<std::uint16_t>(b.data() + 6) != 0) return fail(errc::corrupt, "reserved bytes are not zero");
  return load_le<std::uint64_t>(b.data() + 8);
}

result<std::optional<std::uint64_t>> read_recovery_point(const fs::path& dir) {
  const fs::path p = dir / recovery_point_name;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::uint64_t>{};
    return fail(errc::io_error, fmt::format("open {}: {}", p.string(), std::strerror(errno)));
  }
  // One byte more than a point: a longer file is reported, not read as one.
  std::array<std::byte, recovery_point_size + 1> buf{};
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) return fail(errc::io_error, fmt::format("read {}: {}", p.string(), std::strerror(read_errno)));
  auto base = decode_recovery_point(std::span(buf).first(static_cast<std::size_t>(n)));
  if (!base) return fail(errc::corrupt, fmt::format("{}: {}", p.string(), base.error().message));
  return std::optional<std::uint64_t>{*base};
}

result<int> open_recovery_point(const fs::path& dir, int dir_fd, std::uint64_t base,
                                std::optional<std::uint64_t> stored, bool sync_dir) {
  const fs::path p = dir / recovery_point_name;
  bool created = false;
  int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    created = fd >= 0;
  }
  if (fd < 0) return fail(errc::io_error, fmt::format("open {}: {}", p.string(), std::strerror(errno)));
  auto close_with = [&](const char* what) {
    const int e = errno;
    ::close(fd);
    return fail(errc::io_error, fmt::format("{} {}: {}", what, p.string(), std::strerror(e)));
  };
  if (created || stored != base) {
    const auto bytes = encode_recovery_point(base);
    if (::pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) return close_with("write");
    // A file longer than a point (damage) would read as bad for ever.
    if (::ftruncate(fd, recovery_point_size) != 0) return close_with("truncate");
    if (::fdatasync(fd) != 0) return close_with("fdatasync");
  }
  if ((created || sync_dir) && ::fsync(dir_fd) != 0) return close_with("fsync the directory of");
  return fd;
}

}  // namespace mcp::storage
