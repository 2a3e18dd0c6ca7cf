#include "tools/bench/host_cpu.h"

#include <charconv>
#include <fstream>
#include <string>

namespace mcp::bench {

std::optional<cpu_times> parse_proc_stat_cpu(std::string_view line) {
  constexpr std::string_view prefix = "cpu ";
  if (line.substr(0, prefix.size()) != prefix) return std::nullopt;
  line.remove_prefix(prefix.size());
  cpu_times t;
  std::size_t fields = 0;
  while (true) {
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty() || line.front() == '\n') break;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (ec != std::errc{} || (end != line.data() + line.size() && *end != ' ' && *end != '\n')) return std::nullopt;
    if (fields < t.ticks.size()) t.ticks[fields] = v;
    ++fields;
    line.remove_prefix(static_cast<std::size_t>(end - line.data()));
  }
  if (fields < 4) return std::nullopt;
  return t;
}

std::optional<cpu_times> read_host_cpu() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  return parse_proc_stat_cpu(line);
}

cpu_share share_between(const cpu_times& before, const cpu_times& after) {
  std::array<std::uint64_t, 8> d{};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (after.ticks[i] < before.ticks[i]) return {};
    d[i] = after.ticks[i] - before.ticks[i];
    total += d[i];
  }
  if (total == 0) return {};
  const auto pct = [&](std::uint64_t v) { return 100.0 * static_cast<double>(v) / static_cast<double>(total); };
  cpu_share s;
  s.user = pct(d[cpu_times::user] + d[cpu_times::nice]);
  s.system = pct(d[cpu_times::system] + d[cpu_times::irq]);
  s.softirq = pct(d[cpu_times::softirq]);
  s.iowait = pct(d[cpu_times::iowait]);
  s.steal = pct(d[cpu_times::steal]);
  s.idle = pct(d[cpu_times::idle]);
  return s;
}

}  // namespace mcp::bench
