// client::connection against a scripted peer on loopback: the bytes a broker
// would send are written by the test, so broken ones can be too.

#include "tools/client/client.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "codec/frame_encoder.h"
#include "codec/frame_format.h"
#include "codec/record.h"

using namespace mcp;
using namespace std::chrono_literals;

namespace {

// A listening socket on 127.0.0.1 and the one peer it accepts.
struct scripted_peer {
  int listener = -1;
  int fd = -1;
  std::uint16_t port = 0;

  scripted_peer() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~scripted_peer() {
    if (fd >= 0) ::close(fd);
    ::close(listener);
  }
  client::connection connect() {
    auto c = client::connection::connect("127.0.0.1", port);
    REQUIRE(c.has_value());
    fd = ::accept(listener, nullptr, nullptr);
    REQUIRE(fd >= 0);
    return std::move(*c);
  }
  void send(std::span<const std::byte> b) const {
    while (!b.empty()) {
      const ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      b = b.subspan(static_cast<std::size_t>(n));
    }
  }
  void hang_up() {
    ::close(fd);
    fd = -1;
  }
};

// `count` RECORD frames with offsets first.., each with a value of `value_size` bytes.
std::vector<std::byte> record_run(std::uint64_t first, std::uint32_t count, std::size_t value_size) {
  std::vector<std::byte> out;
  const std::string value(value_size, 'v');
  for (std::uint32_t i = 0; i < count; ++i) {
    codec::record_input in;
    in.timestamp_ms = 1000 + i;
    in.value = std::as_bytes(std::span(value.data(), value.size()));
    const std::size_t at = out.size();
    out.resize(at + codec::record_frame_size(in));
    const auto frame = std::span(out).subspan(at);
    codec::encode_record(frame, in);
    codec::stamp_record(frame, first + i, in.timestamp_ms);
  }
  return out;
}

std::vector<std::byte> ping_frame(std::uint32_t corr) {
  std::vector<std::byte> out;
  std::array<std::byte, codec::ping_size> body{};
  codec::encode_ping(body, 42);
  codec::append_frame(out, codec::opcode::ping, corr, body);
  return out;
}

}  // namespace

TEST_CASE("read_records reads a run in pieces, small and large, and the stream goes on after it") {
  // 100 records of ~1 KiB: the rest of the run is over 64 KiB at first (straight
  // into the caller's buffer), then under it (through the connection's buffer).
  const auto run = record_run(500, 100, 1000);
  REQUIRE(run.size() > (128u << 10) / 2);
  const auto ping = ping_frame(9);
  scripted_peer peer;
  auto c = peer.connect();
  std::thread writer([&] {
    const std::size_t cuts[] = {37, 5000, 70000, run.size() - 10};
    std::size_t at = 0;
    for (const auto cut : cuts) {
      peer.send(std::span(run).subspan(at, cut - at));
      at = cut;
      std::this_thread::sleep_for(5ms);
    }
    // The end of the run and the next frame in one write.
    std::vector<std::byte> last(run.begin() + static_cast<std::ptrdiff_t>(at), run.end());
    last.insert(last.end(), ping.begin(), ping.end());
    peer.send(last);
  });
  client::byte_buffer out = {std::byte{7}};  // what the buffer held before is kept
  auto last = c.read_records(&out, static_cast<std::uint32_t>(run.size()), 100, 5000);
  writer.join();
  REQUIRE_MESSAGE(last.has_value(), last.error().message);
  CHECK(*last == 599);
  REQUIRE(out.size() == run.size() + 1);
  CHECK(out[0] == std::byte{7});
  CHECK(std::equal(run.begin(), run.end(), out.begin() + 1));
  auto f = c.next_frame(1000);
  REQUIRE(f.has_value());
  CHECK(f->header.op == codec::opcode::ping);
  CHECK(f->header.correlation == 9);
}

TEST_CASE("read_records takes bytes the connection has already received, and can drop the run") {
  auto stream = ping_frame(1);
  const auto run = record_run(0, 3, 10);
  stream.insert(stream.end(), run.begin(), run.end());
  const auto ping = ping_frame(2);
  stream.insert(stream.end(), ping.begin(), ping.end());
  scripted_peer peer;
  auto c = peer.connect();
  peer.send(stream);
  auto f = c.next_frame(1000);  // receives everything in one go
  REQUIRE(f.has_value());
  CHECK(f->header.correlation == 1);
  auto last = c.read_records(nullptr, static_cast<std::uint32_t>(run.size()), 3, 1000);
  REQUIRE_MESSAGE(last.has_value(), last.error().message);
  CHECK(*last == 2);
  f = c.next_frame(1000);
  REQUIRE(f.has_value());
  CHECK(f->header.correlation == 2);
}

TEST_CASE("read_records: a run that does not match its header is a protocol error, and the buffer is as before") {
  const auto run = record_run(10, 3, 50);
  const auto size = static_cast<std::uint32_t>(run.size());
  struct bad_case {
    const char* name;
    std::vector<std::byte> bytes;
    std::uint32_t byte_count;
    std::uint32_t record_count;
    const char* says;
  };
  auto flipped = run;
  flipped[codec::header_size + 3] ^= std::byte{0x01};
  auto not_record = run;
  not_record[codec::opcode_offset] = static_cast<std::byte>(codec::opcode::ping);
  const auto three_and_a_bit = record_run(10, 4, 50);
  std::vector<bad_case> cases = {
      {"fewer records than announced", run, size, 4, "4 records, 3 arrived"},
      {"more records than announced", run, size, 2, "2 records, 3 arrived"},
      {"a record runs past the byte count",
       std::vector<std::byte>(three_and_a_bit.begin(), three_and_a_bit.begin() + size + 20), size + 20, 4,
       "runs past"},
      {"a flipped bit", flipped, size, 3, "crc"},
      {"a frame that is not a RECORD", not_record, size, 3, "expected a RECORD frame"},
  };
  for (const auto& bc : cases) {
    CAPTURE(bc.name);
    scripted_peer peer;
    auto c = peer.connect();
    peer.send(bc.bytes);
    client::byte_buffer out = {std::byte{1}, std::byte{2}};
    auto last = c.read_records(&out, bc.byte_count, bc.record_count, 1000);
    REQUIRE_FALSE(last.has_value());
    CHECK(last.error().code == client::local_error::protocol);
    CHECK_MESSAGE(last.error().message.find(bc.says) != std::string::npos, last.error().message);
    CHECK(out == client::byte_buffer{std::byte{1}, std::byte{2}});
  }
}

TEST_CASE("read_records: counts that cannot be records are refused before anything is read") {
  scripted_peer peer;
  auto c = peer.connect();
  client::byte_buffer out;
  for (const auto& [bytes, records] : {std::pair{10u, 5u}, std::pair{0u, 1u}, std::pair{100u, 0u}}) {
    CAPTURE(bytes);
    CAPTURE(records);
    auto last = c.read_records(&out, bytes, records, 100);
    REQUIRE_FALSE(last.has_value());
    CHECK(last.error().code == client::local_error::protocol);
    CHECK(out.empty());
  }
  auto empty = c.read_records(&out, 0, 0, 100);
  REQUIRE(empty.has_value());
  CHECK(*empty == 0);
}

TEST_CASE("read_records: the broker hanging up mid-run, or going quiet, is an error, not a hang") {
  const auto run = record_run(0, 4, 100);
  {
    scripted_peer peer;
    auto c = peer.connect();
    peer.send(std::span(run).first(run.size() / 2));
    peer.hang_up();
    auto last = c.read_records(nullptr, static_cast<std::uint32_t>(run.size()), 4, 2000);
    REQUIRE_FALSE(last.has_value());
    CHECK(last.error().code == client::local_error::disconnected);
  }
  {
    scripted_peer peer;
    auto c = peer.connect();
    peer.send(std::span(run).first(run.size() / 2));
    const auto t0 = std::chrono::steady_clock::now();
    auto last = c.read_records(nullptr, static_cast<std::uint32_t>(run.size()), 4, 200);
    REQUIRE_FALSE(last.has_value());
    CHECK(last.error().code == client::local_error::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 >= 190ms);
  }
}
