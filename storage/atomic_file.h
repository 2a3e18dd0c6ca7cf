#pragma once
// Replacing a small file so that a crash at any moment leaves either the old
// contents or the new, never a mix: write `<path>.tmp`, fsync it, rename it over
// `<path>`, fsync the directory. Blocking; for metadata, never the data path.

#include <filesystem>
#include <span>

#include "storage/errc.h"

namespace mcp::storage {

result<void> write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes);

// The temp file a crash between write and rename leaves behind.
std::filesystem::path temp_path_for(const std::filesystem::path& path);

}  // namespace mcp::storage
