#include "broker/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace mcp::broker {

namespace {
std::atomic<int> g_level{static_cast<int>(log_level::info)};
thread_local int t_shard = -1;
}  // namespace

const char* to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "?";
}

void set_log_level(log_level l) noexcept { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

bool log_enabled(log_level l) noexcept { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void set_log_shard(int shard) noexcept { t_shard = shard; }

void log_line(log_level l, std::string_view text) noexcept {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  const std::string who = t_shard < 0 ? std::string("main") : fmt::format("shard{}", t_shard);
  // One fwrite per line keeps lines from different shards whole.
  const std::string line = fmt::format("{}.{:03d}Z {:5} [{}] {}\n", when, ms, to_string(l), who, text);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mcp::broker
