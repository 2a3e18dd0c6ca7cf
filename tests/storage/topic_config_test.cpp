#include "storage/topic_config.h"

#include <doctest/doctest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

namespace {

const std::string good =
    "format = 1\npartitions = 6\ndurability = interval:20\nretention_bytes = 1000000\n"
    "retention_ms = -1\nsegment_bytes = 65536\nsegment_ms = 60000\n";

std::string replace_line(const std::string& key, const std::string& line) {
  std::string out;
  std::size_t start = 0;
  while (start < good.size()) {
    const auto nl = good.find('\n', start);
    const std::string l = good.substr(start, nl - start);
    out += (l.rfind(key + " ", 0) == 0 ? line : l);
    if (!out.empty() && out.back() != '\n') out += '\n';
    start = nl + 1;
  }
  return out;
}

void expect_error(const std::string& text, const std::string& fragment) {
  const auto r = parse_topic_config(text, "topics/t/meta");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::corrupt);
  CHECK(r.error().message.find("topics/t/meta") != std::string::npos);
  CHECK(r.error().message.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("a topic config round-trips through its file") {
  mcp::test::temp_dir dir;
  topic_config c;
  c.partitions = 12;
  c.level = parse_durability("none").value();
  c.retention_bytes = 1 << 30;
  c.retention_ms = 86'400'000;
  c.segment_bytes = 1 << 20;
  const fs::path meta = dir.path() / "topics" / "orders" / "meta";
  fs::create_directories(meta.parent_path());
  REQUIRE(store_topic_config(meta, c).has_value());
  CHECK(load_topic_config(meta).value() == c);
  CHECK(list_topics(dir.path()) == std::vector<std::string>{"orders"});
}

TEST_CASE("the text format parses, with comments and blank lines") {
  const auto c = parse_topic_config("# orders topic\n\n" + good, "meta");
  REQUIRE(c.has_value());
  CHECK(c->partitions == 6);
  CHECK(c->level.level == durability::kind::interval);
  CHECK(c->level.interval_ms == 20);
  CHECK(c->retention_bytes == 1000000);
  CHECK(c->segment_bytes == 65536);
}

TEST_CASE("every malformed line is a clear error with file and line") {
  SUBCASE("unknown key") { expect_error(good + "colour = blue\n", ":8: unknown key 'colour'"); }
  SUBCASE("missing key") { expect_error(replace_line("segment_ms", "# gone"), "missing key 'segment_ms'"); }
  SUBCASE("duplicated key") { expect_error(good + "partitions = 3\n", ":8: 'partitions' is set twice (first on line 2)"); }
  SUBCASE("not a number") { expect_error(replace_line("partitions", "partitions = six"), ":2: partitions = 'six' is not a whole number"); }
  SUBCASE("partitions out of range") { expect_error(replace_line("partitions", "partitions = 0"), "partitions 0 is not in 1..10000"); }
  SUBCASE("segment size out of range") { expect_error(replace_line("segment_bytes", "segment_bytes = 100"), "segment_bytes 100"); }
  SUBCASE("negative retention other than -1") { expect_error(replace_line("retention_ms", "retention_ms = -5"), "retention_ms must be"); }
  SUBCASE("bad durability") { expect_error(replace_line("durability", "durability = maybe"), ":3: durability 'maybe'"); }
  SUBCASE("unsupported format") { expect_error(replace_line("format", "format = 2"), "format 2 is not supported"); }
  SUBCASE("no equals sign") { expect_error(good + "garbage\n", ":8: expected 'key = value'"); }
}

TEST_CASE("a missing meta file is not_found with its path") {
  mcp::test::temp_dir dir;
  const auto r = load_topic_config(dir.path() / "nope" / "meta");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::not_found);
  CHECK(r.error().message.find("nope") != std::string::npos);
}

TEST_CASE("store refuses an invalid config and writes nothing") {
  mcp::test::temp_dir dir;
  topic_config c;
  c.partitions = 0;
  const fs::path meta = dir.path() / "meta";
  CHECK(store_topic_config(meta, c).error().code == errc::invalid_argument);
  CHECK_FALSE(fs::exists(meta));
}
