#pragma once
// Directories that survive a machine crash. fsync(2) of a file or a directory
// does not make its own name durable: that is its parent's fsync. On a
// journal-less ext4 (the project's test VM) nothing else ever writes it, so a
// new topic, partition or group directory could vanish with everything in it.
// Blocking; for start-up, topic and group creation and log opening, never the
// data path.

#include <filesystem>

#include "storage/errc.h"

namespace mcp::storage {

// fsync of the directory itself (its entries: names of files made or renamed in it).
result<void> sync_directory(const std::filesystem::path& dir);

// Creates `dir` and any missing parents, syncing the parent of each one it
// creates once it exists. Nothing to do (and no sync) when `dir` exists.
// A component that exists but is not a directory is an error naming it.
result<void> create_directories_durably(const std::filesystem::path& dir);

}  // namespace mcp::storage
