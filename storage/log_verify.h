#pragma once
// Offline inspection of partition directories, for `mcp log dump` and `mcp log
// verify`. Read-only: files are opened O_RDONLY and nothing is repaired (the
// broker's recovery does that at open).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "codec/record.h"
#include "storage/errc.h"

namespace mcp::storage {

struct verify_report {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  // The first problem: empty when the partition is sound.
  std::string problem;
  // A torn tail of the last segment: not corruption (recovery truncates it), said apart.
  std::string torn_tail;
  // A recovery-point file (storage/recovery_point.h) that is damaged or names a
  // segment past the last: not data lost (the next open validates every segment
  // and writes it again), said apart.
  std::string recovery_point;
};

// Partition directories under `root` (root itself if it holds segments), sorted.
std::vector<std::filesystem::path> find_partitions(const std::filesystem::path& root);

// Checks every segment of one partition directory: every frame, CRC, record
// layout, offset continuity inside and across segments, every index and
// time-index entry, and the recovery point.
verify_report verify_partition(const std::filesystem::path& dir);

// Calls `fn` for every valid record of the partition, in offset order; stops at
// the first problem, which it returns (empty string if none).
std::string for_each_record(const std::filesystem::path& dir,
                            const std::function<void(const codec::record_view&)>& fn);

}  // namespace mcp::storage
