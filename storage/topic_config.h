#pragma once
// A topic's configuration on disk: <data dir>/topics/<topic>/meta, a small
// `key = value` text file that people can read and edit, validated on load with
// errors that name the file and line. Grammar and defaults: docs/storage.md
// "Topic metadata". Written atomically.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/durability.h"
#include "storage/errc.h"

namespace mcp::storage {

struct topic_config {
  std::uint32_t partitions = 1;                          // 1..10000
  durability level{};                                    // default sync
  std::int64_t retention_bytes = -1;                     // -1: unlimited, else >= 0
  std::int64_t retention_ms = -1;                        // -1: unlimited, else >= 0
  std::int64_t segment_bytes = 256LL << 20;              // 4 KiB .. 1 GiB
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;      // >= 1000
  bool operator==(const topic_config&) const = default;
};

result<void> validate(const topic_config& c);
std::string format_topic_config(const topic_config& c);
// `name` is used in messages (the file path).
result<topic_config> parse_topic_config(std::string_view text, const std::string& name);

result<topic_config> load_topic_config(const std::filesystem::path& meta_file);
result<void> store_topic_config(const std::filesystem::path& meta_file, const topic_config& c);

// Topics that have a meta file under <data dir>/topics, sorted.
std::vector<std::string> list_topics(const std::filesystem::path& data_dir);

}  // namespace mcp::storage
