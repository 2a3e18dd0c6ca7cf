#include "broker/io/uring_file_io.h"

#include <cassert>
#include <cerrno>

namespace mcp::broker::io {

uring_file_io::~uring_file_io() { assert(in_flight_ == 0); }

uring_file_io::op* uring_file_io::take() {
  if (free_.empty()) {
    all_.push_back(std::make_unique<op>());
    all_.back()->owner = this;
    free_.push_back(all_.back().get());
  }
  op* o = free_.back();
  free_.pop_back();
  ++in_flight_;
  return o;
}

void uring_file_io::give_back(op* o) noexcept {
  --in_flight_;
  o->cb = nullptr;
  free_.push_back(o);
}

void uring_file_io::submit_write(op* o) {
  io_uring_sqe* sqe = ring_.get_sqe();
  const auto rest = o->bytes.subspan(o->done);
  io_uring_prep_write(sqe, o->fd, rest.data(), static_cast<unsigned>(rest.size()), o->pos + o->done);
  io_uring_sqe_set_data64(sqe, make_user_data(o));
}

void uring_file_io::write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, storage::io_callback* cb) {
  op* o = take();
  o->cb = cb;
  o->fd = fd;
  o->is_sync = false;
  o->pos = pos;
  o->bytes = bytes;
  o->done = 0;
  submit_write(o);
}

void uring_file_io::datasync(int fd, storage::io_callback* cb) {
  op* o = take();
  o->cb = cb;
  o->fd = fd;
  o->is_sync = true;
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  io_uring_sqe_set_data64(sqe, make_user_data(o));
}

void uring_file_io::op::complete(int res, std::uint32_t) noexcept {
  storage::io_callback* c = cb;
  if (is_sync || res < 0) {
    owner->give_back(this);
    c->io_done(res < 0 ? res : 0);
    return;
  }
  if (res == 0) {  // no progress: the file system refuses more (e.g. a full disk)
    owner->give_back(this);
    c->io_done(-ENOSPC);
    return;
  }
  done += static_cast<std::size_t>(res);
  if (done < bytes.size()) {
    owner->submit_write(this);  // a short write: the rest goes at the next position
    return;
  }
  const int total = static_cast<int>(done);
  owner->give_back(this);
  c->io_done(total);
}

}  // namespace mcp::broker::io
