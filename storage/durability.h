#pragma once
// Durability levels of a topic (docs/storage.md "Durability"):
//   sync          an append completes only after an fdatasync that covers it;
//                 appends waiting at the same time share one sync (group commit)
//   interval:MS   an append completes after its write; the log is synced at least
//                 every MS milliseconds while it has unsynced data
//   none          an append completes after its write (page cache only)

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/errc.h"

namespace mcp::storage {

struct durability {
  enum class kind { none, interval, sync };
  kind level = kind::sync;
  std::uint32_t interval_ms = 0;  // with interval: 1..3,600,000

  bool operator==(const durability&) const = default;
};

// "sync" | "none" | "interval:MS"; anything else is invalid_argument with a message
// that says what is accepted.
result<durability> parse_durability(std::string_view text);
std::string to_string(const durability& d);

}  // namespace mcp::storage
