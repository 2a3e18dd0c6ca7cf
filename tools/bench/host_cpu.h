#pragma once
// The whole machine's CPU time by kind, from the first line of /proc/stat, so a
// benchmark can say how busy the machine was during the run and how much of it
// a VM's host took (steal). On a shared VM a run with much steal measures the
// neighbours as much as the broker: the figure reads next to it.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mcp::bench {

struct cpu_times {
  // user, nice, system, idle, iowait, irq, softirq, steal, in clock ticks (guest
  // time is already inside user and nice).
  std::array<std::uint64_t, 8> ticks{};
  enum kind { user, nice, system, idle, iowait, irq, softirq, steal };
};

// Parses the aggregate "cpu " line. Kernels before 2.6.11 print no steal field
// (taken as 0); a line that is not the aggregate, has fewer than four numbers
// or a field that is not a number is nullopt.
std::optional<cpu_times> parse_proc_stat_cpu(std::string_view line);

// The first line of /proc/stat, parsed; nullopt where it cannot be read.
std::optional<cpu_times> read_host_cpu();

// Percent of all CPU time between two readings, per kind; all zero when no
// tick passed or the counters went backwards.
struct cpu_share {
  double user = 0, system = 0, softirq = 0, iowait = 0, steal = 0, idle = 0;
};
cpu_share share_between(const cpu_times& before, const cpu_times& after);

}  // namespace mcp::bench
