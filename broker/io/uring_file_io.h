#pragma once
// storage::file_io driven by a shard's io_uring: IORING_OP_WRITEV at an explicit
// offset, IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, IORING_OP_SYNC_FILE_RANGE,
// and IORING_OP_UNLINKAT (a plain unlink() where the kernel lacks it). Nothing blocks: the partition
// log's callbacks run when the shard reaps the completions.
//
// Coalescing: a write that continues, on the same file, a write whose SQE is
// still in the submission queue (not yet handed to the kernel) joins that SQE as
// one more iovec. The batches of one partition that arrive in one loop turn thus
// cost one write (one io-wq work item for a buffered file) instead of one each.
// Each joined write still gets its own callback, with its own byte count, once
// the whole write has completed; a failure fails every part.
//
// Thread: the shard thread that owns the ring. Operation objects are pooled, so
// steady-state appends allocate nothing.

#include <sys/uio.h>

#include <memory>
#include <utility>
#include <vector>

#include "broker/io/ring.h"
#include "storage/file_io.h"

namespace mcp::broker::io {

class uring_file_io final : public storage::file_io {
 public:
  // unlink_op: the kernel has IORING_OP_UNLINKAT (ring_features::unlinkat).
  uring_file_io(ring& r, bool unlink_op) : ring_(r), unlink_op_(unlink_op) {}
  ~uring_file_io() override;

  void write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, storage::io_callback* cb) override;
  void datasync(int fd, storage::io_callback* cb) override;
  void start_writeback(int fd, std::uint64_t pos, std::uint64_t len, storage::io_callback* cb) override;
  void remove(const char* path, storage::io_callback* cb) override;
  // Runs at the end of the ring's current (or next) dispatch of completions.
  void defer(storage::io_callback* cb) override;

  // Operations submitted and not yet completed (a coalesced write counts once).
  unsigned in_flight() const noexcept { return in_flight_ + static_cast<unsigned>(deferred_.calls.size()); }
  // Writes that joined an earlier write's SQE instead of taking their own.
  std::uint64_t writes_coalesced() const noexcept { return coalesced_; }

 private:
  struct op final : io_completion {
    uring_file_io* owner = nullptr;
    int fd = -1;
    bool is_sync = false;                     // a sync, writeback or removal: one callback, no bytes
    storage::io_callback* sync_cb = nullptr;  // its callback
    std::uint64_t pos = 0;
    std::size_t total = 0;                                           // bytes of every part
    std::size_t done = 0;                                            // written so far
    std::vector<iovec> iov;                                          // what the SQE points at
    std::vector<std::pair<storage::io_callback*, std::size_t>> parts;  // one per write_at
    io_uring_sqe* sqe = nullptr;
    unsigned sqe_seq = 0;  // the SQE's position in the submission queue
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  // The deferred callbacks of one dispatch: registered with the ring once for all.
  struct deferred_calls final : io_completion {
    std::vector<storage::io_callback*> calls;
    std::vector<storage::io_callback*> running;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  op* take();
  void give_back(op* o) noexcept;
  void submit_write(op* o);
  template <class Prep>
  void single_op(int fd, storage::io_callback* cb, Prep&& prep);
  bool unsubmitted(const op* o) noexcept;

  ring& ring_;
  bool unlink_op_;
  std::vector<std::unique_ptr<op>> all_;
  std::vector<op*> free_;
  std::vector<op*> open_;  // writes whose SQE may still be waiting in the queue
  unsigned in_flight_ = 0;
  std::uint64_t coalesced_ = 0;
  deferred_calls deferred_;
};

}  // namespace mcp::broker::io
