// storage/run_marker.h: how the previous run on a data directory ended.

#include "storage/run_marker.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;
using mcp::test::temp_dir;

namespace {
std::string marker_text(const fs::path& dir) {
  std::ifstream in(run_marker::path_in(dir));
  std::string s;
  std::getline(in, s);
  return s;
}
void write_marker(const fs::path& dir, const std::string& text) {
  std::ofstream out(run_marker::path_in(dir), std::ios::trunc);
  out << text;
}
}  // namespace

TEST_CASE("the kernel gives a boot id") { CHECK(run_marker::current_boot_id().size() >= 32); }

TEST_CASE("a first run, a clean stop, a process that died, a machine that went down") {
  temp_dir dir;
  {
    auto m = run_marker::begin(dir.path(), "boot-a");
    REQUIRE(m.has_value());
    CHECK(m->previous() == last_stop::clean);  // no marker: a new directory
    CHECK(marker_text(dir.path()) == "boot-a");
    REQUIRE(m->end_clean().has_value());
    CHECK_FALSE(fs::exists(run_marker::path_in(dir.path())));
  }
  {
    auto m = run_marker::begin(dir.path(), "boot-a");
    REQUIRE(m.has_value());
    CHECK(m->previous() == last_stop::clean);
    // No end_clean: killed.
  }
  {
    auto m = run_marker::begin(dir.path(), "boot-a");
    REQUIRE(m.has_value());
    CHECK(m->previous() == last_stop::process_died);  // same boot: the page cache survived
  }
  {
    auto m = run_marker::begin(dir.path(), "boot-b");
    REQUIRE(m.has_value());
    CHECK(m->previous() == last_stop::machine_went_down);  // the marker is from another boot
    CHECK(marker_text(dir.path()) == "boot-b");
  }
}

TEST_CASE("a marker that cannot prove the machine stayed up counts as the machine going down") {
  temp_dir dir;
  SUBCASE("empty") { write_marker(dir.path(), ""); }
  SUBCASE("unknown boot id") { write_marker(dir.path(), "unknown\n"); }
  auto m = run_marker::begin(dir.path(), "boot-a");
  REQUIRE(m.has_value());
  CHECK(m->previous() == last_stop::machine_went_down);
  // A kernel without a boot id never proves it either.
  auto n = run_marker::begin(dir.path(), "");
  REQUIRE(n.has_value());
  CHECK(n->previous() == last_stop::machine_went_down);
}

TEST_CASE("a marker that cannot be written is an error naming it") {
  temp_dir dir;
  const fs::path missing = dir.path() / "no" / "such";
  auto m = run_marker::begin(missing, "boot-a");
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error().message.find("running") != std::string::npos);
}
