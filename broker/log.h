#pragma once
// Logging of the broker: one line per event on stderr, with time, level and the
// shard id of the thread ("main" outside shards), formatted with fmt.

#include <fmt/format.h>

#include <string_view>

#include "broker/log_level.h"

namespace mcp::broker {

void set_log_level(log_level l) noexcept;
bool log_enabled(log_level l) noexcept;
// Shard id of the calling thread in log lines; -1 for the main thread.
void set_log_shard(int shard) noexcept;
void log_line(log_level l, std::string_view text) noexcept;

template <class... Args>
void log(log_level l, fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(l)) log_line(l, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace mcp::broker
