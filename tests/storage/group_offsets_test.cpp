#include "storage/group_offsets.h"

#include <doctest/doctest.h>

#include <fstream>

#include "storage/atomic_file.h"
#include "tests/support/bytes.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

namespace {

void corrupt_byte(const fs::path& p, std::size_t at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x01));
}

}  // namespace

TEST_CASE("committed offsets round-trip through a reopen") {
  mcp::test::temp_dir dir;
  {
    auto s = group_offsets_store::open(dir.path());
    REQUIRE(s.has_value());
    REQUIRE(s->set("workers", "jobs", 0, 100).has_value());
    REQUIRE(s->set("workers", "jobs", 1, 7).has_value());
    REQUIRE(s->set("audit", "jobs", 0, 3).has_value());
    REQUIRE(s->flush("workers").has_value());
    REQUIRE(s->flush("audit").has_value());
    REQUIRE(s->set("workers", "jobs", 0, 150).has_value());  // not flushed: not durable
  }
  auto s = group_offsets_store::open(dir.path());
  REQUIRE(s.has_value());
  CHECK(s->committed("workers", "jobs", 0) == 100u);
  CHECK(s->committed("workers", "jobs", 1) == 7u);
  CHECK(s->committed("audit", "jobs", 0) == 3u);
  CHECK_FALSE(s->committed("workers", "jobs", 2).has_value());
  CHECK_FALSE(s->committed("nobody", "jobs", 0).has_value());
  CHECK(s->groups() == std::vector<std::string>{"audit", "workers"});
  REQUIRE(s->remove_group("audit").has_value());
  auto again = group_offsets_store::open(dir.path());
  REQUIRE(again.has_value());
  CHECK(again->groups() == std::vector<std::string>{"workers"});
}

TEST_CASE("a torn, flipped or foreign offsets file is an error naming the file") {
  mcp::test::temp_dir dir;
  {
    auto s = group_offsets_store::open(dir.path());
    REQUIRE(s->set("g", "t", 0, 42).has_value());
    REQUIRE(s->flush("g").has_value());
  }
  const fs::path file = dir.path() / "groups" / "g" / "offsets";
  const auto size = fs::file_size(file);
  SUBCASE("truncated") { fs::resize_file(file, size - 3); }
  SUBCASE("flipped byte in an entry") { corrupt_byte(file, size - 2); }
  SUBCASE("wrong magic") { corrupt_byte(file, 0); }
  SUBCASE("unknown version") { corrupt_byte(file, 4); }
  SUBCASE("shorter than the header") { fs::resize_file(file, 10); }
  auto s = group_offsets_store::open(dir.path());
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == errc::corrupt);
  CHECK(s.error().message.find(file.string()) != std::string::npos);
}

TEST_CASE("a temp file left by a crash before the rename is ignored and the old positions stand") {
  mcp::test::temp_dir dir;
  {
    auto s = group_offsets_store::open(dir.path());
    REQUIRE(s->set("g", "t", 0, 42).has_value());
    REQUIRE(s->flush("g").has_value());
  }
  const fs::path file = dir.path() / "groups" / "g" / "offsets";
  std::ofstream(temp_path_for(file), std::ios::binary) << "half-written garbage";
  auto s = group_offsets_store::open(dir.path());
  REQUIRE(s.has_value());
  CHECK(s->committed("g", "t", 0) == 42u);
  CHECK_FALSE(fs::exists(temp_path_for(file)));
}

TEST_CASE("group and topic names are validated") {
  mcp::test::temp_dir dir;
  auto s = group_offsets_store::open(dir.path());
  REQUIRE(s.has_value());
  for (const char* bad : {"", ".", "..", "a/b", "with space", "tab\t"}) {
    CAPTURE(bad);
    const auto r = s->set(bad, "t", 0, 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK_FALSE(s->set("g", bad, 0, 1).has_value());
  }
  CHECK_FALSE(s->set(std::string(250, 'g'), "t", 0, 1).has_value());
  CHECK(s->set(std::string(249, 'g'), "t", 0, 1).has_value());
  CHECK(s->flush("never-set").error().code == errc::not_found);
}

// docs/storage.md "Group offsets": the worked example is what encode() writes.
TEST_CASE("the offsets file example in docs/storage.md matches the encoder") {
  group_offsets_store::positions m;
  m[{"jobs", 1}] = 1234;
  const auto bytes = group_offsets_store::encode(m);
  const auto expected = mcp::test::hex_bytes(
      "4d 43 47 4f 01 00 00 00 01 00 00 00 20 ce 24 02"
      "04 00 6a 6f 62 73 01 00 00 00 d2 04 00 00 00 00 00 00");
  CHECK(bytes == expected);
  const auto back = group_offsets_store::decode(bytes, "example");
  REQUIRE(back.has_value());
  CHECK(*back == m);
}
