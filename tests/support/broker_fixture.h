#pragma once
// Starts a real mcp-broker process on loopback with a temp data dir, and always
// stops it: SIGTERM, then SIGKILL if it has not exited within 10 s, and reaps it.
// The binary comes from $MCP_BROKER_BIN (set by meson test).

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tools/client/client.h"

namespace mcp::test {

// True if the broker could bind `port` on 127.0.0.1 right now. SO_REUSEADDR as the
// broker sets it: the connections of a stopped broker linger in TIME_WAIT on its
// ports, and a restart (start() again) must still get the same port, since
// clients reconnect to the address they know.
inline bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

struct broker_options {
  unsigned shards = 2;
  std::string durability = "sync";
  std::string delivery = "zero-copy";
  std::vector<std::string> extra;
  std::uint64_t max_file_bytes = 0;  // the broker's RLIMIT_FSIZE (ulimit -f), 0: none
  std::uint64_t open_files_soft = 0;  // the broker's starting soft RLIMIT_NOFILE, 0: inherited
};

class broker_process {
 public:
  using options = broker_options;

  explicit broker_process(options o = {}) : opts_(std::move(o)) { start(); }
  // Restarts on the same data dir (after stop() or a kill), on the same port if it is free.
  void start() {
    // A restart keeps the port: clients reconnect to the address they know. The
    // old process's sockets can outlive it for a moment (io_uring tears a ring
    // down asynchronously), so wait up to 5 s for them to go.
    for (int i = 0; port_ != 0 && i < 250 && pid_ <= 0; ++i) {
      if (ports_free()) {
        spawn();
        if (wait_ready()) return;
        kill_now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    for (int attempt = 0; attempt < 50 && pid_ <= 0; ++attempt) {
      if (port_ == 0 || attempt > 0) port_ = static_cast<std::uint16_t>(20000 + rng() % 40000);
      if (!ports_free()) continue;
      spawn();
      if (wait_ready()) return;
      kill_now();
    }
    if (pid_ <= 0) throw std::runtime_error("could not start mcp-broker");
  }
  // Restarts on the same port at once, without waiting for the old process's
  // sockets to go: the broker's own wait for a port that is still being freed is
  // what this exercises. False if it did not come up.
  bool start_at_once() {
    if (pid_ > 0) return true;
    spawn();
    return wait_ready();
  }
  ~broker_process() {
    if (pid_ > 0) stop();
  }
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;

  // SIGTERM and wait; returns the exit status (or -1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_now();
    return -1;
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Takes effect at the next start().
  void limit_file_size(std::uint64_t bytes) noexcept { opts_.max_file_bytes = bytes; }

  std::uint16_t port() const noexcept { return port_; }
  std::uint16_t shard_port(unsigned shard) const noexcept { return static_cast<std::uint16_t>(port_ + 1 + shard); }
  const std::filesystem::path& data_dir() const noexcept { return dir_.path(); }
  pid_t pid() const noexcept { return pid_; }

  client::connection connect(std::uint16_t port = 0) const {
    auto c = client::connection::connect("127.0.0.1", port ? port : port_);
    if (!c) throw std::runtime_error(c.error().message);
    auto h = c->hello("test");
    if (!h) throw std::runtime_error(h.error().message);
    return std::move(*c);
  }

 private:
  void spawn() {
    const char* bin = std::getenv("MCP_BROKER_BIN");
    if (bin == nullptr) throw std::runtime_error("MCP_BROKER_BIN is not set");
    std::vector<std::string> args{bin,
                                  "--data-dir", dir_.path().string(),
                                  "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--shards", std::to_string(opts_.shards),
                                  "--durability", opts_.durability,
                                  "--delivery", opts_.delivery,
                                  "--log-level", "warn",
                                  "--recv-buffers", "256"};
    args.insert(args.end(), opts_.extra.begin(), opts_.extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      // If the test process dies (a failed assertion under a sanitizer aborts it),
      // the broker goes with it instead of outliving the test run.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (opts_.max_file_bytes != 0) {
        const rlimit lim{opts_.max_file_bytes, opts_.max_file_bytes};
        ::setrlimit(RLIMIT_FSIZE, &lim);
      }
      if (opts_.open_files_soft != 0) {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = opts_.open_files_soft;
        ::setrlimit(RLIMIT_NOFILE, &lim);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin, argv.data());
      ::_exit(127);
    }
  }
  // The main port and every shard's port.
  bool ports_free() const {
    for (unsigned i = 0; i <= opts_.shards; ++i) {
      if (!port_free(static_cast<std::uint16_t>(port_ + i))) return false;
    }
    return true;
  }
  bool wait_ready() {
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      // Ready means answering HELLO on every port: a TCP connect alone can land in
      // the backlog of a listening socket that a killed broker's ring still holds.
      bool all = true;
      for (unsigned s = 0; s <= opts_.shards && all; ++s) {
        auto c = client::connection::connect("127.0.0.1", static_cast<std::uint16_t>(port_ + s), 200);
        all = c.has_value() && c->hello("ready-check").has_value();
      }
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  options opts_;
  temp_dir dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mcp::test
