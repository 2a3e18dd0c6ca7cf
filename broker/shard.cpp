#include "broker/shard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "broker/log.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

namespace mcp::broker {

using codec::error_code;
using codec::opcode;

namespace {

constexpr std::uint64_t tick_ns = 10'000'000;  // 10 ms: long-poll expiry, idle checks, interval syncs
constexpr std::size_t pipe_size = 1 << 20;
constexpr std::size_t copy_chunk = 256 << 10;

int listen_socket(const std::string& host, std::uint16_t port, bool reuse_port) {
  const bool v6 = host.find(':') != std::string::npos;
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  int rc = 0;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1) throw std::runtime_error("bad IPv6 address " + host);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) throw std::runtime_error("bad IPv4 address " + host);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("listen on {}:{}: {}", host, port, std::strerror(e)));
  }
  return fd;
}

std::vector<std::byte> control_frame_bytes(opcode op, std::uint32_t corr, const flatbuffers::FlatBufferBuilder& fbb) {
  std::vector<std::byte> out;
  codec::append_control_frame(out, op, corr, fbb);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- set-up

shard::shard(unsigned id, const broker_config& cfg, const io::ring_features& features, shard_group& group)
    : id_(id),
      cfg_(cfg),
      group_(group),
      ring_({.entries = 4096, .start_disabled = true}, features),
      pool_(ring_, 0, cfg.recv_buffers, cfg.recv_buffer_size),
      file_io_(ring_) {
  decoder_opts_.max_frame = cfg.max_frame;
  main_listener_.s = shard_listener_.s = this;
  main_listener_.fd = listen_socket(cfg.listen_host, cfg.listen_port, true);
  shard_port_ = static_cast<std::uint16_t>(cfg.listen_port + 1 + id);
  shard_listener_.fd = listen_socket(cfg.listen_host, shard_port_, false);
  event_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error("eventfd failed");
  wakeup_.s = this;
  ticker_.s = this;
  for (unsigned i = 0; i <= cfg.shards; ++i) inbox_.push_back(std::make_unique<spsc_queue<shard_message>>(4096));
  outbox_.resize(cfg.shards);
  wake_pending_.assign(cfg.shards, false);
  use_msg_ring_ = features.msg_ring;
}

shard::~shard() {
  for (int fd : {main_listener_.fd, shard_listener_.fd, event_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void shard::start() {
  thread_ = std::thread([this] { run(); });
}

void shard::join() {
  if (thread_.joinable()) thread_.join();
}

bool shard::post(unsigned from, shard_message&& m) {
  if (!enqueue(from, std::move(m))) return false;
  wake_by_eventfd();
  return true;
}

bool shard::enqueue(unsigned from, shard_message&& m) { return inbox_[from]->try_push(std::move(m)); }

void shard::wake_by_eventfd() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(event_fd_, &one, sizeof one);
}

std::int64_t shard::now_ms() const noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

connection* shard::find(std::uint64_t id) noexcept {
  const auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------- the loop

void shard::run() {
  set_log_shard(static_cast<int>(id_));
  ring_.enable();  // binds the SINGLE_ISSUER ring to this thread
  // Pin to one core where the machine has enough; a failure only costs locality.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(id_ % cores, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);

  arm_accept(main_listener_);
  arm_accept(shard_listener_);
  arm_wakeup();
  arm_tick();
  log(log_level::info, "serving on {}:{} and shard port {}", cfg_.listen_host, cfg_.listen_port, shard_port_);
  while (!stopping_ || !conns_.empty()) {
    ring_.run_once(1, 0);
    drain_inbox();
    flush_outbox();
    wake_peers();
  }
  // Drain the storage layer: every append in flight completes (and is acked if durable).
  for (auto& [name, t] : topics_) {
    for (auto& [p, ps] : t.partitions) {
      while (!ps.log->idle() || file_io_.in_flight() > 0) ring_.run_once(1, tick_ns);
    }
  }
  log(log_level::info, "stopped");
}

void shard::arm_accept(listener& l) {
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_multishot_accept(sqe, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, io::make_user_data(&l));
}

void shard::listener::complete(int res, std::uint32_t flags) noexcept {
  if (res >= 0) s->on_accept(res);
  if (!(flags & IORING_CQE_F_MORE) && !s->stopping_) s->arm_accept(*this);
}

void shard::arm_wakeup() {
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_read(sqe, event_fd_, &wakeup_.value, sizeof wakeup_.value, 0);
  io_uring_sqe_set_data64(sqe, io::make_user_data(&wakeup_));
}

void shard::wakeup::complete(int, std::uint32_t) noexcept { s->arm_wakeup(); }

void shard::arm_tick() {
  ticker_.ts.tv_sec = 0;
  ticker_.ts.tv_nsec = static_cast<long long>(tick_ns);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_timeout(sqe, &ticker_.ts, 0, 0);
  io_uring_sqe_set_data64(sqe, io::make_user_data(&ticker_));
}

void shard::ticker::complete(int, std::uint32_t) noexcept {
  s->on_tick();
  s->arm_tick();
}

void shard::on_tick() {
  const std::int64_t now = now_ms();
  for (auto& [name, t] : topics_) {
    for (auto& [p, ps] : t.partitions) {
      ps.log->tick(now);
      // Long polls whose time is up get an empty RECORDS.
      auto& ws = ps.waiters;
      for (std::size_t i = 0; i < ws.size();) {
        if (ws[i].deadline_ms <= now || stopping_) {
          forwarded_fetch req{ws[i].to, ws[i].correlation, name, p, ws[i].offset, ws[i].max_bytes, 0};
          ws.erase(ws.begin() + static_cast<std::ptrdiff_t>(i));
          fetch_local(req);
        } else {
          ++i;
        }
      }
    }
  }
  std::vector<connection*> idle;
  for (auto& [id, c] : conns_) {
    if (!c->closing && now - c->last_activity_ms > static_cast<std::int64_t>(cfg_.idle_timeout_ms)) idle.push_back(c.get());
  }
  for (connection* c : idle) {
    send_error(*c, 0, error_code::idle_timeout,
               fmt::format("no frame for {} ms (send PING to keep a connection open)", cfg_.idle_timeout_ms));
    close_connection(*c, "idle timeout");
  }
  // A closing connection whose peer does not read its last bytes goes after 5 s.
  std::vector<connection*> stuck;
  for (auto& [id, c] : conns_) {
    if (c->closing && !c->broken && now - c->closing_since_ms > 5000) stuck.push_back(c.get());
  }
  for (connection* c : stuck) {
    c->broken = true;
    ::shutdown(c->fd, SHUT_RDWR);  // fails the send in flight, which then destroys it
    maybe_destroy(*c);
  }
  if (stopping_) {
    // Draining: a connection goes once its appends are answered and its output sent
    // (or after 5 s, so a peer that stopped reading cannot hold the broker up).
    std::vector<connection*> done;
    for (auto& [id, c] : conns_) {
      const bool quiet = c->appends_in_flight == 0 && c->out.empty() && !c->send_in_flight;
      if (quiet || now >= stop_deadline_ms_) done.push_back(c.get());
    }
    for (connection* c : done) {
      close_connection(*c, "shutting down");
      maybe_destroy(*c);
    }
  }
}

void shard::drain_inbox() {
  for (auto& q : inbox_) {
    while (auto m = q->try_pop()) handle(std::move(*m));
  }
}

void shard::send_to(unsigned to, shard_message&& m) {
  if (!outbox_[to].empty() || !group_.at(to).enqueue(id_, std::move(m))) outbox_[to].push_back(std::move(m));
  wake_pending_[to] = true;
}

void shard::flush_outbox() {
  for (unsigned to = 0; to < outbox_.size(); ++to) {
    auto& q = outbox_[to];
    while (!q.empty() && group_.at(to).enqueue(id_, std::move(q.front()))) {
      q.pop_front();
      wake_pending_[to] = true;
    }
  }
}

// One wake-up per peer per loop turn, however many messages went to it: waking an
// idle shard costs tens of microseconds. MSG_RING posts a CQE straight into the
// peer's ring (no syscall of its own: it rides on our next submit); the eventfd is
// the fallback for kernels without it.
void shard::wake_peers() {
  for (unsigned to = 0; to < wake_pending_.size(); ++to) {
    if (!wake_pending_[to]) continue;
    wake_pending_[to] = false;
    shard& peer = group_.at(to);
    if (use_msg_ring_) {
      io_uring_sqe* sqe = ring_.get_sqe();
      io_uring_prep_msg_ring(sqe, peer.ring_.fd(), 0, io::make_user_data(&peer.msg_wake_), 0);
      io_uring_sqe_set_data64(sqe, 0);
    } else {
      peer.wake_by_eventfd();
    }
  }
}

// ---------------------------------------------------------------- connections

void shard::on_accept(int fd) {
  if (stopping_ || conns_.size() >= cfg_.max_connections / std::max(1u, cfg_.shards)) {
    std::vector<std::byte> err;
    codec::append_error(err, 0, stopping_ ? error_code::shutting_down : error_code::too_many_connections,
                        stopping_ ? "the broker is shutting down" : "connection limit reached");
    [[maybe_unused]] const auto n = ::send(fd, err.data(), err.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::uint64_t id = next_conn_id_++;
  auto c = std::make_unique<connection>(*this, id, fd, decoder_opts_, now_ms());
  connection& ref = *c;
  conns_.emplace(id, std::move(c));
  arm_recv(ref);
}

void shard::arm_recv(connection& c) {
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = pool_.group_id();
  io_uring_sqe_set_data64(sqe, io::make_user_data(&c.recv_op));
  c.recv_armed = true;
}

void connection::op::complete(int res, std::uint32_t flags) noexcept {
  if (this == &conn->recv_op) {
    conn->owner.on_recv(*conn, res, flags);
  } else if (this == &conn->send_op) {
    conn->owner.on_send(*conn, res);
  } else {
    conn->owner.on_read(*conn, res);
  }
}

void shard::on_recv(connection& c, int res, std::uint32_t flags) noexcept {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) c.recv_armed = false;
  if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
    io::pooled_buffer buf = pool_.take(static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT),
                                       static_cast<std::size_t>(res));
    if (!c.closing) {
      c.last_activity_ms = now_ms();
      c.decoder.feed(buf.bytes());
      for (;;) {
        const auto r = c.decoder.next();
        if (r.status == codec::errc::need_more) break;
        if (r.status != codec::errc::ok) {
          send_error(c, 0, codec::to_error_code(r.status),
                     fmt::format("{}; closing the connection", codec::errc_name(r.status)));
          close_connection(c, codec::errc_name(r.status));
          break;
        }
        handle_frame(c, r.frame);
        if (c.closing) break;
      }
    }
    // Every frame of this buffer was handled or copied (a split one sits in the
    // decoder's stash): the buffer goes back to the kernel now.
    apply_backpressure(c);
  } else if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
    // The peer closed (or reset): whatever is queued cannot be delivered.
    c.broken = true;
    if (!c.closing) close_connection(c, res == 0 ? "peer closed" : std::strerror(-res));
  }
  if (!c.recv_armed && !c.closing && !c.draining && !c.paused) arm_recv(c);  // ENOBUFS or a finished multishot
  maybe_destroy(c);
}

// Backpressure: a connection whose unacked appends plus unsent replies exceed
// --max-inflight-bytes is not read from until they fall under half of it, so a
// fast producer or a consumer that does not read cannot grow broker memory.
void shard::apply_backpressure(connection& c) {
  const std::uint64_t held = c.appends_in_flight + c.out_bytes;
  if (!c.paused && held > cfg_.max_inflight_bytes) {
    c.paused = true;
    if (c.recv_armed) {
      io_uring_sqe* sqe = ring_.get_sqe();
      io_uring_prep_cancel64(sqe, io::make_user_data(&c.recv_op), 0);
      io_uring_sqe_set_data64(sqe, 0);
    }
  } else if (c.paused && held <= cfg_.max_inflight_bytes / 2) {
    c.paused = false;
    if (!c.recv_armed && !c.closing && !c.draining) arm_recv(c);
  }
}

void shard::send_frame(connection& c, std::vector<std::byte>&& frame) {
  out_chunk ch;
  ch.bytes = std::move(frame);
  ch.len = ch.bytes.size();
  queue(c, std::move(ch));
}

void shard::queue(connection& c, out_chunk&& chunk) {
  c.out_bytes += chunk.len;
  c.out.push_back(std::move(chunk));
  pump(c);
}

void shard::send_error(connection& c, std::uint32_t correlation, error_code code, std::string_view text) {
  std::vector<std::byte> f;
  codec::append_error(f, correlation, code, text);
  send_frame(c, std::move(f));
}

// Starts the next step of the front chunk if nothing targets the socket now.
void shard::pump(connection& c) {
  if (c.send_in_flight || c.read_in_flight || c.out.empty()) return;
  out_chunk& ch = c.out.front();
  switch (ch.k) {
    case out_chunk::kind::bytes: {
      io_uring_sqe* sqe = ring_.get_sqe();
      io_uring_prep_send(sqe, c.fd, ch.bytes.data() + ch.sent, ch.len - ch.sent, MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, io::make_user_data(&c.send_op));
      c.send_in_flight = true;
      return;
    }
    case out_chunk::kind::file_copy: {
      if (!ch.read_done) {
        // Copy path: read the next piece of the range into a pooled-size buffer, then send it.
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(copy_chunk, ch.len - ch.sent));
        ch.bytes.resize(n);
        io_uring_sqe* sqe = ring_.get_sqe();
        io_uring_prep_read(sqe, ch.fd, ch.bytes.data(), static_cast<unsigned>(n), ch.pos + ch.sent);
        io_uring_sqe_set_data64(sqe, io::make_user_data(&c.read_op));
        c.read_in_flight = true;
        return;
      }
      io_uring_sqe* sqe = ring_.get_sqe();
      io_uring_prep_send(sqe, c.fd, ch.bytes.data(), ch.bytes.size(), MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, io::make_user_data(&c.send_op));
      c.send_in_flight = true;
      return;
    }
    case out_chunk::kind::file_splice: {
      if (c.pipe_r < 0) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) {
          close_connection(c, "pipe2 failed");
          return;
        }
        c.pipe_r = p[0];
        c.pipe_w = p[1];
        ::fcntl(c.pipe_w, F_SETPIPE_SZ, static_cast<int>(pipe_size));
      }
      io_uring_sqe* sqe = ring_.get_sqe();
      if (c.in_pipe == 0) {
        // file -> pipe, at most what the pipe holds: a larger splice returns short.
        const auto n = static_cast<unsigned>(std::min<std::uint64_t>(pipe_size, ch.len - ch.sent));
        io_uring_prep_splice(sqe, ch.fd, static_cast<std::int64_t>(ch.pos + ch.sent), c.pipe_w, -1, n, 0);
        c.splice_to_pipe = true;
      } else {
        io_uring_prep_splice(sqe, c.pipe_r, -1, c.fd, -1, static_cast<unsigned>(c.in_pipe), 0);
        c.splice_to_pipe = false;
      }
      io_uring_sqe_set_data64(sqe, io::make_user_data(&c.send_op));
      c.send_in_flight = true;
      return;
    }
  }
}

void shard::on_read(connection& c, int res) noexcept {
  c.read_in_flight = false;
  if (c.out.empty() || c.broken) {
    maybe_destroy(c);
    return;
  }
  out_chunk& ch = c.out.front();
  if (res <= 0) {
    c.broken = true;
    close_connection(c, "segment read failed");
    maybe_destroy(c);
    return;
  }
  ch.bytes.resize(static_cast<std::size_t>(res));
  ch.read_done = true;
  pump(c);
}

void shard::on_send(connection& c, int res) noexcept {
  c.send_in_flight = false;
  if (res < 0 || c.broken || c.out.empty()) {
    if (res < 0) {
      c.broken = true;  // the peer is gone: nothing queued can reach it
      close_connection(c, std::strerror(-res));
    }
    maybe_destroy(c);
    return;
  }
  out_chunk& ch = c.out.front();
  std::uint64_t progressed = 0;
  if (ch.k == out_chunk::kind::file_splice) {
    if (c.splice_to_pipe) {
      if (res == 0) {
        close_connection(c, "segment shorter than its index says");
        maybe_destroy(c);
        return;
      }
      c.in_pipe += static_cast<std::uint64_t>(res);
    } else {
      c.in_pipe -= static_cast<std::uint64_t>(res);
      progressed = static_cast<std::uint64_t>(res);
    }
  } else if (ch.k == out_chunk::kind::file_copy) {
    // A short send keeps the rest of the buffer for the next send.
    progressed = static_cast<std::uint64_t>(res);
    ch.bytes.erase(ch.bytes.begin(), ch.bytes.begin() + res);
    if (ch.bytes.empty()) ch.read_done = false;
  } else {
    progressed = static_cast<std::uint64_t>(res);
  }
  ch.sent += progressed;
  c.out_bytes -= progressed;
  if (ch.sent == ch.len && c.in_pipe == 0) c.out.pop_front();
  pump(c);
  apply_backpressure(c);
  maybe_destroy(c);
}

// Reads nothing more from `c`; what is queued (an ERROR saying why, say) is still
// sent unless the peer is gone, then the socket is closed (maybe_destroy).
void shard::close_connection(connection& c, const char* why) {
  if (c.closing) return;
  c.closing = true;
  c.draining = true;
  c.closing_since_ms = now_ms();
  log(log_level::debug, "closing connection {}: {}", c.id, why);
  // An armed multishot recv keeps the socket open after close(): cancel it first.
  if (c.recv_armed) {
    io_uring_sqe* sqe = ring_.get_sqe();
    io_uring_prep_cancel64(sqe, io::make_user_data(&c.recv_op), 0);
    io_uring_sqe_set_data64(sqe, 0);
  }
}

void shard::maybe_destroy(connection& c) {
  if (!c.closing || !c.idle_io()) return;
  if (!c.broken && !c.out.empty()) return;  // still flushing
  ::shutdown(c.fd, SHUT_RDWR);
  ::close(c.fd);
  if (c.pipe_r >= 0) ::close(c.pipe_r);
  if (c.pipe_w >= 0) ::close(c.pipe_w);
  conns_.erase(c.id);
}

// ---------------------------------------------------------------- requests

void shard::handle_frame(connection& c, const codec::frame_view& f) {
  const auto op = f.header.op;
  if (!c.hello_done && op != opcode::hello && op != opcode::ping) {
    send_error(c, f.header.correlation, error_code::not_ready, "send HELLO first");
    return;
  }
  switch (op) {
    case opcode::hello: return handle_hello(c, f);
    case opcode::ping: {
      std::vector<std::byte> out;
      codec::append_frame(out, opcode::pong, f.header.correlation, f.body);
      return send_frame(c, std::move(out));
    }
    case opcode::metadata: return handle_metadata(c, f);
    case opcode::create_topic:
    case opcode::delete_topic: return handle_admin(c, f);
    case opcode::publish: return handle_publish(c, f);
    case opcode::fetch: return handle_fetch(c, f);
    case opcode::pong: return;
    default:
      return send_error(c, f.header.correlation, error_code::unknown_opcode,
                        fmt::format("{} is not a request this broker serves", codec::opcode_name(op)));
  }
}

void shard::handle_hello(connection& c, const codec::frame_view& f) {
  const auto h = codec::verify_control<fb::Hello>(f.body);
  if (!h) return send_error(c, f.header.correlation, error_code::malformed_body, "HELLO body does not verify");
  const std::uint8_t lo = (*h)->min_version(), hi = (*h)->max_version();
  if (hi < codec::min_version || lo > codec::max_version || lo > hi) {
    send_error(c, f.header.correlation, error_code::unsupported_version,
               fmt::format("this broker speaks protocol versions {}..{}; the client offered {}..{}", codec::min_version,
                           codec::max_version, lo, hi));
    return close_connection(c, "unsupported version");
  }
  c.hello_done = true;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::ShardEndpoint>> eps;
  for (unsigned i = 0; i < group_.size(); ++i) {
    eps.push_back(fb::CreateShardEndpoint(fbb, i, fbb.CreateString(cfg_.listen_host), group_.port_of(i)));
  }
  const auto shards = fbb.CreateVector(eps);
  const auto name = fbb.CreateString("mcp-broker");
  fb::HelloOkBuilder b(fbb);
  b.add_version(std::min<std::uint8_t>(hi, codec::max_version));
  b.add_broker_name(name);
  b.add_max_frame(cfg_.max_frame);
  b.add_shard_count(group_.size());
  b.add_shards(shards);
  fbb.Finish(b.Finish());
  send_frame(c, control_frame_bytes(opcode::hello_ok, f.header.correlation, fbb));
}

void shard::handle_metadata(connection& c, const codec::frame_view& f) {
  const auto req = codec::verify_control<fb::MetadataRequest>(f.body);
  if (!req) return send_error(c, f.header.correlation, error_code::malformed_body, "METADATA body does not verify");
  std::vector<std::string> wanted;
  if ((*req)->topics() != nullptr) {
    for (const auto* s : *(*req)->topics()) wanted.push_back(s->str());
  }
  if (wanted.empty()) {
    for (const auto& [name, t] : topics_) wanted.push_back(name);
  }
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::TopicMetadata>> tops;
  for (const auto& name : wanted) {
    const auto it = topics_.find(name);
    if (it == topics_.end()) {
      const auto n = fbb.CreateString(name);
      fb::TopicMetadataBuilder tb(fbb);
      tb.add_name(n);
      tb.add_error_code(static_cast<std::uint16_t>(error_code::unknown_topic));
      tops.push_back(tb.Finish());
      continue;
    }
    std::vector<flatbuffers::Offset<fb::PartitionMetadata>> parts;
    for (std::uint32_t p = 0; p < it->second.config.partitions; ++p) {
      const unsigned owner = owner_shard(name, p, group_.size());
      fb::PartitionMetadataBuilder pb(fbb);
      pb.add_partition(p);
      pb.add_shard(owner);
      pb.add_port(group_.port_of(owner));
      // Offsets are known only to the owner: this shard reports its own partitions'.
      if (const auto ps = it->second.partitions.find(p); ps != it->second.partitions.end()) {
        pb.add_log_start_offset(ps->second.log->log_start());
        pb.add_log_end_offset(ps->second.log->high_watermark());
        pb.add_size_bytes(ps->second.log->size_bytes());
      }
      parts.push_back(pb.Finish());
    }
    const auto n = fbb.CreateString(name);
    const auto pv = fbb.CreateVector(parts);
    fb::TopicConfigBuilder cb(fbb);
    cb.add_partitions(it->second.config.partitions);
    cb.add_retention_bytes(it->second.config.retention_bytes);
    cb.add_retention_ms(it->second.config.retention_ms);
    cb.add_segment_bytes(it->second.config.segment_bytes);
    const auto cfg = cb.Finish();
    fb::TopicMetadataBuilder tb(fbb);
    tb.add_name(n);
    tb.add_config(cfg);
    tb.add_partitions(pv);
    tops.push_back(tb.Finish());
  }
  std::vector<flatbuffers::Offset<fb::ShardEndpoint>> eps;
  for (unsigned i = 0; i < group_.size(); ++i) {
    eps.push_back(fb::CreateShardEndpoint(fbb, i, fbb.CreateString(cfg_.listen_host), group_.port_of(i)));
  }
  const auto sv = fbb.CreateVector(eps);
  const auto tv = fbb.CreateVector(tops);
  fb::MetadataReplyBuilder rb(fbb);
  rb.add_shards(sv);
  rb.add_topics(tv);
  fbb.Finish(rb.Finish());
  send_frame(c, control_frame_bytes(opcode::metadata_ok, f.header.correlation, fbb));
}

void shard::handle_admin(connection& c, const codec::frame_view& f) {
  admin_request r;
  r.from = {id_, c.id};
  r.correlation = f.header.correlation;
  if (f.header.op == opcode::create_topic) {
    const auto ct = codec::verify_control<fb::CreateTopic>(f.body);
    if (!ct || (*ct)->name() == nullptr) {
      return send_error(c, f.header.correlation, error_code::malformed_body, "CREATE_TOPIC body does not verify");
    }
    r.what = admin_request::kind::create;
    r.name = (*ct)->name()->str();
    if (const auto* tc = (*ct)->config()) {
      r.config.partitions = tc->partitions();
      r.config.retention_bytes = tc->retention_bytes();
      r.config.retention_ms = tc->retention_ms();
      if (tc->segment_bytes() > 0) r.config.segment_bytes = tc->segment_bytes();
      switch (tc->durability()) {
        case fb::DurabilityKind::None: r.config.level = {storage::durability::kind::none, 0}; break;
        case fb::DurabilityKind::Sync: r.config.level = {storage::durability::kind::sync, 0}; break;
        case fb::DurabilityKind::Interval:
          r.config.level = {storage::durability::kind::interval, tc->durability_interval_ms()};
          break;
        case fb::DurabilityKind::Default: r.config.level.interval_ms = 0xFFFFFFFF; break;  // marker: broker default
      }
    } else {
      r.config.level.interval_ms = 0xFFFFFFFF;
    }
  } else {
    const auto dt = codec::verify_control<fb::DeleteTopic>(f.body);
    if (!dt || (*dt)->name() == nullptr) {
      return send_error(c, f.header.correlation, error_code::malformed_body, "DELETE_TOPIC body does not verify");
    }
    r.what = admin_request::kind::remove;
    r.name = (*dt)->name()->str();
  }
  if (!group_.post_to_controller(id_, std::move(r))) {
    send_error(c, f.header.correlation, error_code::resource_exhausted, "the broker is busy; retry");
  }
}

void shard::handle_publish(connection& c, const codec::frame_view& f) {
  const auto p = codec::decode_publish(f.body);
  if (!p) return send_error(c, f.header.correlation, error_code::malformed_body, "PUBLISH body is malformed");
  const auto t = topics_.find(p->header.topic);
  if (t == topics_.end()) {
    return send_error(c, f.header.correlation, error_code::unknown_topic,
                      fmt::format("no topic '{}'", p->header.topic));
  }
  if (p->header.partition >= t->second.config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has partitions 0..{}", p->header.topic, t->second.config.partitions - 1));
  }
  // Validate every record before anything touches a log.
  const auto run = codec::validate_records(p->records, decoder_opts_);
  if (!run || run->count != p->header.record_count) {
    return send_error(c, f.header.correlation, error_code::malformed_body,
                      run ? fmt::format("record_count says {} but {} records follow", p->header.record_count, run->count)
                          : fmt::format("a record in the batch is invalid: {}", codec::errc_name(run.error())));
  }
  // One copy per batch (not per record): the receive buffer goes back to the
  // kernel now, and the batch's own buffer lives until its append completes.
  std::vector<std::byte> records(p->records.begin(), p->records.end());
  c.appends_in_flight += records.size();
  const unsigned owner = owner_shard(p->header.topic, p->header.partition, group_.size());
  if (owner == id_) {
    append_local({id_, c.id}, f.header.correlation, std::string(p->header.topic), p->header.partition,
                 p->header.record_count, std::move(records));
  } else {
    send_to(owner, forwarded_publish{{id_, c.id}, f.header.correlation, std::string(p->header.topic),
                                     p->header.partition, p->header.record_count, std::move(records)});
  }
}

// Completion of one append: owns the batch bytes until the log is done with them.
class shard::pending_append final : public storage::append_callback {
 public:
  pending_append(shard& s, conn_ref to, std::uint32_t corr, std::string topic, std::uint32_t partition,
              std::vector<std::byte>&& bytes)
      : s_(s), to_(to), corr_(corr), topic_(std::move(topic)), partition_(partition), bytes_(std::move(bytes)) {}
  std::vector<std::byte>& bytes() noexcept { return bytes_; }
  void append_done(std::uint64_t first, std::uint32_t count, const storage::error* err) noexcept override {
    forwarded_ack a;
    a.conn = to_.id;
    a.correlation = corr_;
    a.ack = {first, count, partition_, 0, 0};
    if (err != nullptr) {
      a.code = error_code::storage_error;
      a.message = err->message;
    }
    a.ack.error = static_cast<std::uint16_t>(a.code);
    a.bytes = bytes_.size();
    shard& s = s_;
    const conn_ref to = to_;
    const std::string topic = topic_;
    const std::uint32_t partition = partition_;
    delete this;  // the log is done with the bytes
    if (to.shard == s.id_) {
      s.deliver_ack(a);
    } else {
      s.send_to(to.shard, std::move(a));
    }
    if (err == nullptr) {
      auto t = s.topics_.find(topic);
      if (t != s.topics_.end()) {
        auto p = t->second.partitions.find(partition);
        if (p != t->second.partitions.end()) s.wake_waiters(topic, p->second, partition);
      }
    }
  }

 private:
  shard& s_;
  conn_ref to_;
  std::uint32_t corr_;
  std::string topic_;
  std::uint32_t partition_;
  std::vector<std::byte> bytes_;
};

void shard::append_local(conn_ref from, std::uint32_t correlation, const std::string& topic, std::uint32_t partition,
                         std::uint32_t count, std::vector<std::byte>&& records) {
  auto fail = [&](error_code code, std::string msg) {
    forwarded_ack a{from.id, correlation, {0, count, partition, static_cast<std::uint16_t>(code), 0}, code, std::move(msg),
                    records.size()};
    if (from.shard == id_) {
      deliver_ack(a);
    } else {
      send_to(from.shard, std::move(a));
    }
  };
  const auto t = topics_.find(topic);
  if (t == topics_.end()) return fail(error_code::unknown_topic, fmt::format("no topic '{}'", topic));
  const auto p = t->second.partitions.find(partition);
  if (p == t->second.partitions.end()) return fail(error_code::unknown_partition, "partition not on this shard");
  auto* done = new pending_append(*this, from, correlation, topic, partition, std::move(records));
  const auto r = p->second.log->append(done->bytes(), count, now_ms(), done);
  if (!r) {
    delete done;
    return fail(error_code::storage_error, r.error().message);
  }
}

void shard::deliver_ack(const forwarded_ack& a) {
  connection* c = find(a.conn);
  if (c == nullptr) return;
  c->appends_in_flight -= std::min<std::uint64_t>(a.bytes, c->appends_in_flight);
  if (c->closing) return;
  apply_backpressure(*c);
  if (a.code != error_code::none) return send_error(*c, a.correlation, a.code, a.message);
  std::vector<std::byte> f(codec::frame_size(codec::ack_size));
  codec::encode_ack(std::span(f).subspan<codec::header_size, codec::ack_size>(), a.ack);
  codec::seal_frame(f, opcode::ack, a.correlation);
  send_frame(*c, std::move(f));
}

void shard::handle_fetch(connection& c, const codec::frame_view& f) {
  const auto q = codec::decode_fetch(f.body);
  if (!q) return send_error(c, f.header.correlation, error_code::malformed_body, "FETCH body is malformed");
  const auto t = topics_.find(q->topic);
  if (t == topics_.end()) return send_error(c, f.header.correlation, error_code::unknown_topic, fmt::format("no topic '{}'", q->topic));
  if (q->partition >= t->second.config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has partitions 0..{}", q->topic, t->second.config.partitions - 1));
  }
  forwarded_fetch req{{id_, c.id}, f.header.correlation, std::string(q->topic), q->partition, q->offset,
                      std::max<std::uint32_t>(q->max_bytes, 1), q->max_wait_ms};
  const unsigned owner = owner_shard(q->topic, q->partition, group_.size());
  if (owner == id_) {
    fetch_local(req);
  } else {
    send_to(owner, std::move(req));
  }
}

void shard::fetch_local(const forwarded_fetch& req) {
  fetch_result r;
  r.conn = req.from.id;
  r.correlation = req.correlation;
  auto reply = [&](fetch_result&& res) {
    if (req.from.shard == id_) {
      deliver_fetch(std::move(res));
    } else {
      send_to(req.from.shard, std::move(res));
    }
  };
  const auto t = topics_.find(req.topic);
  partition_state* ps = nullptr;
  if (t != topics_.end()) {
    const auto it = t->second.partitions.find(req.partition);
    if (it != t->second.partitions.end()) ps = &it->second;
  }
  if (ps == nullptr) {
    r.code = error_code::unknown_topic;
    r.message = fmt::format("no partition {} of topic '{}' on this broker", req.partition, req.topic);
    return reply(std::move(r));
  }
  const auto p = t->second.partitions.find(req.partition);
  storage::partition_log& log = *p->second.log;
  const auto slice = log.locate(req.offset, req.max_bytes);
  if (!slice) {
    r.code = slice.error().code == storage::errc::out_of_range ? error_code::out_of_range : error_code::storage_error;
    r.message = slice.error().message;
    return reply(std::move(r));
  }
  if (slice->bytes == 0 && req.max_wait_ms > 0 && !stopping_) {
    p->second.waiters.push_back({req.from, req.correlation, req.offset, req.max_bytes,
                                 now_ms() + static_cast<std::int64_t>(req.max_wait_ms)});
    return;
  }
  r.header = {req.offset, log.high_watermark(), log.log_start(), req.partition, slice->count(),
              static_cast<std::uint32_t>(slice->bytes)};
  r.fd = slice->fd;
  r.position = slice->position;
  reply(std::move(r));
}

void shard::wake_waiters(const std::string& topic, partition_state& ps, std::uint32_t partition) {
  if (ps.waiters.empty()) return;
  auto ws = std::move(ps.waiters);
  ps.waiters.clear();
  for (const auto& w : ws) {
    // A waiter whose offset is still at the end keeps waiting (max_wait left as is).
    const std::int64_t left = w.deadline_ms - now_ms();
    fetch_local({w.to, w.correlation, topic, partition, w.offset, w.max_bytes,
                 static_cast<std::uint32_t>(std::max<std::int64_t>(left, 1))});
  }
}

void shard::deliver_fetch(fetch_result&& r) {
  connection* c = find(r.conn);
  if (c == nullptr || c->closing) return;
  if (r.code != error_code::none) return send_error(*c, r.correlation, r.code, r.message);
  std::vector<std::byte> f(codec::frame_size(codec::records_size));
  codec::encode_records(std::span(f).subspan<codec::header_size, codec::records_size>(), r.header);
  codec::seal_frame(f, opcode::records, r.correlation);
  send_frame(*c, std::move(f));
  if (r.header.byte_count == 0) return;
  out_chunk ch;
  ch.k = cfg_.delivery == delivery_mode::zero_copy ? out_chunk::kind::file_splice : out_chunk::kind::file_copy;
  ch.fd = r.fd;
  ch.pos = r.position;
  ch.len = r.header.byte_count;
  queue(*c, std::move(ch));
}

// ---------------------------------------------------------------- messages

void shard::handle(shard_message&& m) {
  std::visit(
      [this](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, topic_added>) {
          topic_state& t = topics_[msg.name];
          t.config = msg.config;
          for (auto& [p, log] : msg.logs) t.partitions[p].log = std::move(log);
        } else if constexpr (std::is_same_v<T, topic_removed>) {
          const auto it = topics_.find(msg.name);
          if (it == topics_.end()) return;
          // Appends in flight hold the logs: drain them before letting go.
          for (auto& [p, ps] : it->second.partitions) {
            while (!ps.log->idle()) ring_.run_once(1, tick_ns);
          }
          topics_.erase(msg.name);
        } else if constexpr (std::is_same_v<T, admin_reply>) {
          connection* c = find(msg.conn);
          if (c == nullptr || c->closing) return;
          if (msg.code != error_code::none) return send_error(*c, msg.correlation, msg.code, msg.message);
          std::vector<std::byte> f;
          codec::append_frame(f, opcode::ok, msg.correlation, {});
          send_frame(*c, std::move(f));
        } else if constexpr (std::is_same_v<T, forwarded_publish>) {
          append_local(msg.from, msg.correlation, msg.topic, msg.partition, msg.count, std::move(msg.records));
        } else if constexpr (std::is_same_v<T, forwarded_ack>) {
          deliver_ack(msg);
        } else if constexpr (std::is_same_v<T, forwarded_fetch>) {
          fetch_local(msg);
        } else if constexpr (std::is_same_v<T, fetch_result>) {
          deliver_fetch(std::move(msg));
        } else if constexpr (std::is_same_v<T, stop_serving>) {
          stopping_ = true;
          io_uring_sqe* sqe = ring_.get_sqe();
          io_uring_prep_cancel_fd(sqe, main_listener_.fd, 0);
          io_uring_sqe_set_data64(sqe, 0);
          sqe = ring_.get_sqe();
          io_uring_prep_cancel_fd(sqe, shard_listener_.fd, 0);
          io_uring_sqe_set_data64(sqe, 0);
          stop_deadline_ms_ = now_ms() + 5000;
          for (auto& [id, c] : conns_) {
            // Read nothing more; what is in flight is still answered (see on_tick).
            c->draining = true;
            if (c->recv_armed) {
              io_uring_sqe* cancel = ring_.get_sqe();
              io_uring_prep_cancel64(cancel, io::make_user_data(&c->recv_op), 0);
              io_uring_sqe_set_data64(cancel, 0);
            }
          }
        }
      },
      std::move(m));
}

}  // namespace mcp::broker
