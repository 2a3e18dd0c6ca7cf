#pragma once
// worker_pool: N threads that run a handler on the records a group leases
// (docs/groups.md), acking or handing back each by what the handler returns.
// The API is described in docs/client.md "Consumer groups".
//
// Threads: one I/O thread owns the pool's group_consumer (its one connection):
// it polls, puts the records on a work queue, and turns the handlers' outcomes
// into acks and NACKs. `workers` threads take records from the queue and run
// the handler, several at once: the handler must be safe to call concurrently.
// The queue is bounded by the window (workers x prefetch_per_worker): the broker
// leases no more than that, so it never holds more.
//
// Lifetime: a record passed to the handler (and its key, value and headers) is
// valid only during the call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "tools/client/errors.h"
#include "tools/client/group_consumer.h"

namespace mcp::client {

// What a handler decided about a record.
struct outcome {
  enum class kind : std::uint8_t { ok, retry, fail };
  kind what = kind::ok;
  std::chrono::milliseconds delay{0};

  // Processed: the pool acks it.
  static outcome ok() { return {kind::ok, std::chrono::milliseconds(0)}; }
  // Not now: the pool NACKs it with `delay`, so the group delivers it again (to
  // any member) no sooner than that, unless it has been delivered max_deliver
  // times, in which case the broker dead-letters it.
  static outcome retry_after(std::chrono::milliseconds delay) { return {kind::retry, delay}; }
  // Cannot be processed: the pool rejects it (group_consumer::reject) and the
  // broker moves it to `<topic>.<group>.dlq` at once, with reason "rejected";
  // it is not delivered again.
  static outcome fail() { return {kind::fail, std::chrono::milliseconds(0)}; }
};

// Runs on a worker thread, concurrently with the other workers. An exception
// that escapes it counts as outcome::fail().
using group_handler = std::function<outcome(const group_record&)>;

struct worker_pool_options {
  // Where and what to consume. `consumer.credit` is ignored: the pool's window
  // is workers x prefetch_per_worker.
  group_consumer_options consumer;
  std::uint32_t workers = 4;
  std::uint32_t prefetch_per_worker = 2;
  // Reconnects after a lost connection wait this, doubling up to max_backoff.
  std::chrono::milliseconds backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  // Called on the I/O thread with each error of the connection (it then
  // reconnects): it must be quick and must not call stop().
  std::function<void(const client_error&)> on_error;
};

struct worker_pool_stats {
  std::uint64_t received = 0;     // records leased to the pool (redeliveries included)
  std::uint64_t acked = 0;        // handler said ok, and the ack was sent
  std::uint64_t retried = 0;      // NACKed after retry_after
  std::uint64_t failed = 0;       // rejected (dead-lettered) after fail (or an exception)
  std::uint64_t dropped = 0;      // outcomes of an earlier session, or of records not started when stop() came
  std::uint64_t in_flight = 0;    // received and neither acked nor NACKed nor dropped
  std::uint64_t max_in_flight = 0;
  std::uint64_t reconnects = 0;
};

class worker_pool {
 public:
  // Subscribes (the errors of group_consumer::create), then starts the I/O
  // thread and the workers.
  static result<worker_pool> create(worker_pool_options opts, group_handler handler);
  worker_pool(worker_pool&&) noexcept;
  worker_pool& operator=(worker_pool&&) noexcept;
  // stop().
  ~worker_pool();

  // Graceful: no handler starts after this; the running ones finish and their
  // outcomes are sent, then the connection closes, which releases the records
  // that were queued but not started (they count as a delivery). Waits for the
  // running handlers however long they take. Not from a handler. Idempotent.
  void stop();

  // A snapshot; safe from any thread.
  worker_pool_stats stats() const;

  struct state;

 private:
  explicit worker_pool(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

}  // namespace mcp::client
