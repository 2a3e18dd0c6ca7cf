#include "tools/client/consumer.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>

#include "codec/data_messages.h"
#include "codec/frame_encoder.h"
#include "tools/client/client.h"
#include "tools/client/record_frames.h"
#include "tools/client/topic_route.h"

namespace mcp::client {

namespace {

using clock = std::chrono::steady_clock;
using codec::error_code;

struct cursor {
  std::uint32_t partition = 0;
  std::uint64_t next_offset = 0;      // valid unless by_time
  bool by_time = false;               // the next FETCH asks by timestamp
  std::int64_t timestamp_ms = 0;
  std::uint32_t outstanding = 0;      // correlation of the FETCH on the wire (or followed), 0: none
  std::uint64_t to_grant = 0;         // following: record bytes received since the last WINDOW
  // FETCHes a seek superseded: their answers, still on the way, are read and
  // dropped, until the first answer to the FETCH sent after the seek (a broker
  // answers in order and ends a followed FETCH when a newer one of its partition comes).
  std::vector<std::uint32_t> retired;
};

// Where in a batch's buffer one FETCH answer's records lie.
struct piece {
  std::uint32_t partition = 0;
  std::uint32_t records = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

}  // namespace

struct consumer::state {
  consumer_options opts;
  topic_route route;
  std::vector<cursor> cursors;
  std::vector<std::optional<connection>> conns;  // per shard
  std::optional<client_error> deferred;           // reported by the next poll, after the records before it
  bool connected = false;
  std::uint32_t next_corr = 1u << 16;

  cursor* find(std::uint32_t partition) {
    for (auto& c : cursors) {
      if (c.partition == partition) return &c;
    }
    return nullptr;
  }

  result<void> place(cursor& c, start_position where, const topic_route& r) {
    c.by_time = false;
    switch (where.from) {
      case start_position::kind::earliest: c.next_offset = r.log_start[c.partition]; break;
      case start_position::kind::latest: c.next_offset = r.log_end[c.partition]; break;
      case start_position::kind::offset: c.next_offset = static_cast<std::uint64_t>(where.value); break;
      case start_position::kind::timestamp:
        c.by_time = true;
        c.timestamp_ms = where.value;
        break;
    }
    return {};
  }

  void disconnect() {
    conns.clear();
    for (auto& c : cursors) {
      c.outstanding = 0;
      c.retired.clear();
    }
    connected = false;
  }

  result<void> connect() {
    const int t = static_cast<int>(opts.connect_timeout_ms);
    auto r = fetch_route(opts.host, opts.port, opts.topic, opts.client_name, t);
    if (!r) return unexpected{r.error()};
    route = std::move(*r);
    conns.clear();
    conns.resize(route.shards.size());
    for (const auto& c : cursors) {
      if (c.partition >= route.partitions) {
        return unexpected{client_error{error_code::unknown_partition,
                                       fmt::format("topic '{}' has no partition {} any more", opts.topic, c.partition)}};
      }
      const auto s = route.shard_of[c.partition];
      if (conns[s]) continue;
      auto conn = connect_shard(route, s, opts.client_name, t);
      if (!conn) {
        conns.clear();
        return unexpected{conn.error()};
      }
      conns[s] = std::move(*conn);
    }
    connected = true;
    return {};
  }

  bool following() const noexcept { return opts.follow && opts.max_wait_ms > 0; }

  result<void> send_fetches(std::uint32_t max_wait_ms) {
    std::vector<std::byte> body;
    std::vector<std::byte> frame;
    for (auto& c : cursors) {
      if (c.outstanding != 0) continue;
      body.clear();
      frame.clear();
      const std::uint64_t at = c.by_time ? static_cast<std::uint64_t>(c.timestamp_ms) : c.next_offset;
      std::uint16_t flags = c.by_time ? codec::fetch_flag_by_timestamp : std::uint16_t{0};
      // A followed FETCH outlives this poll: it waits the full max_wait_ms each time.
      // Windowed: the broker pushes only as far as poll() grants (grant_windows).
      if (following()) {
        flags |= codec::fetch_flag_follow | codec::fetch_flag_windowed;
        max_wait_ms = opts.max_wait_ms;
      }
      codec::append_fetch(body, {at, c.partition, opts.max_bytes, max_wait_ms, flags, opts.topic});
      const auto corr = next_corr++;
      codec::append_frame(frame, codec::opcode::fetch, corr, body);
      // The window starts at max_bytes; the rest of the configured one at once.
      if (following() && opts.follow_window_bytes > opts.max_bytes) {
        append_window(frame, corr, opts.follow_window_bytes - opts.max_bytes);
      }
      if (auto s = conns[route.shard_of[c.partition]]->send_bytes(frame); !s) return s;
      c.outstanding = corr;
      c.to_grant = 0;
    }
    return {};
  }

  // Sent with the FETCH's correlation, so an ERROR the broker answers it with
  // ends that follow here and reaches the caller, like any answer of the FETCH.
  static void append_window(std::vector<std::byte>& frames, std::uint32_t fetch, std::uint32_t bytes) {
    std::array<std::byte, codec::window_size> body{};
    codec::encode_window(body, {fetch, bytes});
    codec::append_frame(frames, codec::opcode::window, fetch, body);
  }

  // Following: gives each follow back the bytes of the records the last poll
  // handed out, so the broker pushes again (one WINDOW per partition and poll,
  // one send per connection).
  result<void> grant_windows() {
    if (!following()) return {};
    std::vector<std::vector<std::byte>> per_shard(conns.size());
    for (auto& c : cursors) {
      if (c.outstanding == 0 || c.to_grant == 0) continue;
      auto& frames = per_shard[route.shard_of[c.partition]];
      while (c.to_grant > 0) {
        const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(c.to_grant, 1u << 30));
        append_window(frames, c.outstanding, n);
        c.to_grant -= n;
      }
    }
    for (std::size_t s = 0; s < per_shard.size(); ++s) {
      if (per_shard[s].empty()) continue;
      if (auto r = conns[s]->send_bytes(per_shard[s]); !r) return r;
    }
    return {};
  }

  // One answer to a FETCH; its records are appended to `out`. Returns how many records it carried.
  result<std::uint32_t> on_frame(connection& conn, const codec::frame_view& f, byte_buffer& out,
                                 std::vector<piece>& pieces) {
    const std::uint32_t corr = f.header.correlation;
    cursor* c = nullptr;
    for (auto& k : cursors) {
      if (k.outstanding == corr) {
        c = &k;
        continue;
      }
      // A plain FETCH a seek superseded is answered exactly once, and maybe after
      // the FETCH that replaced it (a parked long poll): forget it at its answer.
      // A followed one may send several, all before the new FETCH's first answer.
      const auto r = std::find(k.retired.begin(), k.retired.end(), corr);
      if (r != k.retired.end() && !following()) k.retired.erase(r);
    }
    // Anything else that is not a live answer is read past and dropped: a superseded
    // FETCH's, or one nothing here asked for (its records must still be read off the
    // stream, or they would be taken for frames).
    const bool dropped = c == nullptr;
    if (dropped && f.header.op != codec::opcode::records) return 0;
    // A followed FETCH stays on the wire until an ERROR ends it.
    if (c != nullptr && (!following() || f.header.op == codec::opcode::error)) c->outstanding = 0;
    if (c != nullptr && following()) c->retired.clear();
    if (f.header.op == codec::opcode::error) {
      auto e = error_from(owned_frame{f.header, {f.body.begin(), f.body.end()}});
      e.message = fmt::format("topic '{}' partition {}: {}", opts.topic, c->partition, e.message);
      return unexpected{e};
    }
    if (f.header.op != codec::opcode::records) {
      return unexpected{client_error{local_error::protocol, fmt::format("unexpected {} in answer to FETCH",
                                                                        codec::opcode_name(f.header.op))}};
    }
    const auto h = codec::decode_records(f.body);
    if (!h) return unexpected{client_error{local_error::protocol, "RECORDS header is malformed"}};
    if (c != nullptr && following()) c->to_grant += h->byte_count;
    // The records follow as frames of their own, already on their way: read them
    // now, into the batch's buffer.
    const std::size_t begin = out.size();
    auto last = conn.read_records(dropped ? nullptr : &out, h->byte_count, h->record_count,
                                  static_cast<int>(opts.connect_timeout_ms));
    if (!last) return unexpected{last.error()};
    const std::uint64_t last_offset = *last;
    if (dropped) return 0;
    if (c->by_time) {
      c->by_time = false;
      c->next_offset = h->first_offset;  // the offset the timestamp resolved to
    }
    if (h->record_count > 0) {
      c->next_offset = last_offset + 1;
      pieces.push_back({c->partition, h->record_count, begin, out.size()});
    }
    return h->record_count;
  }

  // Everything that has arrived on every connection. Returns the records received.
  result<std::size_t> drain(byte_buffer& out, std::vector<piece>& pieces) {
    std::size_t got = 0;
    for (auto& conn : conns) {
      if (!conn) continue;
      for (;;) {
        auto f = conn->try_next_frame(0);
        if (!f) return unexpected{f.error()};
        if (!*f) break;
        auto n = on_frame(*conn, **f, out, pieces);
        if (!n) return unexpected{n.error()};
        got += *n;
      }
    }
    return got;
  }

  result<record_batch> poll(std::chrono::milliseconds timeout) {
    if (deferred) {
      auto e = std::move(*deferred);
      deferred.reset();
      return unexpected{e};
    }
    const auto deadline = clock::now() + timeout;
    if (!connected) {
      if (auto r = connect(); !r) {
        disconnect();
        return unexpected{r.error()};
      }
    }
    record_batch batch;
    std::vector<piece> pieces;
    std::optional<client_error> failed;
    // What the last poll handed out is the caller's now: room for more.
    if (auto g = grant_windows(); !g) failed = g.error();
    for (; !failed;) {
      // Answers first: an answered partition gets its next FETCH below, before any wait.
      auto got = drain(batch.buffer_, pieces);
      if (!got) {
        failed = got.error();
        break;
      }
      if (*got > 0) break;
      const auto left = std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count());
      if (auto s = send_fetches(static_cast<std::uint32_t>(std::min<std::int64_t>(opts.max_wait_ms, left))); !s) {
        failed = s.error();
        break;
      }
      if (left == 0) break;
      std::vector<pollfd> fds;
      for (const auto& c : conns) {
        if (c) fds.push_back({c->fd(), POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), static_cast<int>(left));
    }
    if (failed) {
      // A broken stream cannot be resumed; a refused FETCH (UNKNOWN_TOPIC,
      // OUT_OF_RANGE...) leaves the connection usable.
      const auto code = failed->code;
      if (code == local_error::disconnected || code == local_error::protocol || code == local_error::timeout) {
        disconnect();
      }
      if (pieces.empty()) return unexpected{*failed};
      deferred = std::move(failed);
    }
    // Views are made only now: the buffer no longer grows.
    std::size_t total = 0;
    for (const auto& p : pieces) total += p.records;
    batch.records_.reserve(total);
    for (const auto& p : pieces) {
      const auto bytes = std::span<const std::byte>(batch.buffer_).subspan(p.begin, p.end - p.begin);
      const bool ok = for_each_record_frame(bytes, [&](const codec::record_view& rec) {
        consumer_record r;
        static_cast<codec::record_view&>(r) = rec;
        r.partition = p.partition;
        batch.records_.push_back(r);
      });
      if (!ok) {
        disconnect();
        return unexpected{client_error{local_error::protocol,
                                       fmt::format("a fetched record of partition {} is malformed", p.partition)}};
      }
    }
    return batch;
  }
};

result<consumer> consumer::create(consumer_options opts) {
  if (!codec::is_valid_topic_name(opts.topic)) {
    return unexpected{client_error{error_code::invalid_argument, fmt::format("invalid topic name '{}'", opts.topic)}};
  }
  auto route = fetch_route(opts.host, opts.port, opts.topic, opts.client_name,
                           static_cast<int>(opts.connect_timeout_ms));
  if (!route) return unexpected{route.error()};
  auto s = std::make_unique<state>();
  s->opts = std::move(opts);
  s->route = std::move(*route);
  if (s->opts.partition) s->opts.partitions = {*s->opts.partition};
  for (const std::uint32_t p : s->opts.partitions) {
    if (p >= s->route.partitions) {
      return unexpected{client_error{error_code::unknown_partition, fmt::format("topic '{}' has {} partitions, no partition {}",
                                                                                 s->opts.topic, s->route.partitions, p)}};
    }
  }
  const auto from = s->opts.start.from;
  if (from == start_position::kind::earliest || from == start_position::kind::latest) {
    if (auto r = fetch_offsets(s->route, s->opts.topic, s->opts.client_name,
                               static_cast<int>(s->opts.connect_timeout_ms));
        !r) {
      return unexpected{r.error()};
    }
  }
  const auto& wanted = s->opts.partitions;
  for (std::uint32_t p = 0; p < s->route.partitions; ++p) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), p) == wanted.end()) continue;
    cursor c;
    c.partition = p;
    (void)s->place(c, s->opts.start, s->route);
    s->cursors.push_back(c);
  }
  return consumer(std::move(s));
}

consumer::consumer(std::unique_ptr<state> s) : s_(std::move(s)) {}
consumer::consumer(consumer&&) noexcept = default;
consumer& consumer::operator=(consumer&&) noexcept = default;
consumer::~consumer() = default;

result<record_batch> consumer::poll(std::chrono::milliseconds timeout) { return s_->poll(timeout); }

result<void> consumer::seek(std::uint32_t partition, start_position where) {
  cursor* c = s_->find(partition);
  if (c == nullptr) {
    return unexpected{client_error{error_code::unknown_partition,
                                   fmt::format("this consumer does not read partition {}", partition)}};
  }
  if (where.from == start_position::kind::earliest || where.from == start_position::kind::latest) {
    // The ends of the log move: ask the owners where they are now.
    if (auto r = fetch_offsets(s_->route, s_->opts.topic, s_->opts.client_name,
                               static_cast<int>(s_->opts.connect_timeout_ms));
        !r) {
      return r;
    }
  }
  if (c->outstanding != 0) {
    c->retired.push_back(c->outstanding);
    c->outstanding = 0;
  }
  return s_->place(*c, where, s_->route);
}

std::optional<std::uint64_t> consumer::position(std::uint32_t partition) const {
  const cursor* c = s_->find(partition);
  if (c == nullptr || c->by_time) return std::nullopt;
  return c->next_offset;
}

std::vector<std::uint32_t> consumer::assignment() const {
  std::vector<std::uint32_t> out;
  for (const auto& c : s_->cursors) out.push_back(c.partition);
  return out;
}

}  // namespace mcp::client
