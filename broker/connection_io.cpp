// The socket side of a shard's connections: accept, multishot recv into pooled
// buffers, the ordered send queue (bytes, READ+SEND copies, splice file -> pipe ->
// socket), backpressure, and closing.

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "broker/shard.h"

#include <fmt/format.h>

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
constexpr std::size_t pipe_size = 1 << 20;
}  // namespace

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

namespace {
constexpr std::size_t coalesce_frame_max = 4 << 10;  // a frame this small is copied to join a send
constexpr std::size_t coalesce_send_max = 64 << 10;

// Small byte frames queued behind the front one (the ACKs of a group commit, say)
// join it, in order, so they leave in one send: one SEND, one TCP segment and one
// wake-up of the peer instead of one each. Only small frames are copied, and only
// into a front chunk that is small itself.
void coalesce_small_frames(connection& c) {
  if (c.out.front().len > coalesce_frame_max) return;
  while (c.out.size() > 1) {
    // Erasing the second element of a deque moves the first: no reference outlives it.
    out_chunk& front = c.out.front();
    const out_chunk& next = c.out[1];
    if (next.k != out_chunk::kind::bytes || next.sent != 0 || next.len > coalesce_frame_max ||
        front.len + next.len > coalesce_send_max) {
      break;
    }
    front.bytes.insert(front.bytes.end(), next.bytes.begin(), next.bytes.end());
    front.len += next.len;
    c.out.erase(c.out.begin() + 1);
  }
}
}  // namespace

// Starts the next step of the front chunk if nothing targets the socket now.
void shard::pump(connection& c) {
  if (c.send_in_flight || c.read_in_flight || c.out.empty()) return;
  if (c.out.front().k == out_chunk::kind::bytes) coalesce_small_frames(c);
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
        // Copy path: read the next piece of the range into one of the shard's
        // registered buffers (READ_FIXED), then send it. No buffer free: wait
        // for one (release_copy_buffer) rather than allocate.
        if (c.copy_buf < 0) {
          const auto b = copy_bufs_->take();
          if (!b) {
            if (!c.waiting_copy_buf) copy_waiters_.push_back(c.id);
            c.waiting_copy_buf = true;
            return;
          }
          c.copy_buf = static_cast<int>(*b);
        }
        const auto n = static_cast<unsigned>(std::min<std::uint64_t>(copy_bufs_->size(), ch.len - ch.sent));
        std::byte* buf = copy_bufs_->data(static_cast<unsigned>(c.copy_buf));
        io_uring_sqe* sqe = ring_.get_sqe();
        if (copy_bufs_->registered()) {
          io_uring_prep_read_fixed(sqe, ch.fd, buf, n, ch.pos + ch.sent, c.copy_buf);
        } else {
          io_uring_prep_read(sqe, ch.fd, buf, n, ch.pos + ch.sent);
        }
        io_uring_sqe_set_data64(sqe, io::make_user_data(&c.read_op));
        c.read_in_flight = true;
        return;
      }
      io_uring_sqe* sqe = ring_.get_sqe();
      io_uring_prep_send(sqe, c.fd, copy_bufs_->data(static_cast<unsigned>(c.copy_buf)) + c.copy_off,
                         c.copy_len - c.copy_off, MSG_NOSIGNAL);
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
  c.copy_len = static_cast<std::size_t>(res);
  c.copy_off = 0;
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
    // A short send keeps the rest of the buffer for the next send; a buffer
    // sent whole goes back (to a waiting connection first), and the next piece
    // takes one again.
    progressed = static_cast<std::uint64_t>(res);
    c.copy_off += static_cast<std::size_t>(res);
    if (c.copy_off == c.copy_len) {
      ch.read_done = false;
      release_copy_buffer(c);
    }
  } else {
    progressed = static_cast<std::uint64_t>(res);
  }
  ch.sent += progressed;
  c.out_bytes -= progressed;
  if (ch.sent == ch.len && c.in_pipe == 0) c.out.pop_front();
  pump(c);
  apply_backpressure(c);
  if (!c.follows.empty()) resume_follows(c);  // those held while the peer was behind
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
  end_subscriptions(c);  // its leases go to the group's other members now
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
  release_copy_buffer(c);  // no READ is in flight (idle_io)
  conns_.erase(c.id);
}

void shard::release_copy_buffer(connection& c) {
  if (c.copy_buf < 0) return;
  copy_bufs_->give_back(static_cast<unsigned>(c.copy_buf));
  c.copy_buf = -1;
  c.copy_len = c.copy_off = 0;
  while (copy_bufs_->available() > 0 && !copy_waiters_.empty()) {
    connection* w = find(copy_waiters_.front());
    copy_waiters_.pop_front();
    if (w == nullptr) continue;
    w->waiting_copy_buf = false;
    if (w == &c) continue;  // c goes on by itself (on_send pumps it) or is being destroyed
    pump(*w);
  }
}

}  // namespace mcp::broker
