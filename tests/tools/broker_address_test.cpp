#include "tools/client/broker_address.h"

#include <doctest/doctest.h>

using mcp::client::broker_address;
using mcp::client::parse_broker;

TEST_CASE("parse_broker takes HOST:PORT, [v6]:PORT and :PORT") {
  broker_address a;
  REQUIRE(parse_broker("example.org:9093", a));
  CHECK(a.host == "example.org");
  CHECK(a.port == 9093);
  REQUIRE(parse_broker("[::1]:7000", a));
  CHECK(a.host == "::1");
  CHECK(a.port == 7000);
  REQUIRE(parse_broker(":65535", a));
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 65535);
}

TEST_CASE("parse_broker refuses what is not HOST:PORT and leaves the address as it was") {
  for (const char* bad : {"", "nohost", "h:", "h:0", "h:65536", "h:99999", "h:123456", "h:abc", "h:12a", "h:-1", "h: 80"}) {
    CAPTURE(bad);
    broker_address a{"keep", 1};
    CHECK_FALSE(parse_broker(bad, a));
    CHECK(a.host == "keep");
    CHECK(a.port == 1);
  }
}
