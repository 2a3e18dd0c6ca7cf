#pragma once
// How the previous run on a data directory ended: cleanly, with the process
// alone dying (kill -9, a crash), or with the machine going down (power loss, a
// kernel crash, a VM killed).
//
// Why it matters to recovery: only when the machine goes down can the disk hold
// a file's later pages without its earlier ones. The kernel writes dirty pages
// back in no set order, so unsynced data may come back as a hole of zeros with
// records after it. After a process crash the page cache survives whole, and
// the tail checks of partition_log::open are enough; after a machine crash the
// segments that may hold unsynced data are validated in full
// (log_options::after_machine_crash, docs/storage.md "Recovery").
//
// The marker is the file `<dir>/running`, holding the boot id
// (/proc/sys/kernel/random/boot_id) of the run that wrote it: begin() reads it
// and replaces it with this boot's, durably; end_clean() removes it.

#include <filesystem>
#include <string>

#include "storage/errc.h"

namespace mcp::storage {

enum class last_stop { clean, process_died, machine_went_down };
const char* to_string(last_stop s) noexcept;

class run_marker {
 public:
  // Blocking (writes and syncs the marker): call at start-up, before opening logs.
  static result<run_marker> begin(const std::filesystem::path& dir);
  // Same, with the boot id given (tests simulate a reboot with it).
  static result<run_marker> begin(const std::filesystem::path& dir, const std::string& boot_id);

  last_stop previous() const noexcept { return previous_; }
  // Removes the marker and syncs the directory: the next begin() sees a clean stop.
  result<void> end_clean();

  static std::filesystem::path path_in(const std::filesystem::path& dir) { return dir / "running"; }
  // This machine's boot id, or "" if the kernel does not say.
  static std::string current_boot_id();

 private:
  run_marker(std::filesystem::path dir, last_stop prev) : dir_(std::move(dir)), previous_(prev) {}
  std::filesystem::path dir_;
  last_stop previous_ = last_stop::clean;
};

}  // namespace mcp::storage
