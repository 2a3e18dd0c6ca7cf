#include "tools/client/producer.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "codec/byte_order.h"
#include "codec/control.h"
#include "codec/data_messages.h"
#include "codec/frame_encoder.h"
#include "tools/client/backoff.h"
#include "tools/client/client.h"
#include "tools/client/partitioner.h"
#include "tools/client/topic_route.h"

namespace mcp::client {

namespace {

using clock = std::chrono::steady_clock;
using codec::error_code;

// The most batches of one partition on the wire without an ACK (the idempotence
// contract with the broker: it remembers this many per producer and partition).
constexpr std::size_t max_batches_in_flight = 16;

client_error err(codec::error_code code, std::string msg) { return {code, std::move(msg)}; }

// How one record reports back: a promise or a callback.
struct completion {
  std::promise<delivery_result> promise;
  delivery_callback callback;  // set: use it instead of the promise

  void complete(const delivery_result& r) {
    if (callback) {
      // A throwing callback must not take the I/O thread (and every other record) down.
      try {
        callback(r);
      } catch (...) {
      }
    } else {
      promise.set_value(r);
    }
  }
};

// A PUBLISH frame under construction (open) or sealed. Once sealed its bytes never
// change except the correlation id in the header, which the CRC does not cover:
// that is what makes a resend a duplicate the broker can recognise.
struct batch {
  std::uint32_t partition = 0;
  std::uint32_t first_sequence = 0;
  std::uint32_t count = 0;
  std::vector<std::byte> frame;  // frame header, PUBLISH prefix, RECORD frames
  std::vector<completion> records;
  std::size_t charged_bytes = 0;  // against max_in_flight_bytes
  clock::time_point opened;       // first record: when linger ends
  clock::time_point deadline;     // first record's delivery deadline (the earliest in the batch)
  std::uint32_t correlation = 0;  // of the latest send
  std::uint64_t number = 0;       // seal order over all partitions, for flush()
};

void set_correlation(std::vector<std::byte>& frame, std::uint32_t correlation) {
  codec::store_le<std::uint32_t>(frame.data() + codec::correlation_offset, correlation);
}

}  // namespace

struct producer::state {
  producer_options opts;
  std::uint32_t partition_count = 0;
  std::uint64_t producer_id = 0;
  std::size_t max_record_bytes = 0;  // the largest RECORD frame one PUBLISH frame can carry
  std::size_t prefix_bytes = 0;      // frame header + PUBLISH prefix
  int wake_fd = -1;

  // --- shared with user threads, under mu --------------------------------------
  std::mutex mu;
  std::condition_variable changed;  // in-flight bytes released, records completed, closing
  std::vector<std::unique_ptr<batch>> open;  // per partition
  std::vector<std::uint32_t> next_sequence;  // per partition
  std::deque<std::unique_ptr<batch>> sealed; // for the I/O thread, per partition in sequence order
  std::size_t in_flight_bytes = 0;
  std::uint64_t pending_records = 0;         // accepted and not yet completed
  std::uint64_t batches_sealed = 0;
  std::set<std::uint64_t> unfinished;        // numbers of sealed batches not yet completed
  std::uint32_t round_robin = 0;
  bool closing = false;                      // publish refuses
  bool stop = false;                         // the I/O thread exits
  bool closed = false;                       // close() finished

  // --- owned by the I/O thread -----------------------------------------------------
  struct partition_queue {
    std::deque<std::unique_ptr<batch>> batches;  // sequence order; the first `sent` are on the wire
    std::size_t sent = 0;
  };
  std::deque<partition_queue> queues;  // a deque: its elements never move (a vector would need them copyable)
  std::optional<topic_route> route;
  std::vector<std::optional<connection>> conns;  // per shard
  std::unordered_map<std::uint32_t, std::uint32_t> partition_of_corr;
  std::uint32_t next_corr = 1u << 16;  // above the handshake's ids on every connection
  bool connected = false;
  clock::time_point reconnect_at{};
  std::string last_error;  // why the latest connection failed, for timeout messages
  std::optional<backoff> retry;

  std::thread io;

  ~state() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof one);
  }

  // --- user side (mu held) -------------------------------------------------------------
  void seal_locked(std::uint32_t p) {
    auto& b = open[p];
    const codec::publish_header h{p, b->count, 0, opts.topic};
    codec::encode_publish_prefix(std::span(b->frame).subspan(codec::header_size), h);
    codec::seal_frame(b->frame, codec::opcode::publish, 0);
    b->number = ++batches_sealed;
    unfinished.insert(b->number);
    sealed.push_back(std::move(b));
  }
  void seal_all_locked() {
    for (std::uint32_t p = 0; p < partition_count; ++p) {
      if (open[p]) seal_locked(p);
    }
  }

  result<std::uint32_t> choose_partition_locked(const message& m) {
    if (m.partition) {
      if (*m.partition >= partition_count) {
        return unexpected{err(error_code::unknown_partition,
                              fmt::format("partition {} of topic '{}' which has {}", *m.partition, opts.topic,
                                          partition_count))};
      }
      return *m.partition;
    }
    if (!m.key.empty()) return partition_for_key(m.key, partition_count);
    return round_robin++ % partition_count;
  }

  // Takes the completion (moves from `c`) only when it accepts the record.
  result<void> enqueue(const message& m, completion& c) {
    codec::record_input in{m.timestamp_ms, producer_id, 0, m.key, m.value, m.headers};
    const std::size_t size = codec::record_frame_size(in);
    if (size > max_record_bytes) {
      return unexpected{err(local_error::message_too_large,
                            fmt::format("a record of {} bytes does not fit in one frame (at most {})", size,
                                        max_record_bytes))};
    }
    bool wake_io = false;
    {
      std::unique_lock lk(mu);
      if (closing) return unexpected{err(local_error::closed, "the producer is closed")};
      auto p = choose_partition_locked(m);
      if (!p) return unexpected{p.error()};
      // One record larger than the whole budget still goes when nothing else is in flight.
      while (in_flight_bytes > 0 && in_flight_bytes + size > opts.max_in_flight_bytes) {
        if (!opts.block_when_full) {
          return unexpected{err(local_error::queue_full,
                                fmt::format("{} bytes in flight, max_in_flight_bytes is {}", in_flight_bytes,
                                            opts.max_in_flight_bytes))};
        }
        changed.wait(lk);
        if (closing) return unexpected{err(local_error::closed, "the producer is closed")};
      }
      auto& b = open[*p];
      if (b && b->frame.size() + size > opts.batch_bytes) {
        seal_locked(*p);
        wake_io = true;
      }
      if (!b) {
        b = std::make_unique<batch>();
        b->partition = *p;
        b->first_sequence = next_sequence[*p];
        b->opened = clock::now();
        b->deadline = b->opened + std::chrono::milliseconds(opts.delivery_timeout_ms);
        b->frame.reserve(std::max(opts.batch_bytes, prefix_bytes + size));
        b->frame.resize(prefix_bytes);
        wake_io = true;  // the I/O thread learns when this batch's linger ends
      }
      in.sequence = next_sequence[*p]++;
      const std::size_t at = b->frame.size();
      b->frame.resize(at + size);
      codec::encode_record(std::span(b->frame).subspan(at), in);
      b->records.push_back(std::move(c));
      ++b->count;
      b->charged_bytes += size;
      in_flight_bytes += size;
      ++pending_records;
      if (b->frame.size() >= opts.batch_bytes) {
        seal_locked(*p);
        wake_io = true;
      }
    }
    if (wake_io) wake();
    return {};
  }

  // --- I/O thread -------------------------------------------------------------------------
  void complete(batch& b, const delivery_result& r0, std::uint64_t first_offset, bool offsets_known) {
    for (std::uint32_t i = 0; i < b.count; ++i) {
      if (r0 && offsets_known) {
        b.records[i].complete(delivery{b.partition, first_offset + i, r0->duplicate});
      } else {
        b.records[i].complete(r0);
      }
    }
    std::lock_guard lk(mu);
    in_flight_bytes -= b.charged_bytes;
    pending_records -= b.count;
    unfinished.erase(b.number);
    changed.notify_all();
  }
  void fail(batch& b, const client_error& e) { complete(b, unexpected{e}, 0, false); }

  bool has_work() const {
    return std::any_of(queues.begin(), queues.end(), [](const auto& q) { return !q.batches.empty(); });
  }

  void disconnect(std::string why) {
    last_error = std::move(why);
    conns.clear();
    partition_of_corr.clear();
    for (auto& q : queues) q.sent = 0;  // everything un-acked goes again, in order
    connected = false;
    reconnect_at = clock::now() + retry->next();
  }

  void fail_all_queued(const client_error& e) {
    for (auto& q : queues) {
      for (auto& b : q.batches) fail(*b, e);
      q.batches.clear();
      q.sent = 0;
    }
    partition_of_corr.clear();
  }

  // Fetches metadata and opens one connection per shard that owns a partition.
  void reconnect() {
    const int t = static_cast<int>(opts.connect_timeout_ms);
    auto r = fetch_route(opts.host, opts.port, opts.topic, opts.client_name, t);
    if (!r) {
      if (r.error().code == error_code::unknown_topic) {
        fail_all_queued(r.error());  // the topic was deleted: retrying cannot help
      }
      disconnect(r.error().message);
      return;
    }
    if (r->partitions < partition_count) {
      disconnect(fmt::format("topic '{}' now has {} partitions, not {}", opts.topic, r->partitions, partition_count));
      return;
    }
    route = std::move(*r);
    conns.clear();
    conns.resize(route->shards.size());
    for (std::uint32_t p = 0; p < partition_count; ++p) {
      const auto s = route->shard_of[p];
      if (conns[s]) continue;
      auto c = connect_shard(*route, s, opts.client_name, t);
      if (!c) {
        disconnect(c.error().message);
        return;
      }
      conns[s] = std::move(*c);
    }
    connected = true;
  }

  // Sends what the window allows. False if a connection broke.
  bool send_ready() {
    for (std::uint32_t p = 0; p < partition_count; ++p) {
      auto& q = queues[p];
      auto& c = conns[route->shard_of[p]];
      while (q.sent < q.batches.size() && q.sent < max_batches_in_flight) {
        auto& b = *q.batches[q.sent];
        b.correlation = next_corr++;
        set_correlation(b.frame, b.correlation);
        if (auto s = c->send_bytes(b.frame); !s) {
          disconnect(s.error().message);
          return false;
        }
        partition_of_corr[b.correlation] = p;
        ++q.sent;
      }
    }
    return true;
  }

  // Fails the batches whose first record's delivery deadline has passed. Batches
  // of a partition are sealed in order, so their deadlines are in order too.
  void expire(clock::time_point now) {
    for (auto& q : queues) {
      while (!q.batches.empty() && q.batches.front()->deadline <= now) {
        auto b = std::move(q.batches.front());
        q.batches.pop_front();
        if (q.sent > 0) {
          --q.sent;
          partition_of_corr.erase(b->correlation);
        }
        fail(*b, err(local_error::timeout,
                     fmt::format("not acknowledged within delivery_timeout_ms = {}{}", opts.delivery_timeout_ms,
                                 last_error.empty() ? "" : " (last connection error: " + last_error + ")")));
      }
    }
  }

  // Whether a broker ERROR means "try again on a new connection" rather than
  // "this batch cannot be stored".
  static bool retriable(error_code c) {
    return c == error_code::shutting_down || c == error_code::not_ready || c == error_code::resource_exhausted;
  }

  // One reply frame. False if it broke the session.
  bool on_frame(const codec::frame_view& f) {
    const auto it = partition_of_corr.find(f.header.correlation);
    if (it == partition_of_corr.end()) return true;  // an answer to a batch that already timed out
    const std::uint32_t p = it->second;
    partition_of_corr.erase(it);
    auto& q = queues[p];
    std::size_t i = 0;
    while (i < q.sent && q.batches[i]->correlation != f.header.correlation) ++i;
    if (i == q.sent) return true;
    // ACKs of a partition come back in send order; only an expiry can have removed
    // the batches before this one.
    auto b = std::move(q.batches[i]);
    q.batches.erase(q.batches.begin() + static_cast<std::ptrdiff_t>(i));
    --q.sent;

    error_code code = error_code::none;
    std::string text;
    if (f.header.op == codec::opcode::ack) {
      const auto a = codec::decode_ack(f.body);
      if (!a) {
        q.batches.push_front(std::move(b));  // still ours to deliver, on a new connection
        disconnect("the broker sent a malformed ACK");
        return false;
      }
      if (a->error == 0) {
        retry->reset();
        complete(*b, delivery{p, 0, (a->flags & codec::ack_flag_duplicate) != 0}, a->first_offset, true);
        return true;
      }
      code = static_cast<error_code>(a->error);
      text = fmt::format("the broker refused the batch: {}", codec::error_code_name(code));
    } else if (f.header.op == codec::opcode::error) {
      const auto e = error_from(owned_frame{f.header, {f.body.begin(), f.body.end()}});
      code = e.code;
      text = e.message;
    } else {
      q.batches.push_front(std::move(b));
      disconnect(fmt::format("unexpected {} in answer to PUBLISH", codec::opcode_name(f.header.op)));
      return false;
    }
    if (code == error_code::duplicate_sequence) {
      // Stored before, by an earlier send of this very batch; where is no longer known.
      retry->reset();
      complete(*b, delivery{p, unknown_offset, true}, 0, false);
      return true;
    }
    if (retriable(code)) {
      q.batches.insert(q.batches.begin() + static_cast<std::ptrdiff_t>(i), std::move(b));
      disconnect(fmt::format("{} ({})", text, codec::error_code_name(code)));
      return false;
    }
    fail(*b, err(code, fmt::format("partition {}, sequences {}..{}: {}", p, b->first_sequence,
                                   b->first_sequence + b->count - 1, text)));
    return true;
  }

  // Reads every frame that has arrived. False if a connection broke.
  bool read_ready() {
    for (auto& c : conns) {
      if (!c) continue;
      for (;;) {
        auto f = c->try_next_frame(0);
        if (!f) {
          disconnect(f.error().message);
          return false;
        }
        if (!*f) break;
        if (!on_frame(**f)) return false;
      }
    }
    return true;
  }

  void run() {
    retry.emplace(std::chrono::milliseconds(opts.backoff_initial_ms), std::chrono::milliseconds(opts.backoff_max_ms));
    queues.resize(partition_count);
    for (;;) {
      auto now = clock::now();
      auto next_event = now + std::chrono::seconds(1);
      {
        std::lock_guard lk(mu);
        if (stop) break;
        for (std::uint32_t p = 0; p < partition_count; ++p) {
          if (!open[p]) continue;
          const auto linger_end = open[p]->opened + std::chrono::milliseconds(opts.linger_ms);
          if (linger_end <= now) {
            seal_locked(p);
          } else {
            next_event = std::min(next_event, linger_end);
          }
        }
        while (!sealed.empty()) {
          auto& b = sealed.front();
          queues[b->partition].batches.push_back(std::move(b));
          sealed.pop_front();
        }
      }
      expire(now);
      if (!connected && has_work() && now >= reconnect_at) reconnect();
      if (connected && send_ready()) read_ready();

      for (const auto& q : queues) {
        if (!q.batches.empty()) next_event = std::min(next_event, q.batches.front()->deadline);
      }
      if (!connected && has_work()) next_event = std::min(next_event, reconnect_at);
      std::vector<pollfd> fds{{wake_fd, POLLIN, 0}};
      for (const auto& c : conns) {
        if (c) fds.push_back({c->fd(), POLLIN, 0});
      }
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_event - clock::now());
      const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<std::int64_t>(0, wait.count())));
      if (n > 0 && (fds[0].revents & POLLIN) != 0) {
        std::uint64_t v = 0;
        [[maybe_unused]] const auto r = ::read(wake_fd, &v, sizeof v);
      }
      if (n > 0 && connected) read_ready();
    }
    // Closing: whatever was not acknowledged in time fails.
    std::deque<std::unique_ptr<batch>> left;
    {
      std::lock_guard lk(mu);
      seal_all_locked();
      left.swap(sealed);
    }
    const auto closed_error = err(local_error::closed, "the producer was closed before the broker acknowledged it");
    fail_all_queued(closed_error);
    for (auto& b : left) fail(*b, closed_error);
    conns.clear();
  }
};

result<producer> producer::create(producer_options opts) {
  if (!codec::is_valid_topic_name(opts.topic)) {
    return unexpected{err(error_code::invalid_argument, fmt::format("invalid topic name '{}'", opts.topic))};
  }
  auto route = fetch_route(opts.host, opts.port, opts.topic, opts.client_name,
                           static_cast<int>(opts.connect_timeout_ms));
  if (!route) return unexpected{route.error()};
  auto s = std::make_unique<state>();
  s->opts = std::move(opts);
  s->partition_count = route->partitions;
  s->prefix_bytes = codec::header_size + codec::publish_prefix_size(s->opts.topic);
  const std::size_t max_frame = route->max_frame ? route->max_frame : codec::default_max_frame;
  // The frame's length field counts everything after itself.
  s->max_record_bytes = max_frame + 4 - s->prefix_bytes;
  std::random_device rd;
  while (s->producer_id == 0) s->producer_id = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  s->open.resize(s->partition_count);
  s->next_sequence.assign(s->partition_count, 0);
  s->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd < 0) return unexpected{err(error_code::internal, fmt::format("eventfd: {}", std::strerror(errno)))};
  s->io = std::thread([st = s.get()] { st->run(); });
  return producer(std::move(s));
}

producer::producer(std::unique_ptr<state> s) : s_(std::move(s)) {}
producer::producer(producer&&) noexcept = default;
producer& producer::operator=(producer&& o) noexcept {
  if (this != &o) {
    if (s_) (void)close(std::chrono::milliseconds(s_->opts.delivery_timeout_ms));
    s_ = std::move(o.s_);
  }
  return *this;
}
producer::~producer() {
  if (s_) (void)close(std::chrono::milliseconds(s_->opts.delivery_timeout_ms));
}

std::future<delivery_result> producer::publish(const message& m) {
  completion c;
  auto f = c.promise.get_future();
  if (auto r = s_->enqueue(m, c); !r) c.promise.set_value(unexpected{r.error()});
  return f;
}

result<void> producer::publish(const message& m, delivery_callback on_delivery) {
  completion c;
  c.callback = std::move(on_delivery);
  return s_->enqueue(m, c);
}

result<void> producer::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lk(s_->mu);
  s_->seal_all_locked();
  // Records published after this point (say by a thread that was waiting for
  // room) are in later batches; they are not waited for.
  const std::uint64_t last = s_->batches_sealed;
  s_->wake();
  const bool done = s_->changed.wait_for(lk, timeout, [&] {
    return s_->unfinished.empty() || *s_->unfinished.begin() > last;
  });
  if (!done) {
    return unexpected{err(local_error::timeout, fmt::format("{} records still unacknowledged after {} ms",
                                                            s_->pending_records, timeout.count()))};
  }
  return {};
}

result<void> producer::close(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lk(s_->mu);
    if (s_->closed) return {};
    s_->closing = true;
    s_->changed.notify_all();  // blocked publishers give up
  }
  auto flushed = flush(timeout);
  {
    std::lock_guard lk(s_->mu);
    s_->stop = true;
    s_->closed = true;
  }
  s_->wake();
  if (s_->io.joinable()) s_->io.join();
  return flushed;
}

std::uint64_t producer::producer_id() const noexcept { return s_->producer_id; }
std::uint32_t producer::partitions() const noexcept { return s_->partition_count; }
std::uint32_t producer::partition_of(std::span<const std::byte> key) const noexcept {
  return partition_for_key(key, s_->partition_count);
}

}  // namespace mcp::client
