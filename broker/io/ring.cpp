#include "broker/io/ring.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <sys/syscall.h>
#include <unistd.h>

namespace mcp::broker::io {

namespace {

// Tries a ring with `flags`; true if the kernel accepts them.
bool setup_accepts(unsigned flags) {
  io_uring r;
  io_uring_params p{};
  p.flags = flags;
  if (io_uring_queue_init_params(4, &r, &p) != 0) return false;
  io_uring_queue_exit(&r);
  return true;
}

}  // namespace

ring_features probe_features() {
  ring_features f;
  f.single_issuer = setup_accepts(IORING_SETUP_SINGLE_ISSUER);
  f.defer_taskrun = f.single_issuer && setup_accepts(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  f.coop_taskrun = setup_accepts(IORING_SETUP_COOP_TASKRUN);

  io_uring r;
  if (io_uring_queue_init(4, &r, 0) != 0) return f;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&r)) {
    f.msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    f.splice = io_uring_opcode_supported(probe, IORING_OP_SPLICE);
    f.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    f.unlinkat = io_uring_opcode_supported(probe, IORING_OP_UNLINKAT);
    // Multishot accept and recv have no opcode of their own; they came with
    // kernels that also have SEND_ZC-era opcodes. Check by registering a buffer
    // ring (5.19+) and trusting ACCEPT/RECV to honour the multishot flags there.
    const bool accept = io_uring_opcode_supported(probe, IORING_OP_ACCEPT);
    const bool recv = io_uring_opcode_supported(probe, IORING_OP_RECV);
    io_uring_free_probe(probe);

    // Provided-buffer rings: register a one-entry ring and drop it again.
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, 4096) == 0) {
      std::memset(mem, 0, 4096);
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
      reg.ring_entries = 1;
      reg.bgid = 0;
      if (io_uring_register_buf_ring(&r, &reg, 0) == 0) {
        f.provided_buffer_ring = true;
        io_uring_unregister_buf_ring(&r, 0);
      }
      std::free(mem);
    }
    f.multishot_accept = accept && f.provided_buffer_ring;
    f.multishot_recv = recv && f.provided_buffer_ring;
  }
  io_uring_queue_exit(&r);
  return f;
}

std::string ring_features::describe() const {
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  return fmt::format(
      "single_issuer={} defer_taskrun={} coop_taskrun={} msg_ring={} multishot_accept={} "
      "multishot_recv={} buf_ring={} splice={} send_zc={} unlinkat={}",
      yn(single_issuer), yn(defer_taskrun), yn(coop_taskrun), yn(msg_ring), yn(multishot_accept),
      yn(multishot_recv), yn(provided_buffer_ring), yn(splice), yn(send_zc), yn(unlinkat));
}

std::vector<std::string> ring_features::missing_required() const {
  std::vector<std::string> m;
  if (!multishot_accept) m.emplace_back("multishot accept (Linux 5.19)");
  if (!multishot_recv) m.emplace_back("multishot recv (Linux 6.0)");
  if (!provided_buffer_ring) m.emplace_back("provided-buffer rings (Linux 5.19)");
  return m;
}

ring::ring(const ring_options& opts, const ring_features& features) {
  io_uring_params p{};
  if (opts.single_issuer && features.single_issuer) {
    p.flags |= IORING_SETUP_SINGLE_ISSUER;
    if (opts.defer_taskrun && features.defer_taskrun) p.flags |= IORING_SETUP_DEFER_TASKRUN;
  }
  if (!(p.flags & IORING_SETUP_DEFER_TASKRUN) && features.coop_taskrun) p.flags |= IORING_SETUP_COOP_TASKRUN;
  if (opts.start_disabled) p.flags |= IORING_SETUP_R_DISABLED;
  p.flags |= IORING_SETUP_CQSIZE;
  p.cq_entries = opts.entries * 4;  // multishot ops post many CQEs per SQE
  const int rc = io_uring_queue_init_params(opts.entries, &ring_, &p);
  if (rc != 0) {
    throw std::runtime_error(fmt::format("io_uring_queue_init({} entries): {}", opts.entries, std::strerror(-rc)));
  }
  setup_flags_ = p.flags;
}

ring::~ring() { io_uring_queue_exit(&ring_); }

io_uring_sqe* ring::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void ring::submit() { io_uring_submit(&ring_); }

void ring::enable() {
  if ((setup_flags_ & IORING_SETUP_R_DISABLED) == 0) return;
  // Debian's liburing 2.3 declares io_uring_enable_rings but does not export it: register directly.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) != 0) {
    throw std::runtime_error(fmt::format("enable io_uring: {}", std::strerror(errno)));
  }
}

unsigned ring::run_once(unsigned wait_nr, std::uint64_t timeout_ns) {
  io_uring_cqe* cqe = nullptr;
  if (!after_batch_.empty()) wait_nr = 0;
  if (wait_nr > 0) {
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(timeout_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long long>(timeout_ns % 1'000'000'000);
    const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, timeout_ns ? &ts : nullptr, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      throw std::runtime_error(fmt::format("io_uring wait: {}", std::strerror(-rc)));
    }
  } else {
    io_uring_submit(&ring_);
  }
  unsigned handled = 0;
  unsigned head = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++handled;
    if (cqe->user_data != 0) completion_of(cqe->user_data)->complete(cqe->res, cqe->flags);
  }
  io_uring_cq_advance(&ring_, handled);
  running_.swap(after_batch_);  // those queued while these run wait for the next dispatch
  for (io_completion* c : running_) c->complete(0, 0);
  handled += static_cast<unsigned>(running_.size());
  running_.clear();
  return handled;
}

}  // namespace mcp::broker::io
