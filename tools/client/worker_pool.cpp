#include "tools/client/worker_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace mcp::client {

namespace {

using codec::error_code;

// A record on the work queue. The batch is shared by its records and freed by
// whichever thread lets go of its last one.
struct work_item {
  std::shared_ptr<const group_batch> batch;
  std::size_t index = 0;
};

// A handler's verdict on its way back to the I/O thread. Only the record's
// partition, offset and session are used there: its views may be gone by then.
struct done_item {
  group_record record;
  outcome verdict;
};

}  // namespace

struct worker_pool::state {
  worker_pool_options opts;
  group_handler handler;
  std::optional<group_consumer> consumer;  // the I/O thread's; workers only call wakeup()

  mutable std::mutex mu;
  std::condition_variable work_ready;   // workers: a record was queued, or stopping
  std::condition_variable io_wake;      // the I/O thread's backoff: workers_done
  std::deque<work_item> queue;
  std::vector<done_item> done;
  bool stopping = false;      // no handler starts any more
  bool workers_done = false;  // every worker has exited: send the last outcomes and close
  worker_pool_stats stats;

  std::mutex stop_mu;  // one stop() at a time
  bool stopped = false;
  std::thread io;
  std::vector<std::thread> workers;

  void work() {
    for (;;) {
      work_item w;
      {
        std::unique_lock lk(mu);
        work_ready.wait(lk, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        w = std::move(queue.front());
        queue.pop_front();
      }
      const group_record& r = (*w.batch)[w.index];
      outcome o;
      try {
        o = handler(r);
      } catch (...) {
        o = outcome::fail();
      }
      bool first = false;
      {
        std::lock_guard lk(mu);
        first = done.empty();
        done.push_back({r, o});
      }
      w.batch.reset();
      // One wakeup per burst: the I/O thread takes every outcome waiting when it wakes.
      if (first) consumer->wakeup();
    }
  }

  // Turns outcomes into acks, NACKs and rejections (sent by the next poll or close).
  void apply(std::vector<done_item>& ds) {
    if (ds.empty()) return;
    std::uint64_t acked = 0, retried = 0, failed = 0, dropped = 0;
    for (const auto& d : ds) {
      // Dropped when its lease went with an earlier connection.
      switch (d.verdict.what) {
        case outcome::kind::ok: ++(consumer->ack(d.record) ? acked : dropped); break;
        case outcome::kind::retry: ++(consumer->nack(d.record, d.verdict.delay) ? retried : dropped); break;
        case outcome::kind::fail: ++(consumer->reject(d.record) ? failed : dropped); break;
      }
    }
    std::lock_guard lk(mu);
    stats.acked += acked;
    stats.retried += retried;
    stats.failed += failed;
    stats.dropped += dropped;
    stats.in_flight -= ds.size();
    ds.clear();
  }

  // Queued records of an earlier session: their leases are gone, do not run them.
  void purge_locked(std::uint64_t session) {
    const auto before = queue.size();
    std::erase_if(queue, [&](const work_item& w) { return (*w.batch)[w.index].session != session; });
    stats.dropped += before - queue.size();
    stats.in_flight -= before - queue.size();
  }

  void run_io() {
    std::uint64_t session = consumer->session();
    auto backoff = opts.backoff;
    std::vector<done_item> ds;
    for (;;) {
      bool finish = false;
      {
        std::lock_guard lk(mu);
        ds.swap(done);
        finish = workers_done;
      }
      apply(ds);
      if (finish) break;
      auto b = consumer->poll(std::chrono::milliseconds(500));
      if (!b) {
        if (opts.on_error) opts.on_error(b.error());
        std::unique_lock lk(mu);
        io_wake.wait_for(lk, backoff, [&] { return workers_done; });
        backoff = std::min(backoff * 2, opts.max_backoff);
        continue;
      }
      backoff = opts.backoff;
      std::lock_guard lk(mu);
      if (consumer->session() != session) {
        session = consumer->session();
        ++stats.reconnects;
        purge_locked(session);
      }
      if (b->empty()) continue;
      auto shared = std::make_shared<const group_batch>(std::move(*b));
      for (std::size_t i = 0; i < shared->size(); ++i) queue.push_back({shared, i});
      stats.received += shared->size();
      stats.in_flight += shared->size();
      stats.max_in_flight = std::max(stats.max_in_flight, stats.in_flight);
      work_ready.notify_all();
    }
    // What was queued and not started is released by the broker when the
    // connection closes, just after the outcomes sent here.
    (void)consumer->close();
    std::lock_guard lk(mu);
    stats.dropped += queue.size();
    stats.in_flight -= queue.size();
    queue.clear();
  }

  void stop() {
    std::lock_guard once(stop_mu);
    if (stopped) return;
    stopped = true;
    {
      std::lock_guard lk(mu);
      stopping = true;
    }
    work_ready.notify_all();
    for (auto& t : workers) t.join();
    {
      std::lock_guard lk(mu);
      workers_done = true;
    }
    io_wake.notify_all();
    consumer->wakeup();
    io.join();
  }
};

result<worker_pool> worker_pool::create(worker_pool_options opts, group_handler handler) {
  if (opts.workers == 0 || opts.prefetch_per_worker == 0) {
    return unexpected{client_error{error_code::invalid_argument, "a worker pool needs workers and a prefetch"}};
  }
  if (!handler) return unexpected{client_error{error_code::invalid_argument, "a worker pool needs a handler"}};
  const std::uint64_t window = std::uint64_t{opts.workers} * opts.prefetch_per_worker;
  if (window > UINT32_MAX) {
    return unexpected{client_error{error_code::invalid_argument,
                                   fmt::format("workers x prefetch_per_worker = {} is too many", window)}};
  }
  opts.consumer.credit = static_cast<std::uint32_t>(window);
  auto c = group_consumer::create(opts.consumer);
  if (!c) return unexpected{c.error()};
  auto s = std::make_unique<state>();
  s->opts = std::move(opts);
  s->handler = std::move(handler);
  s->consumer.emplace(std::move(*c));
  state* raw = s.get();
  s->io = std::thread([raw] { raw->run_io(); });
  for (std::uint32_t i = 0; i < raw->opts.workers; ++i) s->workers.emplace_back([raw] { raw->work(); });
  return worker_pool(std::move(s));
}

worker_pool::worker_pool(std::unique_ptr<state> s) : s_(std::move(s)) {}
worker_pool::worker_pool(worker_pool&&) noexcept = default;
worker_pool& worker_pool::operator=(worker_pool&& o) noexcept {
  if (this != &o) {
    if (s_) s_->stop();
    s_ = std::move(o.s_);
  }
  return *this;
}

worker_pool::~worker_pool() {
  if (s_) s_->stop();
}

void worker_pool::stop() { s_->stop(); }

worker_pool_stats worker_pool::stats() const {
  std::lock_guard lk(s_->mu);
  return s_->stats;
}

}  // namespace mcp::client
