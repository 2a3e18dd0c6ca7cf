// Broker-run retention (broker/shard.cpp run_retention): whole sealed segments
// beyond a topic's retention are deleted while the broker serves, readers below
// the new log start get OUT_OF_RANGE, and groups skip what was deleted.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/bytes.h"

using namespace mcp;
using mcp::test::as_bytes;
using mcp::test::broker_process;

namespace {

// CREATE_TOPIC with small segments, which the client's create_topic does not expose.
void create_small_segment_topic(client::connection& c, const std::string& name, std::int64_t segment_bytes,
                                std::int64_t retention_bytes, std::int64_t retention_ms) {
  fb::CreateTopicT ct;
  ct.name = name;
  ct.config = std::make_unique<fb::TopicConfigT>();
  ct.config->partitions = 1;
  ct.config->segment_bytes = segment_bytes;
  ct.config->retention_bytes = retention_bytes;
  ct.config->retention_ms = retention_ms;
  std::vector<std::byte> out;
  codec::append_control(out, codec::opcode::create_topic, 41, ct);
  REQUIRE(c.send_bytes(out));
  auto f = c.read_frame();
  REQUIRE(f.has_value());
  REQUIRE(f->header.op == codec::opcode::ok);
}

void publish_values(client::connection& c, const std::string& topic, int batches, int per_batch) {
  const std::string value(200, 'r');
  for (int b = 0; b < batches; ++b) {
    std::vector<codec::record_input> recs(static_cast<std::size_t>(per_batch));
    for (auto& r : recs) r.value = as_bytes(value);
    REQUIRE(c.publish(topic, 0, recs));
  }
}

std::size_t segment_files(const broker_process& b, const std::string& topic) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(b.data_dir() / "topics" / topic / "0")) {
    if (e.path().extension() == ".log") ++n;
  }
  return n;
}

// Segments leave the log at once, their files a little later: the shard unlinks
// them through its ring, one after the other. Waits up to 5 s for at most `n`.
std::size_t wait_for_segment_files_at_most(const broker_process& b, const std::string& topic, std::size_t n) {
  std::size_t files = segment_files(b, topic);
  for (int i = 0; i < 100 && files > n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    files = segment_files(b, topic);
  }
  return files;
}

std::uint64_t log_start(client::connection& c, const std::string& topic) {
  auto md = c.metadata({topic});
  REQUIRE(md.has_value());
  REQUIRE(md->topics.size() == 1);
  return md->topics[0]->partitions[0]->log_start_offset;
}

// Waits up to 5 s for the broker's once-a-second retention pass to move the log start.
std::uint64_t wait_for_log_start_above(client::connection& c, const std::string& topic, std::uint64_t above) {
  std::uint64_t s = 0;
  for (int i = 0; i < 100; ++i) {
    s = log_start(c, topic);
    if (s > above) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return s;
}

std::int64_t size_bytes(client::connection& c, const std::string& topic) {
  auto md = c.metadata({topic});
  REQUIRE(md.has_value());
  REQUIRE(md->topics.size() == 1);
  return md->topics[0]->partitions[0]->size_bytes;
}

// Waits up to 5 s for the partition's bytes to fall to `bytes`; returns the last size seen.
std::int64_t wait_for_size_at_most(client::connection& c, const std::string& topic, std::int64_t bytes) {
  std::int64_t size = 0;
  for (int i = 0; i < 100; ++i) {
    size = size_bytes(c, topic);
    if (size <= bytes) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return size;
}

}  // namespace

TEST_CASE("retention by bytes deletes whole old segments while serving; the active one stays") {
  broker_process b;
  auto c = b.connect();
  // 8 KiB segments (a 50-record batch of ~256-byte records fills one), keep 32 KiB:
  // 2,000 records make 40 segments.
  create_small_segment_topic(c, "ret", 8192, 32768, -1);
  publish_values(c, "ret", 40, 50);
  // A slow build may see a retention pass while it still publishes, and another
  // after: read the log start only once what is left fits in retention_bytes.
  const std::int64_t size = wait_for_size_at_most(c, "ret", 32768);
  CHECK(size <= 32768);
  CHECK(size > 8192);
  const std::uint64_t start = log_start(c, "ret");
  CHECK(start > 0);
  // Whole segments go, oldest first, until what is left fits in retention_bytes:
  // two sealed ones of ~13 KB and the active one.
  const std::size_t files = wait_for_segment_files_at_most(b, "ret", 4);
  CHECK(files >= 2);
  CHECK(files <= 4);
  // Below the log start: OUT_OF_RANGE; at it: the oldest kept record.
  auto below = c.fetch("ret", 0, 0);
  REQUIRE_FALSE(below.has_value());
  CHECK(below.error().code == codec::error_code::out_of_range);
  auto at = c.fetch("ret", 0, start);
  if (!at.has_value()) MESSAGE("fetch at the log start ", start, ": ", at.error().message);
  REQUIRE(at.has_value());
  REQUIRE_FALSE(at->records.empty());
  CHECK(at->records.front().offset == start);
  CHECK(at->header.log_start_offset == start);
  // The log end did not move: 2,000 records were appended, and the next offset is 2,000.
  CHECK(at->header.high_watermark == 2000);
}

TEST_CASE("retention by age deletes segments older than retention_ms; a topic without retention keeps all") {
  broker_process b;
  auto c = b.connect();
  create_small_segment_topic(c, "aged", 8192, -1, 300);
  create_small_segment_topic(c, "kept", 8192, -1, -1);
  publish_values(c, "aged", 10, 50);
  publish_values(c, "kept", 10, 50);
  const std::size_t kept_before = segment_files(b, "kept");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const std::uint64_t start = wait_for_log_start_above(c, "aged", 0);
  CHECK(start > 0);
  // Every sealed segment is older than 300 ms: only the active one is left.
  CHECK(wait_for_segment_files_at_most(b, "aged", 1) == 1);
  CHECK(log_start(c, "kept") == 0);
  CHECK(segment_files(b, "kept") == kept_before);
}

TEST_CASE("a topic that stops receiving data ages out whole: the log start reaches the log end") {
  broker_process b;
  auto c = b.connect();
  create_small_segment_topic(c, "quiet", 1 << 20, -1, 300);  // one segment holds everything
  publish_values(c, "quiet", 5, 20);
  REQUIRE(segment_files(b, "quiet") == 1);
  // The active segment is rolled once its records are past 300 ms, then deleted.
  CHECK(wait_for_log_start_above(c, "quiet", 99) == 100);
  CHECK(wait_for_segment_files_at_most(b, "quiet", 1) == 1);  // the new, empty active segment
  // It goes on from there.
  publish_values(c, "quiet", 1, 3);
  auto f = c.fetch("quiet", 0, 100, 1 << 20);
  REQUIRE(f.has_value());
  CHECK(f->header.record_count == 3);
  CHECK(f->header.first_offset == 100);
}

TEST_CASE("a group behind the retention point skips what was deleted and goes on from the log start") {
  broker_process b;
  auto c = b.connect();
  create_small_segment_topic(c, "gq", 8192, 16384, -1);
  // A member joins first and takes one record (so the group has state), then stops taking.
  auto m = b.connect();
  fb::SubscribeT s;
  s.topic = "gq";
  s.group = "slow";
  s.credit = 1;
  s.start = fb::StartPosition::Earliest;
  std::vector<std::byte> out;
  codec::append_control(out, codec::opcode::subscribe, 9, s);
  REQUIRE(m.send_bytes(out));
  auto ok = m.read_frame();
  REQUIRE(ok.has_value());
  REQUIRE(ok->header.op == codec::opcode::ok);
  publish_values(c, "gq", 20, 50);
  const std::uint64_t start = wait_for_log_start_above(c, "gq", 0);
  REQUIRE(start > 1);
  // The first delivery (offset 0) was leased before retention; it is still sent whole.
  auto d = m.read_frame();
  REQUIRE(d.has_value());
  REQUIRE(d->header.op == codec::opcode::delivery);
  const auto del = codec::decode_delivery(d->body);
  REQUIRE(del.has_value());
  CHECK(del->first_offset == 0);
  auto rec = m.read_frame();
  REQUIRE(rec.has_value());
  REQUIRE(rec->header.op == codec::opcode::record);
  // Ack it: the next delivery jumps to the log start.
  std::vector<std::byte> body;
  const codec::offset_range r{0, 0};
  codec::append_commit(body, 9, 0, std::span(&r, 1));
  out.clear();
  codec::append_frame(out, codec::opcode::commit, 10, body);
  REQUIRE(m.send_bytes(out));
  auto next = m.read_frame();
  REQUIRE(next.has_value());
  REQUIRE(next->header.op == codec::opcode::delivery);
  const auto del2 = codec::decode_delivery(next->body);
  REQUIRE(del2.has_value());
  CHECK(del2->first_offset >= start);
  auto info = c.groups("slow");
  REQUIRE(info.has_value());
  REQUIRE(info->groups.size() == 1);
  CHECK(info->groups[0]->partitions[0]->committed >= start);
}

namespace {

// Descriptors of the broker process that point at deleted files.
std::size_t deleted_fds(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().find("(deleted)") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("a reply still being sent from a segment that retention deletes arrives whole; its descriptor is closed after") {
  broker_process b({.shards = 1, .durability = "none"});
  auto c = b.connect();
  create_small_segment_topic(c, "retr", 4 << 20, 4 << 20, -1);
  publish_values(c, "retr", 400, 50);  // ~5 MB: one full sealed segment and the active one
  // A reader that asks for the first segment four times and does not read: 16 MiB
  // of replies, more than the sockets buffer, so the last ones wait in the broker's
  // send queue, each holding a duplicate of the segment's descriptor.
  auto slow = b.connect();
  std::vector<std::byte> req;
  for (std::uint32_t corr = 7; corr < 11; ++corr) {
    std::vector<std::byte> body;
    codec::append_fetch(body, {0, 0, 4u << 20, 0, 0, "retr"});
    codec::append_frame(req, codec::opcode::fetch, corr, body);
  }
  REQUIRE(slow.send_bytes(req));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  publish_values(c, "retr", 400, 50);  // retention now drops the first segment(s)
  REQUIRE(wait_for_log_start_above(c, "retr", 0) > 0);
  const auto first_log = b.data_dir() / "topics" / "retr" / "0" / "00000000000000000000.log";
  for (int i = 0; i < 100 && std::filesystem::exists(first_log); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE_FALSE(std::filesystem::exists(first_log));
  if (deleted_fds(b.pid()) == 0) MESSAGE("the replies fit in the socket buffers: no descriptor of the deleted file was held");
  // Every reply comes whole, from the deleted file.
  for (std::uint32_t corr = 7; corr < 11; ++corr) {
    CAPTURE(corr);
    auto h = slow.next_frame(5000);
    REQUIRE(h.has_value());
    REQUIRE(h->header.op == codec::opcode::records);
    CHECK(h->header.correlation == corr);
    const auto rb = codec::decode_records(h->body);
    REQUIRE(rb.has_value());
    CHECK(rb->first_offset == 0);
    client::byte_buffer bytes;
    auto last = slow.read_records(&bytes, rb->byte_count, rb->record_count, 5000);
    REQUIRE_MESSAGE(last.has_value(), last.error().message);
    CHECK(*last == rb->record_count - 1);
  }
  // Once sent, the duplicate is closed (through the shard's ring when it is the
  // deleted file's last reference): the broker holds no deleted file.
  std::size_t left = deleted_fds(b.pid());
  for (int i = 0; i < 100 && left > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    left = deleted_fds(b.pid());
  }
  CHECK(left == 0);
}
