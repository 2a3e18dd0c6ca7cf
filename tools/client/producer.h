#pragma once
// producer: asynchronous, batching, idempotent publishing to one topic.
// The API and its guarantees are described in docs/client.md.
//
// Threads: publish(), flush() and close() may be called from any number of
// threads. One background I/O thread per producer owns the sockets (one per
// broker shard that owns a partition of the topic); user threads hand records
// over through a mutex-protected batch per partition. Callbacks and futures are
// completed on the I/O thread: a callback must not block and must not call
// flush() or close() of its own producer.
//
// Idempotence: the producer draws a random non-zero producer_id at creation;
// each record carries it and a per-partition sequence (0, 1, 2, ...). A batch,
// once sealed, is never changed, so a resend after a reconnect carries the same
// records with the same sequences and a deduplicating broker stores it once.
//
// Ordering: records of one partition are stored in publish order (batches of a
// partition are sent in order, at most 16 unacknowledged at a time, and resent
// in the same order after a reconnect).

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "codec/record.h"
#include "tools/client/errors.h"

namespace mcp::client {

struct producer_options {
  std::string host = "127.0.0.1";  // the broker's main address (bootstrap)
  std::uint16_t port = 0;
  std::string topic;
  std::string client_name = "mcp-producer";
  std::size_t batch_bytes = 64 << 10;          // seal a partition's batch once it holds this many bytes
  std::uint32_t linger_ms = 5;                 // ... or once its first record has waited this long
  std::size_t max_in_flight_bytes = 32 << 20;  // bytes published and not yet acknowledged (or failed)
  bool block_when_full = true;                 // full: publish waits for room; false: fails with queue_full
  std::uint32_t delivery_timeout_ms = 30000;   // a record not acknowledged by then fails with timeout
  std::uint32_t connect_timeout_ms = 2000;     // per connection attempt and per request of the handshake
  std::uint32_t backoff_initial_ms = 50;       // reconnect backoff: full jitter under initial * 2^n ...
  std::uint32_t backoff_max_ms = 5000;         // ... capped here
};

// One record to publish. Views: the bytes are copied into a batch before
// publish() returns, so the caller may reuse them at once.
struct message {
  std::span<const std::byte> key;    // empty: round robin over partitions (unless `partition` is set)
  std::span<const std::byte> value;
  std::int64_t timestamp_ms = 0;     // 0: the broker stamps its append time
  std::span<const codec::record_header> headers;
  std::optional<std::uint32_t> partition;  // explicit partition; overrides the key
};

// Where an acknowledged record was stored.
struct delivery {
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;   // UINT64_MAX: stored, but the broker no longer knows where (DUPLICATE_SEQUENCE)
  bool duplicate = false;     // the broker had stored this record before (a resent batch)
};
inline constexpr std::uint64_t unknown_offset = UINT64_MAX;

using delivery_result = result<delivery>;
using delivery_callback = std::function<void(const delivery_result&)>;

class producer {
 public:
  // Fetches the topic's metadata from host:port (UNKNOWN_TOPIC if there is no such
  // topic, disconnected if the broker cannot be reached) and starts the I/O thread.
  static result<producer> create(producer_options opts);

  producer(producer&&) noexcept;
  producer& operator=(producer&&) noexcept;
  // close() with delivery_timeout_ms.
  ~producer();

  // Queues one record. The future completes with its partition and offset once
  // the broker has acknowledged it, or with the reason it could not be delivered.
  // Failing fast (queue_full, closed, message_too_large, invalid partition)
  // returns an already completed future.
  std::future<delivery_result> publish(const message& m);
  // The same with a callback, run on the I/O thread, instead of a future. The
  // result says whether the record was accepted; when it was not, the callback
  // is not called.
  result<void> publish(const message& m, delivery_callback on_delivery);

  // Seals every open batch and waits until every record published before the call
  // has completed (acknowledged or failed); records published meanwhile are not
  // waited for. timeout if that takes longer.
  result<void> flush(std::chrono::milliseconds timeout);
  // flush(), then stops the I/O thread; records still pending after `timeout`
  // fail with closed. Later publishes fail with closed. Idempotent.
  result<void> close(std::chrono::milliseconds timeout);

  std::uint64_t producer_id() const noexcept;
  std::uint32_t partitions() const noexcept;
  // The partition a record with this key goes to: partition_for_key (tools/client/partitioner.h).
  std::uint32_t partition_of(std::span<const std::byte> key) const noexcept;

  struct state;  // shared with the I/O thread; defined in producer.cpp

 private:
  explicit producer(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

}  // namespace mcp::client
