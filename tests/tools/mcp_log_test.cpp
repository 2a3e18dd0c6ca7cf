// `mcp log dump|verify` as a user runs it: the real binary, its output and exit code.

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "storage/log_format.h"
#include "storage/partition_log.h"
#include "storage/sync_file_io.h"
#include "tests/support/record_batch.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace mcp::storage;

namespace {

using ran = mcp::test::command_result;

ran run_mcp(const std::string& args) {
  const char* bin = std::getenv("MCP_BIN");
  REQUIRE(bin != nullptr);
  return mcp::test::run_command(std::string(bin) + " " + args);
}

void fill(const fs::path& dir) {
  sync_file_io io;
  log_options o;
  o.segment_bytes = 4096;
  o.level.level = durability::kind::none;
  auto log = partition_log::open(dir, o, io, 1);
  REQUIRE(log.has_value());
  for (int i = 0; i < 10; ++i) {
    auto b = mcp::test::make_batch(4, 20, "hello-");
    REQUIRE((*log)->append(b.bytes, 4, 1700000000000, nullptr).has_value());
  }
}

}  // namespace

TEST_CASE("mcp log verify: exit 0 and a summary for a sound log, exit 1 with the position for a corrupt one") {
  mcp::test::temp_dir dir;
  fill(dir.path() / "orders" / "0");
  auto ok = run_mcp("log verify " + dir.path().string());
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("40 records") != std::string::npos);

  const fs::path seg = dir.path() / "orders" / "0" / (segment_stem(0) + ".log");
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  auto bad = run_mcp("log verify " + dir.path().string());
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("CORRUPT") != std::string::npos);
  CHECK(bad.out.find(seg.string()) != std::string::npos);
  CHECK(bad.out.find("at byte") != std::string::npos);
}

TEST_CASE("mcp log dump prints offset, timestamp and a value preview per record") {
  mcp::test::temp_dir dir;
  fill(dir.path());
  auto r = run_mcp("log dump " + dir.path().string() + " --limit 3");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("offset=0 timestamp=1700000000000") != std::string::npos);
  CHECK(r.out.find("value=\"hello-0") != std::string::npos);
  CHECK(r.out.find("offset=2 ") != std::string::npos);
  CHECK(r.out.find("offset=3 ") == std::string::npos);
}

TEST_CASE("mcp log with bad usage or an empty directory says so") {
  mcp::test::temp_dir dir;
  CHECK(run_mcp("log").exit_code == 2);
  CHECK(run_mcp("log frobnicate x").exit_code == 2);
  auto r = run_mcp("log verify " + dir.path().string());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("no segment files") != std::string::npos);
}

TEST_CASE("mcp log dump stops at a corrupt record: exit 1, the records before it, and where it stopped") {
  mcp::test::temp_dir dir;
  fill(dir.path());
  // Records are 20-byte values: flip a byte inside the third record of the first segment.
  auto whole = run_mcp("log dump " + dir.path().string());
  REQUIRE(whole.exit_code == 0);
  const fs::path seg = dir.path() / (segment_stem(0) + ".log");
  const auto size = fs::file_size(seg);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size * 2 / 3));
    const int c = f.peek();
    f.seekp(static_cast<std::streamoff>(size * 2 / 3));
    f.put(static_cast<char>(c ^ 0x40));
  }
  auto bad = run_mcp("log dump " + dir.path().string());
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("offset=0 ") != std::string::npos);
  CHECK(bad.out.find("mcp log dump: stopped:") != std::string::npos);
  CHECK(bad.out.find(seg.string()) != std::string::npos);
  CHECK(bad.out.size() < whole.out.size());
}
