#include "tools/bench/histogram.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

using mcp::bench::histogram;

TEST_CASE("small values are exact; every value lies in its bucket; buckets are contiguous") {
  for (std::uint64_t v = 0; v < 64; ++v) CHECK(histogram::upper_bound_of(histogram::index_of(v)) == v);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 40 + 20);
    const unsigned idx = histogram::index_of(v);
    CHECK(histogram::upper_bound_of(idx) >= v);
    if (idx > 0) CHECK(histogram::upper_bound_of(idx - 1) < v);
  }
}

TEST_CASE("percentiles are within 1/64 of the exact ones") {
  auto h = std::make_unique<histogram>();
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(5.0, 1.5);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::uint64_t>(d(rng));
    values.push_back(v);
    h->record(v);
  }
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    CAPTURE(q);
    const auto exact = values[static_cast<std::size_t>(q * static_cast<double>(values.size())) - 1];
    const auto got = h->percentile(q);
    CHECK(got >= exact);
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * (1.0 + 1.0 / 64) + 1);
  }
  CHECK(h->max() == values.back());
  CHECK(h->count() == values.size());
  auto merged = std::make_unique<histogram>();
  h->merge_into(*merged);
  h->merge_into(*merged);
  CHECK(merged->count() == 2 * values.size());
  CHECK(merged->percentile(0.5) == h->percentile(0.5));
}

TEST_CASE("an empty histogram reports zeros") {
  auto h = std::make_unique<histogram>();
  CHECK(h->percentile(0.99) == 0);
  CHECK(h->max() == 0);
}
