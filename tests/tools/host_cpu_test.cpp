#include "tools/bench/host_cpu.h"

#include <doctest/doctest.h>

using namespace mcp::bench;

TEST_CASE("the aggregate cpu line of /proc/stat parses, with or without the later fields") {
  const auto t = parse_proc_stat_cpu("cpu  1635943 7 221958 2909238 274091 3 19795 35455 0 0\n");
  REQUIRE(t.has_value());
  CHECK(t->ticks[cpu_times::user] == 1635943);
  CHECK(t->ticks[cpu_times::nice] == 7);
  CHECK(t->ticks[cpu_times::system] == 221958);
  CHECK(t->ticks[cpu_times::idle] == 2909238);
  CHECK(t->ticks[cpu_times::iowait] == 274091);
  CHECK(t->ticks[cpu_times::irq] == 3);
  CHECK(t->ticks[cpu_times::softirq] == 19795);
  CHECK(t->ticks[cpu_times::steal] == 35455);
  // An old kernel's four fields: the rest is zero.
  const auto old = parse_proc_stat_cpu("cpu 10 0 5 100");
  REQUIRE(old.has_value());
  CHECK(old->ticks[cpu_times::idle] == 100);
  CHECK(old->ticks[cpu_times::steal] == 0);
}

TEST_CASE("a line that is not the aggregate cpu line, or is malformed, is refused") {
  CHECK(!parse_proc_stat_cpu(""));
  CHECK(!parse_proc_stat_cpu("cpu0 1 2 3 4 5 6 7 8"));  // one CPU, not the machine
  CHECK(!parse_proc_stat_cpu("intr 1 2 3 4"));
  CHECK(!parse_proc_stat_cpu("cpu  1 2 3"));             // too few fields
  CHECK(!parse_proc_stat_cpu("cpu  1 2 x 4"));           // not a number
  CHECK(!parse_proc_stat_cpu("cpu  1 2 3 4a 5"));        // trailing junk in a field
  CHECK(!parse_proc_stat_cpu("cpu  1 2 -3 4"));          // negative
  CHECK(!parse_proc_stat_cpu("cpu  99999999999999999999999 2 3 4"));  // overflows 64 bits
}

TEST_CASE("shares between two readings are percent of all ticks that passed") {
  cpu_times a, b;
  a.ticks = {100, 0, 50, 1000, 10, 0, 5, 20};
  b.ticks = {140, 10, 70, 1010, 20, 0, 15, 40};  // +40 +10 +20 +10 +10 +0 +10 +20 = 120
  const cpu_share s = share_between(a, b);
  CHECK(s.user == doctest::Approx(50.0 * 100 / 120));
  CHECK(s.system == doctest::Approx(20.0 * 100 / 120));
  CHECK(s.softirq == doctest::Approx(10.0 * 100 / 120));
  CHECK(s.iowait == doctest::Approx(10.0 * 100 / 120));
  CHECK(s.steal == doctest::Approx(20.0 * 100 / 120));
  CHECK(s.idle == doctest::Approx(10.0 * 100 / 120));
  // No time passed, or counters went back (a reset): nothing to report.
  CHECK(share_between(a, a).steal == 0);
  CHECK(share_between(b, a).user == 0);
}

TEST_CASE("this machine's /proc/stat reads") {
  const auto t = read_host_cpu();
  REQUIRE(t.has_value());
  CHECK(t->ticks[cpu_times::idle] + t->ticks[cpu_times::user] > 0);
}
