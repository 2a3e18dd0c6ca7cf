#pragma once
// group_consumer: one member of a consumer group (docs/groups.md) over one
// connection. The broker leases it records (DELIVERY), at most `credit` unacked
// at a time; the member acks them (COMMIT) or hands them back (NACK). The API is
// described in docs/client.md "Consumer groups".
//
// Thread: a group_consumer is used by one thread at a time and has no thread of
// its own; only wakeup() may be called from any thread, at any time.
//
// Credit: the broker's credit is a window, not a budget: every ack or NACK frees
// a place in it and the broker refills it on its own. So the member keeps
// `credit` records in flight without sending CREDIT; add_credit() widens the
// window for good.
//
// Ownership: poll() returns a group_batch that owns one buffer holding the
// received RECORD frames; its records are views into that buffer, valid as long
// as the batch lives (it may outlive later polls, and may be handed to other
// threads: it is never written after poll returns it).

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/record.h"
#include "tools/client/byte_buffer.h"
#include "tools/client/errors.h"

namespace mcp::client {

// Where a group starts on a partition it has no committed position for. Once the
// group has committed there, it resumes from that position whatever this says.
struct group_start {
  enum class kind : std::uint8_t { committed, earliest, latest, timestamp };
  kind from = kind::committed;
  std::int64_t timestamp_ms = 0;

  // The group's committed position; without one, the log start (as earliest).
  static group_start committed() { return {kind::committed, 0}; }
  static group_start earliest() { return {kind::earliest, 0}; }
  // The end of the log when the group's state is created: only newer records.
  static group_start latest() { return {kind::latest, 0}; }
  // The first record whose timestamp is at or after `ms`.
  static group_start at_time(std::int64_t ms) { return {kind::timestamp, ms}; }
};

struct group_consumer_options {
  std::string host = "127.0.0.1";  // the broker's main address
  std::uint16_t port = 0;
  std::string topic;
  std::string group;
  std::uint32_t credit = 64;       // records this member may hold unacked (the window)
  group_start start = group_start::committed();
  // Group settings: they take effect only if this SUBSCRIBE creates the group's
  // state on a partition (docs/groups.md "Group settings"). 0: the broker's default.
  std::uint32_t ack_wait_ms = 0;   // broker default 30000
  std::uint32_t max_deliver = 0;   // broker default 5
  std::string client_name = "mcp-group-consumer";
  std::uint32_t connect_timeout_ms = 2000;  // connect, HELLO and SUBSCRIBE each; and close()'s default
  // A PING goes out when nothing was sent for this long, so the broker's idle
  // timeout (--idle-timeout-ms, 60 s by default) does not drop a quiet member.
  std::uint32_t ping_interval_ms = 10000;
};

// A leased record: its own fields (views into the batch's buffer), where it came
// from, and how many times it has been delivered (1: the first time).
struct group_record : codec::record_view {
  std::uint32_t partition = 0;
  std::uint16_t delivery_count = 0;
  // Which subscription of this consumer leased it: a reconnect starts a new one,
  // and acks of records from an earlier one are dropped (their leases are gone).
  std::uint64_t session = 0;
};

class group_batch {
 public:
  std::span<const group_record> records() const noexcept { return records_; }
  std::size_t size() const noexcept { return records_.size(); }
  bool empty() const noexcept { return records_.empty(); }
  auto begin() const noexcept { return records_.begin(); }
  auto end() const noexcept { return records_.end(); }
  const group_record& operator[](std::size_t i) const { return records_[i]; }

 private:
  friend class group_consumer;
  byte_buffer buffer_;  // every RECORD frame of this batch, back to back
  std::vector<group_record> records_;
};

class group_consumer {
 public:
  // Connects to host:port, says HELLO and SUBSCRIBEs. Errors: UNKNOWN_TOPIC,
  // INVALID_ARGUMENT (a bad group name, an empty topic), RESOURCE_EXHAUSTED,
  // disconnected (no broker there), timeout (no answer).
  static result<group_consumer> create(group_consumer_options opts);
  group_consumer(group_consumer&&) noexcept;
  group_consumer& operator=(group_consumer&&) noexcept;
  // close() with connect_timeout_ms.
  ~group_consumer();

  // Sends the acks and NACKs given since the last poll, then returns the records
  // leased within `timeout`: as soon as some arrived, or an empty batch when the
  // time is up or wakeup() was called. Errors: an ERROR the broker sent (its
  // code), disconnected (the connection is gone: every lease of it is released
  // by the broker), protocol, closed. After disconnected the next poll
  // reconnects and subscribes again, as a new session.
  result<group_batch> poll(std::chrono::milliseconds timeout);

  // Acks a record: buffered, and sent as one COMMIT per partition with
  // consecutive offsets merged into ranges by the next poll() or flush(). An ack
  // of a record from an earlier session, or while disconnected, is dropped
  // (the broker released its lease already): then it returns false.
  bool ack(const group_record& r);
  // Acks the records [first, last] of `partition` leased in the current session.
  bool ack(std::uint32_t partition, std::uint64_t first, std::uint64_t last);
  // Hands a record back: the broker leases it again (to any member) no sooner
  // than `delay`, or dead-letters it if it has been delivered max_deliver times.
  // Buffered, and dropped, like ack().
  bool nack(const group_record& r, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // Gives up on a record: the broker moves it to the group's dead-letter topic
  // now (header mcp.dlq.reason "rejected"), whatever its delivery count, and it
  // is not delivered again. Buffered, and dropped, like ack().
  bool reject(const group_record& r);
  // Widens the window by `records`, for good (CREDIT). Buffered like ack().
  void add_credit(std::uint32_t records);
  // Sends what is buffered now.
  result<void> flush();

  // Interrupts a poll in progress on another thread (or the next one): it
  // returns what it has, possibly nothing. Safe from any thread.
  void wakeup() noexcept;

  // Sends the buffered acks, waits (up to `timeout`) until the broker has read
  // them, and closes the connection: the broker releases every lease still held
  // at once. Later calls return closed.
  result<void> close(std::chrono::milliseconds timeout);
  result<void> close();
  // Drops the connection without sending anything buffered: to the broker this
  // member is gone as if it had crashed.
  void abort() noexcept;

  // The current session (1 after create, +1 per reconnect).
  std::uint64_t session() const noexcept;
  const group_consumer_options& options() const noexcept;

  struct state;

 private:
  explicit group_consumer(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

}  // namespace mcp::client
