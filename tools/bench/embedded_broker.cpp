#include "tools/bench/embedded_broker.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tools/client/client.h"

namespace mcp::bench {

namespace fs = std::filesystem;

namespace {

bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string embedded_broker::find_binary(const char* argv0) {
  std::error_code ec;
  const fs::path self = fs::canonical("/proc/self/exe", ec);
  const fs::path dir = ec ? fs::path(argv0).parent_path() : self.parent_path();
  for (const fs::path& p : {dir / "mcp-broker", dir / ".." / "broker" / "mcp-broker"}) {
    if (fs::exists(p)) return p.string();
  }
  return "mcp-broker";  // from PATH
}

embedded_broker::embedded_broker(const std::string& binary, unsigned shards, const std::string& durability) {
  std::string tmpl = (fs::temp_directory_path() / "mcp-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    port_ = static_cast<std::uint16_t>(20000 + rng() % 40000);
    bool all = true;
    for (unsigned i = 0; i <= shards && all; ++i) all = port_free(static_cast<std::uint16_t>(port_ + i));
    if (!all) continue;
    std::vector<std::string> args{binary, "--data-dir", dir_.string(), "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--shards", std::to_string(shards), "--durability", durability, "--log-level", "warn"};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::perror(("mcp-bench: cannot run " + binary).c_str());
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      bool up = true;
      for (unsigned s = 0; s <= shards && up; ++s) {
        up = client::connection::connect("127.0.0.1", static_cast<std::uint16_t>(port_ + s), 200).has_value();
      }
      if (up) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  throw std::runtime_error("could not start the embedded broker (" + binary + ")");
}

embedded_broker::~embedded_broker() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    bool gone = false;
    for (int i = 0; i < 1000 && !gone; ++i) {
      gone = ::waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

}  // namespace mcp::bench
