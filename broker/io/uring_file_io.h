#pragma once
// storage::file_io driven by a shard's io_uring: IORING_OP_WRITE at an explicit
// offset and IORING_OP_FSYNC with IORING_FSYNC_DATASYNC. Nothing blocks: the
// partition log's callbacks run when the shard reaps the completions.
//
// Thread: the shard thread that owns the ring. Operation objects are pooled, so
// steady-state appends allocate nothing.

#include <memory>
#include <vector>

#include "broker/io/ring.h"
#include "storage/file_io.h"

namespace mcp::broker::io {

class uring_file_io final : public storage::file_io {
 public:
  explicit uring_file_io(ring& r) : ring_(r) {}
  ~uring_file_io() override;

  void write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, storage::io_callback* cb) override;
  void datasync(int fd, storage::io_callback* cb) override;

  // Operations submitted and not yet completed.
  unsigned in_flight() const noexcept { return in_flight_; }

 private:
  struct op final : io_completion {
    uring_file_io* owner = nullptr;
    storage::io_callback* cb = nullptr;
    int fd = -1;
    bool is_sync = false;
    std::uint64_t pos = 0;
    std::span<const std::byte> bytes;
    std::size_t done = 0;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  op* take();
  void give_back(op* o) noexcept;
  void submit_write(op* o);

  ring& ring_;
  std::vector<std::unique_ptr<op>> all_;
  std::vector<op*> free_;
  unsigned in_flight_ = 0;
};

}  // namespace mcp::broker::io
