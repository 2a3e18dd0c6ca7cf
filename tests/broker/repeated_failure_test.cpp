#include "broker/repeated_failure.h"

#include <doctest/doctest.h>

using mcp::broker::repeated_failure;

TEST_CASE("a repeated failure is logged once, counted, and its end reported with the count") {
  repeated_failure f;
  CHECK(f.failed("g1", "disk full"));
  CHECK_FALSE(f.failed("g1", "disk full"));
  CHECK_FALSE(f.failed("g1", "disk full"));
  const auto n = f.succeeded("g1");
  REQUIRE(n.has_value());
  CHECK(*n == 2);
  // Over: a success without failures says nothing, and the next failure is logged again.
  CHECK_FALSE(f.succeeded("g1").has_value());
  CHECK(f.failed("g1", "disk full"));
}

TEST_CASE("keys are apart, and a different failure of a key is logged") {
  repeated_failure f;
  CHECK(f.failed("g1", "disk full"));
  CHECK(f.failed("g2", "disk full"));
  CHECK_FALSE(f.failed("g2", "disk full"));
  CHECK(f.failed("g1", "permission denied"));
  CHECK_FALSE(f.failed("g1", "permission denied"));
  CHECK(*f.succeeded("g1") == 1);
  CHECK(*f.succeeded("g2") == 1);
}
