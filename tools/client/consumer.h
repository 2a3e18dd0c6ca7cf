#pragma once
// consumer: reads one partition, or every partition, of a topic as a stream.
// The API is described in docs/client.md.
//
// Thread: a consumer is used by one thread at a time; it has no thread of its
// own. poll() sends one long-poll FETCH per partition (to the partition's owning
// shard, on that shard's own port) and waits for whichever answers first.
//
// Ownership: poll() returns a record_batch that owns one buffer holding the
// received RECORD frames; the records it hands out are views into that buffer,
// valid as long as the batch lives (it may outlive later polls).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/record.h"
#include "tools/client/byte_buffer.h"
#include "tools/client/errors.h"

namespace mcp::client {

// Where a consumer starts reading a partition.
struct start_position {
  enum class kind : std::uint8_t { earliest, latest, offset, timestamp };
  kind from = kind::earliest;
  std::int64_t value = 0;  // the offset, or the timestamp in ms

  static start_position earliest() { return {kind::earliest, 0}; }
  static start_position latest() { return {kind::latest, 0}; }
  static start_position at_offset(std::uint64_t o) { return {kind::offset, static_cast<std::int64_t>(o)}; }
  // The first record whose timestamp is at or after `ms`.
  static start_position at_time(std::int64_t ms) { return {kind::timestamp, ms}; }
};

struct consumer_options {
  std::string host = "127.0.0.1";  // the broker's main address (bootstrap)
  std::uint16_t port = 0;
  std::string topic;
  std::optional<std::uint32_t> partition;  // empty: every partition of the topic (or of `partitions`)
  std::vector<std::uint32_t> partitions;   // with no `partition`: read these; empty: every partition
  start_position start = start_position::earliest();
  std::string client_name = "mcp-consumer";
  std::uint32_t max_wait_ms = 500;           // long poll: how long the broker holds a FETCH at the end of the log
  std::uint32_t max_bytes = 1 << 20;         // per partition per FETCH
  std::uint32_t connect_timeout_ms = 2000;
  // One FETCH per partition that the broker keeps answering as records arrive
  // (codec::fetch_flag_follow: a push, no round trip per answer), instead of one
  // FETCH per answer. Needs max_wait_ms > 0 (it is then plain FETCHes). Off by
  // default: the broker then answers each append on its own, which flat out costs
  // it more work per byte than one FETCH per answer (~12 % fewer msgs/s in
  // mcp-bench, docs/client.md); for a consumer that keeps up and wants fewer
  // round trips.
  bool follow = false;
  // Following: record bytes per partition the broker may push beyond what poll()
  // has handed out (a windowed follow, docs/protocol.md "Windowed following"): a
  // consumer that falls behind stops the pushes, and its next answer is a large
  // one. At least max_bytes (the first answer's).
  std::uint32_t follow_window_bytes = 4 << 20;
};

// A received record: the record's own fields (views into the batch's buffer) and its partition.
struct consumer_record : codec::record_view {
  std::uint32_t partition = 0;
};

class record_batch {
 public:
  std::span<const consumer_record> records() const noexcept { return records_; }
  std::size_t size() const noexcept { return records_.size(); }
  bool empty() const noexcept { return records_.empty(); }
  auto begin() const noexcept { return records_.begin(); }
  auto end() const noexcept { return records_.end(); }
  const consumer_record& operator[](std::size_t i) const { return records_[i]; }

 private:
  friend class consumer;
  byte_buffer buffer_;  // every RECORD frame of this batch, back to back
  std::vector<consumer_record> records_;
};

class consumer {
 public:
  // Fetches metadata (UNKNOWN_TOPIC, UNKNOWN_PARTITION, disconnected...) and
  // resolves earliest/latest to offsets. Connections open on the first poll.
  static result<consumer> create(consumer_options opts);
  consumer(consumer&&) noexcept;
  consumer& operator=(consumer&&) noexcept;
  ~consumer();

  // The records that arrive within `timeout` (an empty batch if none did). Each
  // partition's records are in offset order, and the consumer's position moves
  // past them. A lost connection is reported once as disconnected; the next
  // poll reconnects (metadata again) and goes on from the same positions.
  result<record_batch> poll(std::chrono::milliseconds timeout);

  // Moves a partition's position; the next poll reads from there.
  result<void> seek(std::uint32_t partition, start_position where);
  // The next offset to be read from `partition`, if known (a timestamp start is
  // resolved by the first FETCH).
  std::optional<std::uint64_t> position(std::uint32_t partition) const;
  // The partitions this consumer reads.
  std::vector<std::uint32_t> assignment() const;

  struct state;

 private:
  explicit consumer(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

}  // namespace mcp::client
