#include "tools/client/group_consumer.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>

#include "codec/control.h"
#include "codec/data_messages.h"
#include "codec/frame_encoder.h"
#include "tools/client/client.h"
#include "tools/client/record_frames.h"

namespace mcp::client {

namespace {

using clock = std::chrono::steady_clock;
using codec::error_code;
using codec::opcode;

// The one subscription of the connection: its SUBSCRIBE's correlation id. Every
// other frame we send takes a correlation above it.
constexpr std::uint32_t subscription_id = 1;

// Where in a batch's buffer the records of one DELIVERY lie.
struct piece {
  std::uint32_t partition = 0;
  std::uint32_t records = 0;
  std::uint16_t delivery_count = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

// The acks of one partition not sent yet, as ranges in the order given.
struct partition_acks {
  std::uint32_t partition = 0;
  std::vector<codec::offset_range> ranges;
};

client_error make_error(error_code code, std::string message) { return {code, std::move(message)}; }

bool breaks_connection(error_code code) {
  return code == local_error::disconnected || code == local_error::protocol || code == local_error::timeout ||
         code == error_code::idle_timeout || code == error_code::shutting_down;
}

fb::StartPosition wire_start(group_start::kind k) {
  switch (k) {
    case group_start::kind::committed: return fb::StartPosition::Committed;
    case group_start::kind::earliest: return fb::StartPosition::Earliest;
    case group_start::kind::latest: return fb::StartPosition::Latest;
    case group_start::kind::timestamp: return fb::StartPosition::Timestamp;
  }
  return fb::StartPosition::Committed;
}

}  // namespace

struct group_consumer::state {
  group_consumer_options opts;
  std::optional<connection> conn;
  std::uint64_t session = 0;
  bool closed = false;
  int wake_fd = -1;
  std::uint32_t next_corr = subscription_id + 1;
  std::vector<partition_acks> acks;
  std::vector<std::byte> out;  // NACK, CREDIT and PING frames waiting for flush
  clock::time_point last_send = clock::now();
  std::optional<client_error> deferred;  // reported by the next poll, after the records before it

  ~state() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  std::uint32_t correlation() {
    if (next_corr == subscription_id || next_corr == 0) next_corr = subscription_id + 1;
    return next_corr++;
  }

  void disconnect() {
    conn.reset();
    // The broker released every lease of that connection: acks for them would be ignored.
    acks.clear();
    out.clear();
  }

  result<void> connect() {
    const int t = static_cast<int>(opts.connect_timeout_ms);
    auto c = connection::connect(opts.host, opts.port, t);
    if (!c) return unexpected{c.error()};
    if (auto h = c->hello(opts.client_name); !h) return unexpected{h.error()};
    fb::SubscribeT s;
    s.topic = opts.topic;
    s.group = opts.group;
    s.credit = opts.credit;
    s.start = wire_start(opts.start.from);
    s.start_timestamp_ms = opts.start.timestamp_ms;
    s.ack_wait_ms = opts.ack_wait_ms;
    s.max_deliver = opts.max_deliver;
    std::vector<std::byte> frame;
    codec::append_control(frame, opcode::subscribe, subscription_id, s);
    if (auto r = c->send_bytes(frame); !r) return r;
    auto f = c->read_frame(t);
    if (!f) return unexpected{f.error()};
    if (f->header.op == opcode::error) {
      auto e = error_from(*f);
      e.message = fmt::format("SUBSCRIBE to topic '{}' as group '{}': {}", opts.topic, opts.group, e.message);
      return unexpected{e};
    }
    if (f->header.op != opcode::ok || f->header.correlation != subscription_id) {
      return unexpected{make_error(local_error::protocol, fmt::format("expected OK for SUBSCRIBE, got {}",
                                                                      codec::opcode_name(f->header.op)))};
    }
    conn = std::move(*c);
    ++session;
    last_send = clock::now();
    return {};
  }

  bool add_ack(std::uint32_t partition, std::uint64_t first, std::uint64_t last) {
    if (!conn || first > last) return false;
    auto it = std::find_if(acks.begin(), acks.end(), [&](const auto& a) { return a.partition == partition; });
    if (it == acks.end()) {
      acks.push_back({partition, {}});
      it = acks.end() - 1;
    }
    // Most acks follow the previous one: extend its range instead of adding one.
    if (!it->ranges.empty() && it->ranges.back().last + 1 == first) {
      it->ranges.back().last = last;
    } else {
      it->ranges.push_back({first, last});
    }
    return true;
  }

  // A NACK of a record of this session (else dropped: false).
  bool add_nack(const group_record& r, std::uint32_t delay_ms, std::uint16_t flags) {
    if (r.session != session) return false;
    std::array<std::byte, codec::nack_size> body{};
    codec::encode_nack(body, {subscription_id, r.partition, r.offset, delay_ms, flags});
    return add_frame(opcode::nack, body);
  }

  bool add_frame(opcode op, std::span<const std::byte> body) {
    if (!conn) return false;
    codec::append_frame(out, op, correlation(), body);
    return true;
  }

  result<void> flush() {
    if (closed) return unexpected{make_error(local_error::closed, "the group consumer is closed")};
    if (!conn) return {};
    std::vector<std::byte> frame;
    std::vector<std::byte> body;
    for (auto& a : acks) {
      auto& rs = a.ranges;
      if (rs.empty()) continue;
      std::sort(rs.begin(), rs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      std::size_t n = 0;  // merge touching and overlapping ranges in place
      for (std::size_t i = 1; i < rs.size(); ++i) {
        if (rs[i].first <= rs[n].last + 1) {
          rs[n].last = std::max(rs[n].last, rs[i].last);
        } else {
          rs[++n] = rs[i];
        }
      }
      rs.resize(n + 1);
      for (std::size_t at = 0; at < rs.size(); at += codec::max_commit_ranges) {
        const auto count = std::min<std::size_t>(codec::max_commit_ranges, rs.size() - at);
        body.clear();
        codec::append_commit(body, subscription_id, a.partition, std::span(rs).subspan(at, count));
        codec::append_frame(frame, opcode::commit, correlation(), body);
      }
      rs.clear();
    }
    frame.insert(frame.end(), out.begin(), out.end());
    out.clear();
    if (frame.empty()) return {};
    if (auto r = conn->send_bytes(frame); !r) {
      disconnect();
      return r;
    }
    last_send = clock::now();
    return {};
  }

  void ping_if_idle(clock::time_point now) {
    if (!conn || now - last_send < std::chrono::milliseconds(opts.ping_interval_ms)) return;
    std::array<std::byte, codec::ping_size> body{};
    codec::encode_ping(body, 0);
    add_frame(opcode::ping, body);
  }

  // One frame from the broker. The records of a DELIVERY are copied to `buffer`
  // (and described in `pieces`) if `keep`; returns how many records it carried.
  result<std::uint32_t> on_frame(const codec::frame_view& f, byte_buffer& buffer,
                                 std::vector<piece>& pieces, bool keep, std::uint32_t& pong) {
    switch (f.header.op) {
      case opcode::pong: pong = f.header.correlation; return 0;
      case opcode::error: {
        auto e = error_from(owned_frame{f.header, {f.body.begin(), f.body.end()}});
        e.message = fmt::format("group '{}' on topic '{}': {}", opts.group, opts.topic, e.message);
        return unexpected{e};
      }
      case opcode::delivery: break;
      default:
        return unexpected{make_error(local_error::protocol, fmt::format("unexpected {} from the broker",
                                                                        codec::opcode_name(f.header.op)))};
    }
    const auto d = codec::decode_delivery(f.body);
    if (!d) return unexpected{make_error(local_error::protocol, "DELIVERY header is malformed")};
    const bool ours = keep && d->subscription == subscription_id;
    // The records follow as frames of their own, already on their way: read them
    // now, into the batch's buffer.
    const std::size_t begin = buffer.size();
    if (auto r = conn->read_records(ours ? &buffer : nullptr, d->byte_count, d->record_count,
                                    static_cast<int>(opts.connect_timeout_ms));
        !r) {
      return unexpected{r.error()};
    }
    if (!ours) return 0;
    pieces.push_back({d->partition, d->record_count, d->delivery_count, begin, buffer.size()});
    return d->record_count;
  }

  // Every whole frame that has arrived. Returns the records received.
  result<std::size_t> drain(byte_buffer& buffer, std::vector<piece>& pieces) {
    std::size_t got = 0;
    std::uint32_t pong = 0;
    while (conn) {
      auto f = conn->try_next_frame(0);
      if (!f) return unexpected{f.error()};
      if (!*f) break;
      auto n = on_frame(**f, buffer, pieces, true, pong);
      if (!n) return unexpected{n.error()};
      got += *n;
    }
    return got;
  }

  result<group_batch> poll(std::chrono::milliseconds timeout) {
    if (closed) return unexpected{make_error(local_error::closed, "the group consumer is closed")};
    if (deferred) {
      auto e = std::move(*deferred);
      deferred.reset();
      return unexpected{e};
    }
    if (!conn) {
      if (auto r = connect(); !r) return unexpected{r.error()};
    }
    ping_if_idle(clock::now());
    if (auto r = flush(); !r) return unexpected{r.error()};
    const auto deadline = clock::now() + timeout;
    group_batch batch;
    std::vector<piece> pieces;
    std::optional<client_error> failed;
    for (bool woken = false;;) {
      auto got = drain(batch.buffer_, pieces);
      if (!got) {
        failed = got.error();
        break;
      }
      if (*got > 0 || woken) break;
      const auto now = clock::now();
      if (now >= deadline) break;
      ping_if_idle(now);
      if (auto r = flush(); !r) {
        failed = r.error();
        break;
      }
      const auto ping_due = last_send + std::chrono::milliseconds(opts.ping_interval_ms);
      const auto until = std::min(deadline, ping_due);
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      std::array<pollfd, 2> fds{pollfd{conn->fd(), POLLIN, 0}, pollfd{wake_fd, POLLIN, 0}};
      const int pr = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<std::int64_t>(0, wait)));
      if (pr > 0 && (fds[1].revents & POLLIN) != 0) {
        std::uint64_t n = 0;
        (void)::read(wake_fd, &n, sizeof n);
        woken = true;  // one more look at the socket, then back to the caller
      }
    }
    if (failed) {
      if (breaks_connection(failed->code)) disconnect();
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
        group_record r;
        static_cast<codec::record_view&>(r) = rec;
        r.partition = p.partition;
        r.delivery_count = p.delivery_count;
        r.session = session;
        batch.records_.push_back(r);
      });
      if (!ok) {
        disconnect();
        return unexpected{make_error(local_error::protocol,
                                     fmt::format("a delivered record of partition {} is malformed", p.partition))};
      }
    }
    return batch;
  }

  result<void> close(std::chrono::milliseconds timeout) {
    if (closed) return unexpected{make_error(local_error::closed, "the group consumer is closed")};
    result<void> res;
    if (conn) {
      // A PONG comes back only after the broker has handled every frame sent
      // before its PING, the COMMITs included: then closing loses no ack.
      std::array<std::byte, codec::ping_size> body{};
      codec::encode_ping(body, 0);
      const auto token = correlation();
      codec::append_frame(out, opcode::ping, token, body);
      res = flush();
      const auto deadline = clock::now() + timeout;
      byte_buffer scratch;
      std::vector<piece> pieces;
      while (res && conn) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) {
          res = unexpected{make_error(local_error::timeout, "close: the broker did not answer the final PING")};
          break;
        }
        auto f = conn->next_frame(static_cast<int>(left));
        if (!f) {
          res = unexpected{f.error()};
          break;
        }
        std::uint32_t pong = 0;
        // Deliveries that arrive now are dropped: closing releases their leases.
        auto n = on_frame(*f, scratch, pieces, false, pong);
        if (!n && breaks_connection(n.error().code)) {
          res = unexpected{n.error()};
          break;
        }
        if (pong == token) break;
      }
    }
    disconnect();
    closed = true;
    return res;
  }
};

result<group_consumer> group_consumer::create(group_consumer_options opts) {
  if (opts.topic.empty() || opts.group.empty()) {
    return unexpected{make_error(error_code::invalid_argument, "a group consumer needs a topic and a group")};
  }
  auto s = std::make_unique<state>();
  s->opts = std::move(opts);
  s->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd < 0) return unexpected{make_error(error_code::internal, "eventfd failed")};
  if (auto r = s->connect(); !r) return unexpected{r.error()};
  return group_consumer(std::move(s));
}

group_consumer::group_consumer(std::unique_ptr<state> s) : s_(std::move(s)) {}
group_consumer::group_consumer(group_consumer&&) noexcept = default;
group_consumer& group_consumer::operator=(group_consumer&& o) noexcept {
  if (this != &o) {
    if (s_ && !s_->closed) (void)close();
    s_ = std::move(o.s_);
  }
  return *this;
}

group_consumer::~group_consumer() {
  if (s_ && !s_->closed) (void)close();
}

result<group_batch> group_consumer::poll(std::chrono::milliseconds timeout) { return s_->poll(timeout); }

bool group_consumer::ack(const group_record& r) {
  if (r.session != s_->session) return false;
  return s_->add_ack(r.partition, r.offset, r.offset);
}

bool group_consumer::ack(std::uint32_t partition, std::uint64_t first, std::uint64_t last) {
  return s_->add_ack(partition, first, last);
}

bool group_consumer::nack(const group_record& r, std::chrono::milliseconds delay) {
  const auto ms = std::clamp<std::int64_t>(delay.count(), 0, UINT32_MAX);
  return s_->add_nack(r, static_cast<std::uint32_t>(ms), 0);
}

bool group_consumer::reject(const group_record& r) { return s_->add_nack(r, 0, codec::nack_flag_dead_letter); }

void group_consumer::add_credit(std::uint32_t records) {
  // Kept in the options too, so that a new session subscribes with the wider window.
  s_->opts.credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{s_->opts.credit} + records, UINT32_MAX));
  std::array<std::byte, codec::credit_size> body{};
  codec::encode_credit(body, {subscription_id, records});
  (void)s_->add_frame(opcode::credit, body);
}

result<void> group_consumer::flush() { return s_->flush(); }

void group_consumer::wakeup() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(s_->wake_fd, &one, sizeof one);
}

result<void> group_consumer::close(std::chrono::milliseconds timeout) { return s_->close(timeout); }
result<void> group_consumer::close() { return s_->close(std::chrono::milliseconds(s_->opts.connect_timeout_ms)); }

void group_consumer::abort() noexcept {
  s_->disconnect();
  s_->closed = true;
}

std::uint64_t group_consumer::session() const noexcept { return s_->session; }
const group_consumer_options& group_consumer::options() const noexcept { return s_->opts; }

}  // namespace mcp::client
