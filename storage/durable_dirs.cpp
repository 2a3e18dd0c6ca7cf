#include "storage/durable_dirs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace mcp::storage {

namespace fs = std::filesystem;

result<void> sync_directory(const fs::path& dir) {
  const fs::path d = dir.empty() ? fs::path(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(errc::io_error, fmt::format("open directory {}: {}", d.string(), std::strerror(errno)));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return fail(errc::io_error, fmt::format("fsync directory {}: {}", d.string(), std::strerror(err)));
  return {};
}

result<void> create_directories_durably(const fs::path& dir) {
  // The missing components, deepest first.
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st{};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return fail(errc::io_error, fmt::format("{} exists and is not a directory", p.string()));
      break;
    }
    // ENOTDIR: a component above is not a directory; the walk up finds and names it.
    if (errno != ENOENT && errno != ENOTDIR) {
      return fail(errc::io_error, fmt::format("stat {}: {}", p.string(), std::strerror(errno)));
    }
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return fail(errc::io_error, fmt::format("create directory {}: {}", it->string(), std::strerror(errno)));
    }
    if (auto r = sync_directory(it->parent_path()); !r) return r;
  }
  return {};
}

}  // namespace mcp::storage
