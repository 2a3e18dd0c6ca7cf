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
#include <thread>
#include <utility>

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
constexpr std::int64_t retention_period_ms = 1000;

// A port of a broker that has just exited can stay taken for a moment: the kernel
// tears its rings down after the process is gone, and a multishot accept still
// armed (after kill -9) holds the listening socket until then. So a port in use is
// tried again for a while before start-up fails; a live broker on it still fails.
constexpr auto port_in_use_wait = std::chrono::seconds(3);

int listen_socket(const std::string& host, std::uint16_t port, bool reuse_port) {
  const bool v6 = host.find(':') != std::string::npos;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (v6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(addr);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1) throw std::runtime_error("bad IPv6 address " + host);
    addr_len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in&>(addr);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) throw std::runtime_error("bad IPv4 address " + host);
    addr_len = sizeof a;
  }
  const auto give_up = std::chrono::steady_clock::now() + port_in_use_wait;
  for (bool warned = false;; warned = true) {
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) == 0 && ::listen(fd, 1024) == 0) return fd;
    const int e = errno;
    ::close(fd);
    if (e != EADDRINUSE || std::chrono::steady_clock::now() >= give_up) {
      throw std::runtime_error(fmt::format("listen on {}:{}: {}", host, port, std::strerror(e)));
    }
    if (!warned) {
      log(log_level::warn, "{}:{} is in use; trying again for up to {} s (a broker that just stopped frees it in a moment)",
          host, port, port_in_use_wait.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}


// The copy delivery path's registered buffers: a connection holds one per piece
// of a range (READ_FIXED, then SEND), so 32 x 256 KiB = 8 MiB a shard bounds that
// path's memory; more readers than buffers take turns.
constexpr unsigned copy_buffers = 32;
constexpr std::size_t copy_buffer_size = 256u << 10;

}  // namespace

// ---------------------------------------------------------------- set-up

shard::shard(unsigned id, const broker_config& cfg, const io::ring_features& features, shard_group& group)
    : id_(id),
      cfg_(cfg),
      group_(group),
      ring_({.entries = 4096, .start_disabled = true}, features),
      pool_(ring_, 0, cfg.recv_buffers, cfg.recv_buffer_size),
      file_io_(ring_, features.unlinkat) {
  decoder_opts_.max_frame = cfg.max_frame;
  main_listener_.s = shard_listener_.s = this;
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
  if (cfg.delivery == delivery_mode::copy) {
    copy_bufs_.emplace(ring_, copy_buffers, copy_buffer_size);
    if (!copy_bufs_->registered()) {
      log(log_level::warn, "copy delivery: registering {} buffers of {} KiB failed ({}); using plain READ", copy_buffers,
          copy_buffer_size >> 10, std::strerror(-copy_bufs_->register_error()));
    }
  }
}

void shard::listen_shared() {
  main_listener_.fd = listen_socket(cfg_.listen_host, cfg_.listen_port, true);
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
  thread_fd_closer = {this, &shard::close_in_ring};

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
  // The listening sockets go now, while the process lives: an accept still armed
  // would keep one open until the kernel tears the ring down, after exit, and a
  // broker restarted at once would find its ports taken (or, on the shared port,
  // share it with a socket nobody serves).
  const auto give_up = now_ms() + 1000;
  while ((main_listener_.armed || shard_listener_.armed) && now_ms() < give_up) ring_.run_once(1, tick_ns);
  for (listener* l : {&main_listener_, &shard_listener_}) {
    if (!l->armed && l->fd >= 0) ::close(std::exchange(l->fd, -1));
  }
  // Cold reads write into their own buffers: wait for them (their retries answer no one now).
  while (!cold_reads_.empty()) ring_.run_once(1, tick_ns);
  // Drain the storage layer: every append in flight completes (and is acked if durable).
  for (auto& [name, t] : topics_) {
    for (auto& [p, ps] : t.partitions) {
      ps.log->write_indexes();  // so the next start need not rebuild their tails
      while (!ps.log->idle() || file_io_.in_flight() > 0) ring_.run_once(1, tick_ns);
    }
  }
  // Closes queued from here on would never be submitted.
  thread_fd_closer = {};
  ring_.submit();
  log(log_level::info, "stopped");
}

void shard::close_in_ring(void* ctx, int fd) noexcept {
  shard& s = *static_cast<shard*>(ctx);
  io_uring_sqe* sqe = s.ring_.get_sqe();
  io_uring_prep_close(sqe, fd);
  // On an io-wq worker: the last reference of a deleted file frees its blocks there.
  sqe->flags |= IOSQE_ASYNC;
  io_uring_sqe_set_data64(sqe, 0);
}

void shard::arm_accept(listener& l) {
  l.armed = true;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_multishot_accept(sqe, l.fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, io::make_user_data(&l));
}

void shard::listener::complete(int res, std::uint32_t flags) noexcept {
  if (res >= 0) s->on_accept(res);
  if (!(flags & IORING_CQE_F_MORE)) {
    armed = false;
    if (!s->stopping_) s->arm_accept(*this);
  }
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

void shard::run_retention(std::int64_t now) {
  if (stopping_) return;
  // Every topic: one without limits still has its idle active segment rolled by
  // segment_ms (partition_log::apply_retention); the pass is cheap when nothing is due.
  for (auto& [name, t] : topics_) {
    for (auto& [p, ps] : t.partitions) {
      // Dropped segments' files are unlinked through the ring (file_io::remove):
      // freeing a large file can take ~100 ms (docs/storage.md "Retention").
      const auto removed = ps.log->apply_retention(now);
      if (!removed) {
        broker::log(log_level::error, "retention of {}/{}: {}", name, p, removed.error().message);
        continue;
      }
      if (*removed == 0) continue;
      segment_files_deleted();
      const std::uint64_t start = ps.log->log_start();
      broker::log(log_level::info, "retention of {}/{}: deleted {} segment(s); log starts at offset {}", name, p, *removed,
                  start);
      for (auto& [group, table] : ps.groups) {
        if (const auto n = table.skip_to(start); n > 0) {
          broker::log(log_level::warn, "group {} on {}/{}: {} records deleted by retention before they were done", group,
                      name, p, n);
        }
      }
    }
  }
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
  groups_tick(now);
  if (now >= next_retention_ms_) {
    next_retention_ms_ = now + retention_period_ms;
    run_retention(now);
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
  // The controller's queue first: a topic it announced before answering a client
  // must be known here before a peer forwards that client's first request for it.
  drain_controller();
  for (std::size_t i = 0; i + 1 < inbox_.size(); ++i) {
    while (auto m = inbox_[i]->try_pop()) handle(std::move(*m));
  }
}

void shard::drain_controller() {
  auto& from_controller = *inbox_.back();
  while (auto m = from_controller.try_pop()) handle(std::move(*m));
}

shard::topic_state* shard::find_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    // A request forwarded by a peer can overtake the controller's announcement of
    // a new topic on our queues (the peer saw it first): look at the controller's
    // queue before saying the topic does not exist.
    drain_controller();
    it = topics_.find(name);
  }
  return it == topics_.end() ? nullptr : &it->second;
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

// ---------------------------------------------------------------- messages

void shard::handle(shard_message&& m) {
  std::visit(
      [this](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, topic_added>) {
          topic_state& t = topics_[msg.name];
          t.config = msg.config;
          for (auto& [p, log] : msg.logs) t.partitions[p].log = std::move(log);
          for (const auto& gp : msg.positions) {
            if (const auto it = t.partitions.find(gp.partition); it != t.partitions.end()) {
              it->second.persisted[gp.group] = gp.offset;
            }
          }
        } else if constexpr (std::is_same_v<T, topic_removed>) {
          std::vector<forwarded_fetch> parked;
          if (const auto it = topics_.find(msg.name); it != topics_.end()) {
            // Appends in flight hold the logs: drain them before letting go.
            for (auto& [p, ps] : it->second.partitions) {
              while (!ps.log->idle()) ring_.run_once(1, tick_ns);
              for (const auto& w : ps.waiters) parked.push_back({w.to, w.correlation, msg.name, p, w.offset, w.max_bytes, 0});
            }
            topics_.erase(it);
          }
          for (const auto& req : parked) fetch_local(req);  // answered UNKNOWN_TOPIC
          // Tell the controller, which deletes the files once every shard has.
          while (!group_.post_to_controller(id_, topic_closed{msg.name})) std::this_thread::yield();
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
        } else if constexpr (std::is_same_v<T, group_pull>) {
          owner_pull(std::move(msg));
        } else if constexpr (std::is_same_v<T, group_leases>) {
          on_leases(std::move(msg));
        } else if constexpr (std::is_same_v<T, group_commit>) {
          owner_commit(msg);
        } else if constexpr (std::is_same_v<T, group_nack>) {
          owner_nack(msg);
        } else if constexpr (std::is_same_v<T, group_leave>) {
          owner_leave(msg);
        } else if constexpr (std::is_same_v<T, group_released>) {
          on_released(msg);
        } else if constexpr (std::is_same_v<T, group_ready>) {
          on_ready(msg);
        } else if constexpr (std::is_same_v<T, stats_request>) {
          serve_stats(msg);
        } else if constexpr (std::is_same_v<T, stats_reply>) {
          on_stats_reply(std::move(msg));
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
