#pragma once
// The I/O backend under a partition log. Shaped for io_uring: each call starts an
// operation and reports its result later through an io_callback, so the broker
// can implement it with IORING_OP_WRITE / IORING_OP_FSYNC(DATASYNC) /
// IORING_OP_UNLINKAT on its shard ring without blocking; tests and offline tools
// use sync_file_io, which runs the system call at once and calls back before
// returning.
//
// Contract: `bytes` and `path` must stay valid and unchanged until the callback
// runs; a callback runs exactly once; callbacks of one backend run on the thread
// that drives it (the shard), never concurrently.

#include <cstdint>
#include <span>

namespace mcp::storage {

class io_callback {
 public:
  // res: bytes written (always all of them: short writes are the backend's to
  // finish), or 0 for a sync, a writeback or a removal; a negative errno on failure.
  virtual void io_done(int res) noexcept = 0;

 protected:
  ~io_callback() = default;
};

class file_io {
 public:
  virtual ~file_io() = default;
  virtual void write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, io_callback* cb) = 0;
  virtual void datasync(int fd, io_callback* cb) = 0;
  // Starts writeback of the range's dirty pages (sync_file_range with
  // SYNC_FILE_RANGE_WRITE): completes once started, not once on disk, and
  // promises nothing about durability. Spreads a segment's disk writes over its
  // life instead of one burst at its sealing fdatasync.
  virtual void start_writeback(int fd, std::uint64_t pos, std::uint64_t len, io_callback* cb) = 0;
  // Unlinks a file. Its own operation because deleting a large file can take far
  // longer than a write: on this project's test VM (ext4 mounted with `discard`)
  // unlinking a synced 256 MiB segment takes ~180 ms.
  virtual void remove(const char* path, io_callback* cb) = 0;
  // Calls cb->io_done(0) once the completions already at hand have been delivered,
  // before the driver waits for more. Work that those completions add to (a sync
  // round: writes that completed in the same batch as the previous round) is then
  // started once for all of them instead of once for the first. The default (a
  // backend that completes everything inline) calls back at once.
  virtual void defer(io_callback* cb) { cb->io_done(0); }
};

}  // namespace mcp::storage
