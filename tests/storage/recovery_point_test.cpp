// The recovery point file (storage/recovery_point.h): its codec, with every kind
// of damage a crash or a stray write can leave, and its blocking open.

#include "storage/recovery_point.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "codec/byte_order.h"
#include "codec/crc32c.h"
#include "tests/support/temp_dir.h"

using namespace mcp::storage;
namespace fs = std::filesystem;

namespace {

// Bytes 0..15 changed by `edit`, with the CRC made right again, so only the edit is wrong.
std::array<std::byte, recovery_point_size> resealed(std::uint64_t base, void (*edit)(std::byte*)) {
  auto b = encode_recovery_point(base);
  edit(b.data());
  mcp::codec::store_le<std::uint32_t>(b.data() + 16, mcp::codec::crc32c(std::span(b).first(16)));
  return b;
}

void expect_corrupt(std::span<const std::byte> bytes, const char* says) {
  auto r = decode_recovery_point(bytes);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::corrupt);
  CHECK_MESSAGE(r.error().message.find(says) != std::string::npos, r.error().message);
}

}  // namespace

TEST_CASE("a recovery point round-trips, with the byte layout of docs/storage.md") {
  for (const std::uint64_t base : {0ull, 1ull, 123456789ull, ~0ull}) {
    const auto b = encode_recovery_point(base);
    CHECK(mcp::codec::load_le<std::uint32_t>(b.data()) == 0x5052434D);
    CHECK(static_cast<char>(b[0]) == 'M');
    CHECK(static_cast<char>(b[3]) == 'P');
    CHECK(mcp::codec::load_le<std::uint16_t>(b.data() + 4) == 1);
    CHECK(mcp::codec::load_le<std::uint64_t>(b.data() + 8) == base);
    CHECK(decode_recovery_point(b).value() == base);
  }
}

TEST_CASE("a damaged recovery point is corrupt, saying how") {
  const auto good = encode_recovery_point(4242);
  expect_corrupt(std::span(good).first(0), "0 bytes");
  expect_corrupt(std::span(good).first(19), "19 bytes");
  std::array<std::byte, recovery_point_size + 1> longer{};
  std::copy(good.begin(), good.end(), longer.begin());
  expect_corrupt(longer, "21 bytes");
  for (std::size_t i = 0; i < recovery_point_size; ++i) {
    CAPTURE(i);
    auto b = good;
    b[i] ^= std::byte{0x10};
    CHECK_FALSE(decode_recovery_point(b).has_value());
  }
  expect_corrupt(resealed(1, [](std::byte* p) { p[0] = std::byte{'X'}; }), "bad magic");
  expect_corrupt(resealed(1, [](std::byte* p) { mcp::codec::store_le<std::uint16_t>(p + 4, 2); }), "version 2");
  expect_corrupt(resealed(1, [](std::byte* p) { p[7] = std::byte{1}; }), "reserved");
  expect_corrupt(std::array<std::byte, recovery_point_size>{}, "bad magic");
}

TEST_CASE("reading a recovery point: none, good, or corrupt naming the file") {
  mcp::test::temp_dir dir;
  CHECK_FALSE(read_recovery_point(dir.path()).value().has_value());
  const int dir_fd = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(dir_fd >= 0);
  auto fd = open_recovery_point(dir.path(), dir_fd, 77, std::nullopt, false);
  REQUIRE(fd.has_value());
  ::close(*fd);
  CHECK(read_recovery_point(dir.path()).value() == 77u);
  // Unchanged: not written again; changed: written in place.
  fd = open_recovery_point(dir.path(), dir_fd, 90, 77, false);
  REQUIRE(fd.has_value());
  ::close(*fd);
  CHECK(read_recovery_point(dir.path()).value() == 90u);
  ::close(dir_fd);
  {
    std::ofstream out(dir.path() / recovery_point_name, std::ios::binary | std::ios::trunc);
    out << "garbage, much longer than a recovery point";
  }
  auto r = read_recovery_point(dir.path());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::corrupt);
  CHECK(r.error().message.find((dir.path() / recovery_point_name).string()) != std::string::npos);
}
