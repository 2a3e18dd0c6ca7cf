// `mcp topic|pub|sub` as a user runs them, against a real broker.

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <vector>
#include <string>

#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace {

using ran = mcp::test::command_result;

ran sh(const std::string& cmd) { return mcp::test::run_command(cmd); }

std::string mcp_cmd(const mcp::test::broker_process& b, const std::string& args) {
  return std::string(std::getenv("MCP_BIN")) + " " + args + " --broker 127.0.0.1:" + std::to_string(b.port());
}

// The whitespace-separated words of the first output line whose first word is `first`.
std::vector<std::string> row_starting(const std::string& out, const std::string& first) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (!w.empty() && w[0] == first) return w;
  }
  return {};
}

}  // namespace

TEST_CASE("topic create, list, describe, delete") {
  mcp::test::broker_process b;
  auto r = sh(mcp_cmd(b, "topic create orders --partitions 3 --durability none"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("created topic orders with 3 partitions") != std::string::npos);
  r = sh(mcp_cmd(b, "topic create orders --partitions 3"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("TOPIC_EXISTS") != std::string::npos);
  r = sh(mcp_cmd(b, "topic list"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("orders\t3 partitions") != std::string::npos);
  r = sh("printf 'a\\nb\\nc\\nd\\n' | " + mcp_cmd(b, "pub orders --partition 1"));
  CHECK(r.exit_code == 0);
  r = sh(mcp_cmd(b, "topic describe orders"));
  CHECK(r.exit_code == 0);
  // Partition 1 holds offsets 0..3: first 0, next 4, on its owning shard's port.
  const std::string row1 = "1          " + std::to_string(mcp::broker::owner_shard("orders", 1, 2));
  CHECK(r.out.find(row1) != std::string::npos);
  CHECK(r.out.find(" 0              4 ") != std::string::npos);
  r = sh(mcp_cmd(b, "topic delete orders"));
  CHECK(r.exit_code == 0);
  r = sh(mcp_cmd(b, "topic describe orders"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("UNKNOWN_TOPIC") != std::string::npos);
}

TEST_CASE("topic describe names a partition whose log failed, and why; pub reports the STORAGE_ERROR") {
  // A 256 KiB file-size limit on the broker, and a 300 KB message: its write fails.
  mcp::test::broker_process b({.shards = 2, .durability = "sync", .max_file_bytes = 256 << 10});
  REQUIRE(sh(mcp_cmd(b, "topic create full --segment-bytes 1048576")).exit_code == 0);
  mcp::test::temp_dir dir;
  const auto big = (dir.path() / "big").string();
  REQUIRE(sh("head -c 300000 /dev/zero | tr '\\0' x > " + big).exit_code == 0);
  auto r = sh(mcp_cmd(b, "pub full --acks --file " + big));
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("STORAGE_ERROR") != std::string::npos);
  r = sh(mcp_cmd(b, "topic describe full"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("partition 0 FAILED: ") != std::string::npos);
  CHECK(r.out.find("File too large") != std::string::npos);
}

TEST_CASE("topic create takes segment size and age; out-of-range values are refused with the reason") {
  mcp::test::broker_process b;
  auto r = sh(mcp_cmd(b, "topic create seg --segment-bytes 100"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("segment_bytes 100 is not in 4096..1073741824") != std::string::npos);
  CHECK(r.out.find("INVALID_ARGUMENT") != std::string::npos);
  r = sh(mcp_cmd(b, "topic create seg --segment-ms -5"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("segment_ms -5 is under 1000") != std::string::npos);
  REQUIRE(sh(mcp_cmd(b, "topic create seg --segment-bytes 8192 --segment-ms 5000")).exit_code == 0);
  r = sh(mcp_cmd(b, "topic describe seg"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("segment_bytes 8192, segment_ms 5000") != std::string::npos);
  // Defaults when not given.
  REQUIRE(sh(mcp_cmd(b, "topic create plain")).exit_code == 0);
  r = sh(mcp_cmd(b, "topic describe plain"));
  CHECK(r.out.find("segment_bytes 268435456, segment_ms 604800000") != std::string::npos);
}

TEST_CASE("pub prints PARTITION:OFFSET per line in input order; sub reads them back") {
  mcp::test::broker_process b;
  REQUIRE(sh(mcp_cmd(b, "topic create t --partitions 2")).exit_code == 0);
  auto r = sh("printf 'one\\ntwo\\nthree\\nfour\\n' | " + mcp_cmd(b, "pub t --acks"));
  CHECK(r.exit_code == 0);
  // Round robin over 2 partitions: 0:0, 1:0, 0:1, 1:1.
  CHECK(r.out == "0:0\n1:0\n0:1\n1:1\n");
  r = sh(mcp_cmd(b, "sub t --partition 0 --count 2"));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "one\nthree\n");
  r = sh(mcp_cmd(b, "sub t --count 4 --timeout-ms 2000"));
  CHECK(r.exit_code == 0);
  for (const char* v : {"one\n", "two\n", "three\n", "four\n"}) CHECK(r.out.find(v) != std::string::npos);
  r = sh(mcp_cmd(b, "sub t --partition 1 --from 1 --count 1 --format json"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"partition\":1,\"offset\":1,") != std::string::npos);
  CHECK(r.out.find("\"value\":\"four\"") != std::string::npos);
  // From a timestamp: everything was appended after 1 (ms since the epoch), nothing after 2^62.
  r = sh(mcp_cmd(b, "sub t --partition 0 --from @1 --count 2"));
  CHECK(r.exit_code == 0);
  CHECK(r.out == "one\nthree\n");
  r = sh(mcp_cmd(b, "sub t --partition 0 --from @4611686018427387904 --timeout-ms 300"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  // Without --count, sub exits after --timeout-ms with no new message.
  r = sh(mcp_cmd(b, "sub t --partition 0 --from latest --timeout-ms 300"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
}

TEST_CASE("pub with a key sends every message to the same partition") {
  mcp::test::broker_process b;
  REQUIRE(sh(mcp_cmd(b, "topic create k --partitions 4")).exit_code == 0);
  auto r = sh("printf 'x\\ny\\nz\\n' | " + mcp_cmd(b, "pub k --key user-7 --acks"));
  CHECK(r.exit_code == 0);
  REQUIRE(r.out.size() >= 2);
  const std::string p = r.out.substr(0, r.out.find(':'));
  CHECK(r.out == p + ":0\n" + p + ":1\n" + p + ":2\n");
}

TEST_CASE("clear errors: unknown topic, bad partition, bad broker address, no broker") {
  mcp::test::broker_process b;
  auto r = sh("echo hi | " + mcp_cmd(b, "pub nope"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("no topic 'nope'") != std::string::npos);
  REQUIRE(sh(mcp_cmd(b, "topic create t --partitions 1")).exit_code == 0);
  r = sh("echo hi | " + mcp_cmd(b, "pub t --partition 5"));
  CHECK(r.exit_code == 2);
  r = sh(std::string(std::getenv("MCP_BIN")) + " topic list --broker nonsense");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("not HOST:PORT") != std::string::npos);
  r = sh(std::string(std::getenv("MCP_BIN")) + " topic list --broker 127.0.0.1:1");
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("connect") != std::string::npos);
}

TEST_CASE("pub --acks prints each line's offset as soon as it is acknowledged, before the input ends") {
  mcp::test::broker_process b;
  REQUIRE(sh(mcp_cmd(b, "topic create live --partitions 1 --durability none")).exit_code == 0);
  // The second line comes 1.5 s after the first; the first ack must not wait for it.
  // Each ack line is stamped with the time (ms) it reached the reader.
  const auto r = sh("{ echo one; sleep 1.5; echo two; } | " + mcp_cmd(b, "pub live --acks") +
                    " | while read -r l; do echo \"$l $(date +%s%3N)\"; done");
  CHECK(r.exit_code == 0);
  std::istringstream in(r.out);
  std::string ack1, ack2;
  long long t1 = 0, t2 = 0;
  in >> ack1 >> t1 >> ack2 >> t2;
  CHECK(ack1 == "0:0");
  CHECK(ack2 == "0:1");
  CHECK(t2 - t1 >= 1000);
}

TEST_CASE("sub --group: members of one group share the records, each printed once and acked; another group sees all") {
  mcp::test::broker_process b;
  REQUIRE(sh(mcp_cmd(b, "topic create work --partitions 2")).exit_code == 0);
  REQUIRE(sh("printf 'a\\nb\\nc\\nd\\ne\\nf\\n' | " + mcp_cmd(b, "pub work")).exit_code == 0);
  auto lines = [](const std::string& out) {
    std::multiset<std::string> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);) v.insert(l);
    return v;
  };
  auto first = sh(mcp_cmd(b, "sub work --group crew --count 3 --timeout-ms 3000"));
  CHECK(first.exit_code == 0);
  auto second = sh(mcp_cmd(b, "sub work --group crew --count 3 --timeout-ms 3000"));
  CHECK(second.exit_code == 0);
  auto both = lines(first.out);
  const auto more = lines(second.out);
  CHECK(both.size() == 3);
  CHECK(more.size() == 3);
  both.insert(more.begin(), more.end());
  CHECK(both == std::multiset<std::string>{"a", "b", "c", "d", "e", "f"});
  // Everything was acked: nothing is left for the group.
  auto rest = sh(mcp_cmd(b, "sub work --group crew --timeout-ms 500"));
  CHECK(rest.exit_code == 0);
  CHECK(rest.out.empty());
  // Another group gets every record, as JSON with its partition and offset.
  auto other = sh(mcp_cmd(b, "sub work --group audit --timeout-ms 1000 --format json"));
  CHECK(other.exit_code == 0);
  CHECK(lines(other.out).size() == 6);
  CHECK(other.out.find("\"value\":\"f\"") != std::string::npos);
  // Bad combinations are usage errors.
  CHECK(sh(mcp_cmd(b, "sub work --group crew --partition 1")).exit_code == 2);
  CHECK(sh(mcp_cmd(b, "sub work --group crew --from 3")).exit_code == 2);
  auto unknown = sh(mcp_cmd(b, "sub nosuch --group crew --timeout-ms 500"));
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.find("UNKNOWN_TOPIC") != std::string::npos);
}

TEST_CASE("group list and describe show a group's members, positions and lag") {
  mcp::test::broker_process b;
  REQUIRE(sh(mcp_cmd(b, "topic create jobs --partitions 2")).exit_code == 0);
  REQUIRE(sh("printf 'a\\nb\\nc\\nd\\ne\\nf\\n' | " + mcp_cmd(b, "pub jobs")).exit_code == 0);
  auto r = sh(mcp_cmd(b, "group list"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("jobs") == std::string::npos);  // no group yet

  // A member that holds two leases and acks nothing.
  auto conn = b.connect();
  mcp::fb::SubscribeT s;
  s.topic = "jobs";
  s.group = "crew";
  s.credit = 2;
  s.start = mcp::fb::StartPosition::Earliest;
  std::vector<std::byte> out;
  mcp::codec::append_control(out, mcp::codec::opcode::subscribe, 5, s);
  REQUIRE(conn.send_bytes(out));
  auto ok = conn.read_frame();
  REQUIRE(ok.has_value());
  REQUIRE(ok->header.op == mcp::codec::opcode::ok);
  auto d = conn.read_frame();
  REQUIRE(d.has_value());
  REQUIRE(d->header.op == mcp::codec::opcode::delivery);

  r = sh(mcp_cmd(b, "group list"));
  CHECK(r.exit_code == 0);
  // group, topic, members, lag in records (3 per partition, none acked), dead-lettered.
  CHECK(row_starting(r.out, "crew") == std::vector<std::string>{"crew", "jobs", "1", "6", "0"});
  r = sh(mcp_cmd(b, "group describe crew"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("group crew on topic jobs: 1 members") != std::string::npos);
  // partition, committed, next new, end, leased, waiting, redelivered, dead, lag records, lag seconds:
  // the member holds 2 leases on one partition; the other partition is not started yet.
  const std::string parts = r.out.substr(r.out.find("partition"));
  const auto p0 = row_starting(parts, "0");
  const auto p1 = row_starting(parts, "1");
  REQUIRE(p0.size() == 10);
  REQUIRE(p1.size() == 10);
  CHECK(std::stoi(p0[4]) + std::stoi(p1[4]) == 2);
  for (const auto* p : {&p0, &p1}) {
    CHECK((*p)[1] == "0");
    CHECK((*p)[3] == "3");
    CHECK((*p)[8] == "3");
    CHECK(std::stod((*p)[9]) >= 0.0);
  }
  r = sh(mcp_cmd(b, "group describe nobody"));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("no group 'nobody'") != std::string::npos);
  r = sh(mcp_cmd(b, "group describe"));
  CHECK(r.exit_code == 2);
}
