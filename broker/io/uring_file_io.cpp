#include "broker/io/uring_file_io.h"

#include <algorithm>
#include <cassert>
#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

namespace mcp::broker::io {

namespace {
constexpr std::size_t max_parts = 64;             // iovecs per coalesced write (IOV_MAX is 1024)
constexpr std::size_t max_write_bytes = 8u << 20;  // a write's result must fit an int
}  // namespace

uring_file_io::~uring_file_io() { assert(in_flight_ == 0); }

uring_file_io::op* uring_file_io::take() {
  if (free_.empty()) {
    all_.push_back(std::make_unique<op>());
    all_.back()->owner = this;
    all_.back()->iov.reserve(4);
    all_.back()->parts.reserve(4);
    free_.push_back(all_.back().get());
  }
  op* o = free_.back();
  free_.pop_back();
  ++in_flight_;
  return o;
}

void uring_file_io::give_back(op* o) noexcept {
  --in_flight_;
  o->sync_cb = nullptr;
  o->parts.clear();
  o->iov.clear();
  o->sqe = nullptr;
  free_.push_back(o);
}

// An SQE may be changed until the ring hands it to the kernel, which the kernel
// tail shows: every SQE before *ktail has been submitted. (Never with SQPOLL: the
// kernel thread may read the queue at any time.)
bool uring_file_io::unsubmitted(const op* o) noexcept {
  const io_uring* r = ring_.raw();
  if ((ring_.flags() & IORING_SETUP_SQPOLL) != 0 || o->sqe == nullptr) return false;
  return static_cast<int>(o->sqe_seq - *r->sq.ktail) >= 0;
}

// (Re)writes the op's SQE: WRITEV of the parts not yet written.
void uring_file_io::submit_write(op* o) {
  if (o->done > 0) {
    // A short write: the rest goes at the next position, from where it stopped.
    std::vector<iovec> rest;
    std::size_t covered = 0;
    for (const iovec& v : o->iov) {
      if (covered + v.iov_len > o->done) {
        const std::size_t cut = o->done > covered ? o->done - covered : 0;
        rest.push_back({static_cast<char*>(v.iov_base) + cut, v.iov_len - cut});
      }
      covered += v.iov_len;
    }
    o->iov = std::move(rest);
    o->pos += o->done;
    o->total -= o->done;
    o->done = 0;
  }
  io_uring* r = ring_.raw();
  io_uring_sqe* sqe = ring_.get_sqe();
  o->sqe = sqe;
  o->sqe_seq = r->sq.sqe_tail - 1;
  io_uring_prep_writev(sqe, o->fd, o->iov.data(), static_cast<unsigned>(o->iov.size()), o->pos);
  io_uring_sqe_set_data64(sqe, make_user_data(o));
}

void uring_file_io::write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, storage::io_callback* cb) {
  // Forget writes already handed to the kernel; join one that this write continues.
  std::erase_if(open_, [this](const op* o) { return !unsubmitted(o); });
  for (op* o : open_) {
    if (o->fd != fd || o->pos + o->total != pos || o->parts.size() >= max_parts ||
        o->total + bytes.size() > max_write_bytes) {
      continue;
    }
    o->iov.push_back({const_cast<std::byte*>(bytes.data()), bytes.size()});
    o->parts.emplace_back(cb, bytes.size());
    o->total += bytes.size();
    // The vector may have moved: point the (still unsubmitted) SQE at it again.
    const std::uint64_t user_data = o->sqe->user_data;
    io_uring_prep_writev(o->sqe, o->fd, o->iov.data(), static_cast<unsigned>(o->iov.size()), o->pos);
    io_uring_sqe_set_data64(o->sqe, user_data);
    ++coalesced_;
    return;
  }
  op* o = take();
  o->fd = fd;
  o->is_sync = false;
  o->pos = pos;
  o->total = bytes.size();
  o->done = 0;
  o->iov.push_back({const_cast<std::byte*>(bytes.data()), bytes.size()});
  o->parts.emplace_back(cb, bytes.size());
  submit_write(o);
  open_.push_back(o);
}

// An operation with one callback and no bytes (sync, writeback, removal): `prep`
// fills the SQE.
template <class Prep>
void uring_file_io::single_op(int fd, storage::io_callback* cb, Prep&& prep) {
  op* o = take();
  o->sync_cb = cb;
  o->fd = fd;
  o->is_sync = true;
  o->sqe = nullptr;  // never joined
  io_uring_sqe* sqe = ring_.get_sqe();
  prep(sqe);
  io_uring_sqe_set_data64(sqe, make_user_data(o));
}

void uring_file_io::datasync(int fd, storage::io_callback* cb) {
  single_op(fd, cb, [fd](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); });
}

void uring_file_io::start_writeback(int fd, std::uint64_t pos, std::uint64_t len, storage::io_callback* cb) {
  // The SQE's length is 32 bits; a longer range starts writeback of its first 4 GiB.
  const auto n = static_cast<unsigned>(std::min<std::uint64_t>(len, 0xFFFFF000u));
  single_op(fd, cb, [&](io_uring_sqe* sqe) { io_uring_prep_sync_file_range(sqe, fd, n, pos, SYNC_FILE_RANGE_WRITE); });
}

void uring_file_io::remove(const char* path, storage::io_callback* cb) {
  if (!unlink_op_) {
    cb->io_done(::unlink(path) == 0 ? 0 : -errno);
    return;
  }
  single_op(-1, cb, [path](io_uring_sqe* sqe) { io_uring_prep_unlinkat(sqe, AT_FDCWD, path, 0); });
}

void uring_file_io::defer(storage::io_callback* cb) {
  if (deferred_.calls.empty()) ring_.after_batch(&deferred_);
  deferred_.calls.push_back(cb);
}

void uring_file_io::deferred_calls::complete(int, std::uint32_t) noexcept {
  running.swap(calls);  // a callback may defer again: that one waits for the next dispatch
  for (storage::io_callback* cb : running) cb->io_done(0);
  running.clear();
}

void uring_file_io::op::complete(int res, std::uint32_t) noexcept {
  // Submitted long ago: nothing may join it any more (a resubmission below gets a new SQE).
  std::erase(owner->open_, this);
  sqe = nullptr;
  if (is_sync) {
    storage::io_callback* c = sync_cb;
    owner->give_back(this);
    c->io_done(res < 0 ? res : 0);
    return;
  }
  if (res <= 0) {
    // res == 0: no progress, the file system refuses more (e.g. a full disk).
    const int err = res < 0 ? res : -ENOSPC;
    // The op stays out of the pool while its parts are told (their callbacks may write again).
    for (const auto& [c, len] : parts) c->io_done(err);
    owner->give_back(this);
    return;
  }
  done += static_cast<std::size_t>(res);
  if (done < total) {
    owner->submit_write(this);  // a short write: the rest goes at the next position
    return;
  }
  for (const auto& [c, len] : parts) c->io_done(static_cast<int>(len));
  owner->give_back(this);
}

}  // namespace mcp::broker::io
