#include "codec/crc32c.h"

#include <doctest/doctest.h>

#include <array>
#include <random>
#include <string_view>
#include <vector>

#include "tests/support/bytes.h"

using namespace mcp::codec;
using mcp::test::as_bytes;

namespace {

using crc_fn = std::uint32_t (*)(std::span<const std::byte>, std::uint32_t) noexcept;

struct impl {
  const char* name;
  crc_fn fn;
  bool available;
};

std::vector<impl> implementations() {
  return {{"portable", &crc32c_portable, true},
          {"hw", &crc32c_hw, crc32c_hw_available()},
          {"dispatch", &crc32c, true}};
}

}  // namespace

TEST_CASE("standard CRC32C vectors, every implementation") {
  std::array<std::byte, 32> zeros{};
  std::array<std::byte, 32> ones{};
  ones.fill(std::byte{0xFF});
  std::array<std::byte, 32> ascending{};
  for (std::size_t i = 0; i < 32; ++i) ascending[i] = static_cast<std::byte>(i);
  for (const auto& im : implementations()) {
    if (!im.available) {
      MESSAGE("skipped " << im.name << ": no SSE4.2 on this CPU");
      continue;
    }
    CAPTURE(im.name);
    CHECK(im.fn(as_bytes("123456789"), 0) == 0xE3069283u);
    CHECK(im.fn(zeros, 0) == 0x8A9136AAu);
    CHECK(im.fn(ones, 0) == 0x62A8AB43u);
    CHECK(im.fn(ascending, 0) == 0x46DD794Eu);
    CHECK(im.fn({}, 0) == 0u);
  }
}

TEST_CASE("extending over a split equals the CRC of the whole, at every split point") {
  std::mt19937_64 rng(1);
  const auto buf = mcp::test::random_bytes(rng, 7000);  // crosses the 3 KiB interleaved blocks
  for (const auto& im : implementations()) {
    if (!im.available) continue;
    CAPTURE(im.name);
    const std::uint32_t whole = im.fn(buf, 0);
    for (std::size_t cut = 0; cut <= buf.size(); cut += (cut < 200 ? 1 : 97)) {
      CAPTURE(cut);
      const std::span<const std::byte> s(buf);
      CHECK(im.fn(s.subspan(cut), im.fn(s.first(cut), 0)) == whole);
    }
  }
}

TEST_CASE("hardware and portable agree on every length, alignment and on large buffers") {
  if (!crc32c_hw_available()) {
    MESSAGE("skipped: no SSE4.2 on this CPU");
    return;
  }
  std::mt19937_64 rng(2);
  const auto buf = mcp::test::random_bytes(rng, (1u << 20) + 64);
  const std::span<const std::byte> s(buf);
  for (std::size_t align = 0; align < 16; ++align) {
    for (std::size_t len = 0; len <= 1100; ++len) {
      if (crc32c_hw(s.subspan(align, len), 0) != crc32c_portable(s.subspan(align, len), 0)) {
        FAIL("mismatch at align " << align << " len " << len);
      }
    }
  }
  for (const std::size_t len : {std::size_t{3072}, std::size_t{3073}, std::size_t{64} << 10, (std::size_t{1} << 20) + 3}) {
    CAPTURE(len);
    CHECK(crc32c_hw(s.first(len), 0x12345678u) == crc32c_portable(s.first(len), 0x12345678u));
  }
  CHECK(std::string_view(crc32c_implementation()) == "sse4.2");
}

TEST_CASE("crc32c_shifter::shift is the register after n zero bytes, for every n up to 300 and some large ones") {
  std::mt19937 rng(7);
  crc32c_shifter cached;
  std::vector<std::byte> zeros(70000);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{4096},
                        std::size_t{65537}, std::size_t{69999}}) {
    const std::uint32_t reg = rng();
    // The register after n zero bytes from `reg`: crc32c() starts from ~crc and ends with ~.
    const std::uint32_t want = ~crc32c_portable(std::span(zeros).first(n), ~reg);
    crc32c_shifter fresh;
    CHECK(fresh.shift(reg, n) == want);
    CHECK(cached.shift(reg, n) == want);
  }
  for (std::size_t n = 0; n <= 300; ++n) {
    const std::uint32_t reg = rng();
    const std::uint32_t want = ~crc32c_portable(std::span(zeros).first(n), ~reg);
    CHECK(cached.shift(reg, n) == want);
    CHECK(cached.shift(reg, n) == want);  // the cached constant
  }
}

TEST_CASE("crc32c_patch gives the CRC of the changed message without reading the rest") {
  std::mt19937 rng(11);
  crc32c_shifter shifter;
  for (std::size_t len : {std::size_t{24}, std::size_t{25}, std::size_t{40}, std::size_t{141}, std::size_t{3000},
                          std::size_t{10000}}) {
    std::vector<std::byte> msg(len);
    for (auto& b : msg) b = static_cast<std::byte>(rng());
    for (std::size_t dlen : {std::size_t{0}, std::size_t{1}, std::size_t{8}, std::size_t{24}}) {
      std::vector<std::byte> delta(dlen);
      for (auto& b : delta) b = static_cast<std::byte>(rng());
      std::vector<std::byte> changed = msg;
      for (std::size_t i = 0; i < dlen; ++i) changed[i] ^= delta[i];
      CHECK(crc32c_patch(crc32c(msg), delta, len, shifter) == crc32c(changed));
      // A wrong CRC stays wrong.
      CHECK(crc32c_patch(crc32c(msg) ^ 1u, delta, len, shifter) != crc32c(changed));
    }
  }
}
