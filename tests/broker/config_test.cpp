#include "broker/config.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <vector>

using namespace mcp::broker;

namespace {

parse_outcome parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"mcp-broker"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_args(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("defaults are sane and complete") {
  const auto o = parse({});
  REQUIRE(o.config.has_value());
  CHECK(o.config->listen_port == 9092);
  CHECK(o.config->listen_host == "127.0.0.1");
  CHECK(o.config->shards >= 1);
  CHECK(o.config->durability == "sync");
  CHECK(o.config->max_frame == 8u << 20);
  CHECK(o.config->delivery == delivery_mode::zero_copy);
  CHECK(o.config->writeback_bytes == 4u << 20);
}

TEST_CASE("every flag is parsed") {
  const auto o = parse({"--data-dir", "/tmp/x", "--listen", "[::1]:7000", "--shards", "3", "--durability",
                        "interval:50", "--max-frame", "65536", "--log-level", "debug", "--delivery", "copy",
                        "--writeback-bytes", "0", "--copy-max-bytes", "4096"});
  REQUIRE(o.config.has_value());
  CHECK(o.config->data_dir == "/tmp/x");
  CHECK(o.config->listen_host == "::1");
  CHECK(o.config->listen_port == 7000);
  CHECK(o.config->shards == 3);
  CHECK(o.config->durability == "interval:50");
  CHECK(o.config->max_frame == 65536);
  CHECK(o.config->level == log_level::debug);
  CHECK(o.config->delivery == delivery_mode::copy);
  CHECK(o.config->writeback_bytes == 0);
  CHECK(o.config->copy_max_bytes == 4096);
}

TEST_CASE("--help lists every flag with its default and exits 0") {
  const auto o = parse({"--help"});
  CHECK_FALSE(o.config.has_value());
  CHECK(o.exit_code == 0);
  for (const char* flag : {"--data-dir", "--listen", "--shards", "--durability", "--max-frame", "--log-level",
                           "--delivery", "--max-connections", "--idle-timeout-ms", "--max-inflight-bytes",
                           "--writeback-bytes", "--copy-max-bytes"}) {
    CAPTURE(flag);
    CHECK(o.message.find(flag) != std::string::npos);
  }
  CHECK(o.message.find("9092") != std::string::npos);
}

TEST_CASE("bad flags and values are clear errors with exit code 2") {
  for (const auto& args : std::vector<std::vector<const char*>>{
           {"--no-such-flag"},
           {"--listen", "nonsense"},
           {"--listen", "host:99999"},
           {"--shards", "-1"},
           {"--durability", "sometimes"},
           {"--durability", "interval:"},
           {"--max-frame", "10"},
           {"--log-level", "loud"},
           {"--delivery", "pigeon"},
           {"--recv-buffers", "1000"},
           {"--writeback-bytes", "-1"},
           {"--writeback-bytes", "2147483648"},
           {"--copy-max-bytes", "-1"},
           {"--copy-max-bytes", "2097152"},
       }) {
    std::vector<const char*> argv{"mcp-broker"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto o = parse_args(static_cast<int>(argv.size()), argv.data());
    CAPTURE(args[0]);
    CHECK_FALSE(o.config.has_value());
    CHECK(o.exit_code == 2);
    CHECK(o.message.find("mcp-broker: ") == 0);
  }
}
