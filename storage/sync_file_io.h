#pragma once
// file_io that runs pwrite/fdatasync/sync_file_range/unlink at once on the calling thread and calls back
// before returning. For tests, tools and benchmarks; the broker uses its ring.

#include "storage/file_io.h"

namespace mcp::storage {

class sync_file_io final : public file_io {
 public:
  void write_at(int fd, std::uint64_t pos, std::span<const std::byte> bytes, io_callback* cb) override;
  void datasync(int fd, io_callback* cb) override;
  void start_writeback(int fd, std::uint64_t pos, std::uint64_t len, io_callback* cb) override;
  void remove(const char* path, io_callback* cb) override;
};

}  // namespace mcp::storage
