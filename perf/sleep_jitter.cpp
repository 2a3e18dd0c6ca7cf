// Sleep jitter: what the machine alone adds to a wake-up, before any broker or
// network. One thread per core (pinned) sleeps --sleep-us in a loop for
// --seconds and measures how late each wake-up is. On a VM this is the host's
// share of the tail: a vCPU the host deschedules wakes its threads late, and no
// broker can deliver a message faster than its threads wake.
// Prints, per core, the oversleep p50/p90/p99/p99.9/max in µs, how many wake-ups
// were later than --late-us, and (with --list) each of them with its time, so
// periodic stalls show up as a regular spacing.
// Run: build-rel/perf/sleep_jitter [--seconds 5] [--sleep-us 100] [--late-us 300] [--list]

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

struct settings {
  double seconds = 5;
  long sleep_us = 100;
  long late_us = 300;
  bool list = false;
};

struct core_result {
  std::vector<long> oversleep_us;
  std::vector<std::pair<double, long>> late;  // (seconds since start, µs late)
};

void run_on(unsigned core, const settings& s, clk::time_point t0, core_result& out) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) != 0) {
    std::fprintf(stderr, "sleep_jitter: cannot pin to core %u: measuring unpinned\n", core);
  }
  // The default 50 µs timer slack would be counted as oversleep.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  const auto end = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(s.seconds));
  out.oversleep_us.reserve(static_cast<std::size_t>(s.seconds * 1e6 / static_cast<double>(s.sleep_us)) + 1);
  for (auto now = clk::now(); now < end; now = clk::now()) {
    const auto due = now + std::chrono::microseconds(s.sleep_us);
    std::this_thread::sleep_until(due);
    const long late = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - due).count());
    out.oversleep_us.push_back(std::max(0L, late));
    if (late > s.late_us) out.late.emplace_back(std::chrono::duration<double>(now - t0).count(), late);
  }
}

long percentile(const std::vector<long>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

bool parse(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--seconds" && has_value) {
      s.seconds = std::atof(argv[++i]);
    } else if (a == "--sleep-us" && has_value) {
      s.sleep_us = std::atol(argv[++i]);
    } else if (a == "--late-us" && has_value) {
      s.late_us = std::atol(argv[++i]);
    } else if (a == "--list") {
      s.list = true;
    } else {
      std::fprintf(stderr, "usage: sleep_jitter [--seconds S (0.1..600)] [--sleep-us U (1..1000000)] [--late-us L] [--list]\n");
      return false;
    }
  }
  if (s.seconds < 0.1 || s.seconds > 600 || s.sleep_us < 1 || s.sleep_us > 1'000'000 || s.late_us < 0) {
    std::fprintf(stderr, "sleep_jitter: --seconds must be 0.1..600, --sleep-us 1..1000000, --late-us >= 0\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (!parse(argc, argv, s)) return 2;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<core_result> results(cores);
  const auto t0 = clk::now();
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < cores; ++c) threads.emplace_back([&, c] { run_on(c, s, t0, results[c]); });
  for (auto& t : threads) t.join();

  std::printf("sleep %ld us in a loop for %.1f s, one thread per core; oversleep in us\n", s.sleep_us, s.seconds);
  for (unsigned c = 0; c < cores; ++c) {
    auto& r = results[c];
    std::vector<long> sorted = r.oversleep_us;
    std::sort(sorted.begin(), sorted.end());
    std::printf("core %u: %zu wake-ups  p50 %ld  p90 %ld  p99 %ld  p99.9 %ld  max %ld  later than %ld us: %zu (%.3f %%)\n", c,
                sorted.size(), percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99),
                percentile(sorted, 0.999), sorted.empty() ? 0 : sorted.back(), s.late_us, r.late.size(),
                sorted.empty() ? 0.0 : 100.0 * static_cast<double>(r.late.size()) / static_cast<double>(sorted.size()));
    if (s.list) {
      for (const auto& [t, us] : r.late) std::printf("  core %u at %.3f s: %ld us late\n", c, t, us);
    }
  }
  return 0;
}
