#include "storage/durability.h"

#include <doctest/doctest.h>

using namespace mcp::storage;

TEST_CASE("durability levels parse and print back") {
  CHECK(parse_durability("sync").value() == durability{durability::kind::sync, 0});
  CHECK(parse_durability("none").value() == durability{durability::kind::none, 0});
  CHECK(parse_durability("interval:250").value() == durability{durability::kind::interval, 250});
  for (const char* s : {"sync", "none", "interval:1", "interval:3600000"}) {
    CHECK(to_string(parse_durability(s).value()) == s);
  }
}

TEST_CASE("bad durability strings say what is accepted") {
  for (const char* s : {"", "SYNC", "always", "interval", "interval:", "interval:0", "interval:3600001",
                        "interval:-5", "interval:12ms", "interval: 5"}) {
    CAPTURE(s);
    const auto d = parse_durability(s);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().code == errc::invalid_argument);
    CHECK(d.error().message.find(s) != std::string::npos);
  }
  CHECK(parse_durability("often").error().message.find("sync, none, interval:MS") != std::string::npos);
}
