#include "storage/run_marker.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "storage/atomic_file.h"
#include "storage/durable_dirs.h"

namespace mcp::storage {

namespace fs = std::filesystem;

const char* to_string(last_stop s) noexcept {
  switch (s) {
    case last_stop::clean: return "clean stop";
    case last_stop::process_died: return "the process died";
    case last_stop::machine_went_down: return "the machine went down";
  }
  return "?";
}

std::string run_marker::current_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

result<run_marker> run_marker::begin(const fs::path& dir) { return begin(dir, current_boot_id()); }

result<run_marker> run_marker::begin(const fs::path& dir, const std::string& boot_id) {
  const fs::path p = path_in(dir);
  last_stop prev = last_stop::clean;
  std::error_code ec;
  if (fs::exists(p, ec)) {
    std::ifstream in(p);
    std::string was;
    std::getline(in, was);
    // An unreadable or empty marker, or a kernel that gives no boot id, cannot
    // prove the machine stayed up: assume it did not (the slower, safe recovery).
    prev = (!was.empty() && !boot_id.empty() && was == boot_id) ? last_stop::process_died : last_stop::machine_went_down;
  } else if (ec) {
    return fail(errc::io_error, fmt::format("{}: {}", p.string(), ec.message()));
  }
  const std::string text = (boot_id.empty() ? std::string("unknown") : boot_id) + "\n";
  if (auto w = write_file_atomically(p, std::as_bytes(std::span(text.data(), text.size()))); !w) {
    return unexpected{w.error()};
  }
  return run_marker(dir, prev);
}

result<void> run_marker::end_clean() {
  const fs::path p = path_in(dir_);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    return fail(errc::io_error, fmt::format("{}: unlink: {}", p.string(), std::strerror(errno)));
  }
  return sync_directory(dir_);
}

}  // namespace mcp::storage
