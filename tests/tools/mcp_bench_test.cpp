// mcp-bench end to end: the real binary with --embedded, parsed from its --json line.

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/support/run_command.h"

namespace {

using ran = mcp::test::command_result;

ran sh(const std::string& cmd) { return mcp::test::run_command(cmd, false); }

std::string last_line(const std::string& s) {
  const auto end = s.find_last_not_of('\n');
  const auto start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

std::string bench() { return std::string(std::getenv("MCP_BENCH_BIN")); }

}  // namespace

TEST_CASE("mcp-bench --embedded publishes, consumes and verifies a fixed count; --json has the summary keys") {
  const auto r = sh(bench() + " --embedded --messages 30000 --producers 2 --consumers 2 --partitions 4 --batch 50 --json");
  CHECK(r.exit_code == 0);
  const std::string json = last_line(r.out);
  CAPTURE(json);
  CHECK(json.front() == '{');
  CHECK(json.find("\"published\":30000,") != std::string::npos);
  CHECK(json.find("\"consumed\":30000,") != std::string::npos);
  CHECK(json.find("\"verified\":true") != std::string::npos);
  for (const char* key : {"\"publish_msgs_per_s\":", "\"e2e_msgs_per_s\":", "\"mb_per_s\":", "\"latency_us\":{\"p50\":",
                          "\"p90\":", "\"p99\":", "\"p999\":", "\"max\":", "\"params\":{\"producers\":2"}) {
    CHECK(json.find(key) != std::string::npos);
  }
  CHECK(r.out.find("verified: every published message consumed exactly once") != std::string::npos);
}

TEST_CASE("mcp-bench --embedded --messages 200000 --json: the last line parses as JSON with consumed == published") {
  // A real JSON parser (python3, installed with the build's packages) reads the line.
  const std::string parse =
      "python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); "
      "l=d[\"latency_us\"]; "
      "print(d[\"published\"], d[\"consumed\"], d[\"verified\"], d[\"e2e_msgs_per_s\"] > 0, "
      "l[\"p50\"] <= l[\"p90\"] <= l[\"p99\"] <= l[\"p999\"] <= l[\"max\"], d[\"params\"][\"size\"], "
      "99 <= sum(d[\"host_cpu_pct\"].values()) <= 101)'";  // the machine's CPU time by kind, in percent
  const auto r = sh(bench() + " --embedded --messages 200000 --json | " + parse);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "200000 200000 True True True 100 True\n");
}

TEST_CASE("mcp-bench --group: workers of one consumer group ack every message; the summary has the group keys") {
  const std::string parse =
      "python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); "
      "print(d[\"published\"], d[\"consumed\"], d[\"acked\"] >= d[\"published\"], d[\"redelivered\"] >= 0, "
      "d[\"acked_msgs_per_s\"] > 0, d[\"verified\"], d[\"params\"][\"group\"], d[\"params\"][\"workers\"])'";
  const auto r = sh(bench() + " --embedded --messages 30000 --partitions 2 --group crew --workers 3 --credit 64 --json | " +
                    parse);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "30000 30000 True True True True crew 3\n");
  // --workers without --group is a usage error.
  CHECK(sh(bench() + " --workers 3").exit_code == 2);
}

TEST_CASE("mcp-bench with a rate reports latency from scheduled send times") {
  const auto r = sh(bench() + " --embedded --messages 2000 --rate 20000 --batch 10 --durability none --json");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("(from scheduled send times)") != std::string::npos);
  CHECK(last_line(r.out).find("\"rate\":20000") != std::string::npos);
}

TEST_CASE("mcp-bench --linger-us: batches of what is due, still no faster than the rate, every message verified") {
  const std::string parse =
      " | tail -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); "
      "print(d[\"published\"], d[\"consumed\"], d[\"verified\"], d[\"params\"][\"linger_us\"], "
      "d[\"publish_msgs_per_s\"] <= 20000 * 1.2)'";
  const auto r = sh(bench() + " --embedded --messages 4000 --partitions 2 --rate 20000 --linger-us 200 --durability none --json" +
                    parse);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "4000 4000 True 200 True\n");
  CHECK(sh(bench() + " --rate 1000 --linger-us -2").exit_code == 2);
}

TEST_CASE("mcp-bench --placement shard (default) and spread: every message verified either way, named in the JSON") {
  for (const char* how : {"", " --placement spread", " --placement shard"}) {
    CAPTURE(how);
    // 3 producers and 3 consumers over 2 shards: threads of one shard split its partitions.
    const auto r = sh(bench() + " --embedded --messages 20000 --producers 3 --consumers 3 --partitions 6 --json" + how);
    CHECK(r.exit_code == 0);
    const std::string json = last_line(r.out);
    CAPTURE(json);
    CHECK(json.find("\"consumed\":20000,") != std::string::npos);
    CHECK(json.find("\"verified\":true") != std::string::npos);
    const std::string want = std::string(how).find("spread") != std::string::npos ? "spread" : "shard";
    CHECK(json.find("\"placement\":\"" + want + "\"") != std::string::npos);
  }
}

TEST_CASE("mcp-bench refuses bad flags with exit code 2") {
  CHECK(sh(bench() + " --size 3").exit_code == 2);
  CHECK(sh(bench() + " --messages 10 --duration 5").exit_code == 2);
  CHECK(sh(bench() + " --broker 127.0.0.1:1 --embedded").exit_code == 2);
  for (const char* b : {"127.0.0.1:abc", "nohost", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:"}) {
    CAPTURE(b);
    const auto r = mcp::test::run_command(bench() + " --messages 10 --broker " + b);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("is not HOST:PORT") != std::string::npos);
  }
  CHECK(sh(bench() + " --messages 10 --rate -5").exit_code == 2);
  CHECK(sh(bench() + " --messages 10 --placement nearby").exit_code == 2);
  {
    // More stream consumers than partitions would read records twice: refused, with what to do instead.
    const auto r = mcp::test::run_command(bench() + " --messages 10 --consumers 5 --partitions 2");
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("--consumers 5 is more than --partitions 2") != std::string::npos);
    CHECK(r.out.find("--group NAME --workers 5") != std::string::npos);
    CHECK(r.out.find("mcp-broker") == std::string::npos);
  }
  // A bad durability is refused before any broker is started or contacted.
  for (const char* d : {"sometimes", "interval:abc", "interval:0"}) {
    CAPTURE(d);
    const auto r = mcp::test::run_command(bench() + " --messages 10 --durability " + d);
    CHECK(r.exit_code == 2);
    CHECK(r.out.find("mcp-bench: --durability: ") == 0);
    CHECK(r.out.find("mcp-broker") == std::string::npos);
  }
}

TEST_CASE("mcp-bench --segment-bytes / --retention-bytes configure the bench topic; a size the broker refuses is an error") {
  // 64 KiB segments and 1 MiB kept per partition: the run writes ~1.5 MB per
  // partition, so it rolls many segments; the consumers keep up, so whatever the
  // once-a-second retention pass deletes was consumed already.
  const std::string parse =
      "python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); "
      "p=d[\"params\"]; print(d[\"consumed\"], d[\"verified\"], p[\"segment_bytes\"], p[\"retention_bytes\"])'";
  const auto r = sh(bench() + " --embedded --messages 40000 --partitions 4 --rate 200000 --segment-bytes 65536 "
                              "--retention-bytes 1048576 --durability none --json | " + parse);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "40000 True 65536 1048576\n");
  const auto bad = mcp::test::run_command(bench() + " --embedded --messages 10 --segment-bytes 100");
  CHECK(bad.exit_code == 1);
  CAPTURE(bad.out);
  CHECK(bad.out.find("create topic") != std::string::npos);
  CHECK(sh(bench() + " --retention-bytes -2").exit_code == 2);
}
