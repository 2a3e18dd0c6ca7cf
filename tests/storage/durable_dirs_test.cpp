#include "storage/durable_dirs.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

TEST_CASE("create_directories_durably makes every missing level and is a no-op for an existing directory") {
  mcp::test::temp_dir dir;
  const fs::path deep = dir.path() / "topics" / "orders" / "7";
  REQUIRE(create_directories_durably(deep).has_value());
  CHECK(fs::is_directory(deep));
  CHECK(fs::is_directory(dir.path() / "topics" / "orders"));
  // Again: nothing to make, still fine; a sibling below an existing level too.
  CHECK(create_directories_durably(deep).has_value());
  CHECK(create_directories_durably(dir.path() / "topics" / "orders" / "8").has_value());
  CHECK(fs::is_directory(dir.path() / "topics" / "orders" / "8"));
}

TEST_CASE("create_directories_durably names a component that is a file") {
  mcp::test::temp_dir dir;
  std::ofstream(dir.path() / "topics") << "not a directory";
  const auto r = create_directories_durably(dir.path() / "topics" / "orders");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find((dir.path() / "topics").string()) != std::string::npos);
  CHECK(r.error().message.find("not a directory") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "topics" / "orders"));
}

TEST_CASE("sync_directory syncs an existing directory and reports a missing one with its path") {
  mcp::test::temp_dir dir;
  CHECK(sync_directory(dir.path()).has_value());
  const auto r = sync_directory(dir.path() / "gone");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::io_error);
  CHECK(r.error().message.find("gone") != std::string::npos);
}
