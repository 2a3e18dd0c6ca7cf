// mcp log dump|verify: offline, read-only inspection of segment files.

#include "tools/mcp/log_commands.h"

#include <fmt/format.h>

#include <cstdio>

#include "storage/log_verify.h"
#include "tools/mcp/preview.h"

namespace mcp::cli {

int log_dump(const std::string& root, std::uint64_t limit) {
  const auto parts = mcp::storage::find_partitions(root);
  if (parts.empty()) {
    std::fprintf(stderr, "mcp log dump: no segment files under %s\n", root.c_str());
    return 1;
  }
  int rc = 0;
  for (const auto& p : parts) {
    std::printf("# %s\n", p.string().c_str());
    std::uint64_t n = 0;
    const std::string problem = mcp::storage::for_each_record(p, [&](const mcp::codec::record_view& r) {
      if (limit != 0 && n >= limit) return;
      ++n;
      std::string line = fmt::format("offset={} timestamp={} key=\"{}\" value=\"{}\" ({} bytes)", r.offset,
                                     r.timestamp_ms, preview(r.key), preview(r.value), r.value.size());
      if (r.producer_id != 0) line += fmt::format(" producer={} seq={}", r.producer_id, r.sequence);
      mcp::codec::record_header h;
      auto it = r.headers();
      while (it.next(h)) line += fmt::format(" {}=\"{}\"", h.name, preview(h.value, 32));
      std::puts(line.c_str());
    });
    if (!problem.empty()) {
      std::fprintf(stderr, "mcp log dump: stopped: %s\n", problem.c_str());
      rc = 1;
    }
  }
  return rc;
}

int log_verify(const std::string& root) {
  const auto parts = mcp::storage::find_partitions(root);
  if (parts.empty()) {
    std::fprintf(stderr, "mcp log verify: no segment files under %s\n", root.c_str());
    return 1;
  }
  int rc = 0;
  for (const auto& p : parts) {
    const auto rep = mcp::storage::verify_partition(p);
    if (!rep.problem.empty()) {
      std::printf("CORRUPT %s\n", rep.problem.c_str());
      rc = 1;
      continue;
    }
    std::printf("ok %s: %llu segments, %llu records, %llu bytes\n", p.string().c_str(),
                static_cast<unsigned long long>(rep.segments), static_cast<unsigned long long>(rep.records),
                static_cast<unsigned long long>(rep.bytes));
    if (!rep.torn_tail.empty()) {
      std::printf("  torn tail (not corruption: the broker truncates it when it opens the log): %s\n",
                  rep.torn_tail.c_str());
    }
    if (!rep.recovery_point.empty()) {
      std::printf("  recovery point (no data lost: the broker's next open validates every segment and writes it "
                  "again): %s\n",
                  rep.recovery_point.c_str());
    }
  }
  return rc;
}

}  // namespace mcp::cli
