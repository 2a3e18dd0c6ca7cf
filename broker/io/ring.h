#pragma once
// The one io_uring wrapper of a shard.
//
// Thread: a ring belongs to the shard thread that created it (SINGLE_ISSUER);
// only MSG_RING from other shards targets it from outside.
// user_data: every SQE carries a pointer to an io_completion that outlives the
// operation — the single typed way user_data is built and read (make_user_data /
// completion_of). A multishot operation delivers all its CQEs to one completion.

#include <liburing.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mcp::broker::io {

// Receives the CQEs of one operation. `res` is the result (bytes, fd, or -errno),
// `flags` the CQE flags (IORING_CQE_F_MORE, IORING_CQE_F_BUFFER...).
class io_completion {
 public:
  virtual void complete(int res, std::uint32_t flags) noexcept = 0;

 protected:
  ~io_completion() = default;
};

inline std::uint64_t make_user_data(io_completion* c) noexcept { return reinterpret_cast<std::uintptr_t>(c); }
inline io_completion* completion_of(std::uint64_t user_data) noexcept {
  return reinterpret_cast<io_completion*>(static_cast<std::uintptr_t>(user_data));
}

// What the kernel offers, probed once at start-up.
struct ring_features {
  bool single_issuer = false;
  bool defer_taskrun = false;
  bool coop_taskrun = false;
  bool msg_ring = false;
  bool multishot_accept = false;
  bool multishot_recv = false;
  bool provided_buffer_ring = false;
  bool splice = false;
  bool send_zc = false;
  bool unlinkat = false;  // IORING_OP_UNLINKAT (5.11): retention deletes files off the shard thread

  // Text for the start-up log line.
  std::string describe() const;
  // Names of features the broker cannot run without, empty if none is missing.
  std::vector<std::string> missing_required() const;
};

// Probes the running kernel with a throwaway ring. Never throws.
ring_features probe_features();

struct ring_options {
  unsigned entries = 4096;
  bool single_issuer = true;   // used only when the kernel has it
  bool defer_taskrun = true;   // used only when the kernel has it (needs single_issuer)
  // Created disabled, to be enabled by the thread that will use it: with
  // SINGLE_ISSUER the kernel binds the ring to the task that enables it.
  bool start_disabled = false;
};

class ring {
 public:
  // Throws std::runtime_error naming the cause when the ring cannot be set up
  // (start-up only).
  ring(const ring_options& opts, const ring_features& features);
  ~ring();
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  // A free SQE, submitting queued ones first if the SQ is full. Never null.
  io_uring_sqe* get_sqe();

  // Submits queued SQEs and waits for at least `wait_nr` CQEs or `timeout_ns`
  // (0: no timeout), then dispatches every ready CQE to its completion.
  // Returns the number of CQEs handled.
  unsigned run_once(unsigned wait_nr, std::uint64_t timeout_ns);

  // Submits queued SQEs without waiting.
  void submit();
  // Runs c->complete(0, 0) at the end of the next dispatch (of the current one
  // when called from a completion), once every CQE it found has been handled.
  // run_once does not wait while one is queued.
  void after_batch(io_completion* c) { after_batch_.push_back(c); }

  // Enables a ring created with start_disabled; call on the thread that will use it.
  void enable();

  io_uring* raw() noexcept { return &ring_; }
  int fd() const noexcept { return ring_.ring_fd; }
  unsigned flags() const noexcept { return setup_flags_; }

 private:
  io_uring ring_{};
  unsigned setup_flags_ = 0;
  std::vector<io_completion*> after_batch_;
  std::vector<io_completion*> running_;  // the batch's, while they run (kept for its capacity)
};

}  // namespace mcp::broker::io
