// mcp-broker: parse flags, probe io_uring, load topics, serve until SIGTERM/SIGINT.
// Exit codes: 0 clean stop, 1 start-up failure (named on stderr), 2 bad flags.

#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "broker/config.h"
#include "broker/io/ring.h"
#include "broker/log.h"
#include "broker/shard_group.h"

namespace {

// Every segment holds three descriptors (log and both indexes) for as long as it
// is on disk, so a broker with many partitions or a long retention needs far more
// than the usual soft limit of 1024: raise it to the hard limit, as servers do,
// and say what it is.
void raise_open_file_limit() {
  using mcp::broker::log;
  using mcp::broker::log_level;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    const rlim_t was = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log(log_level::warn, "open files: could not raise the limit from {} to {}: {}", was, lim.rlim_max,
          std::strerror(errno));
      return;
    }
  }
  log(log_level::info, "open files: up to {} (three per segment on disk)", lim.rlim_cur);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mcp::broker;
  const auto parsed = parse_args(argc, argv);
  if (!parsed.config) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    std::fputc('\n', parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const broker_config& cfg = *parsed.config;
  set_log_level(cfg.level);
  // Block the stop signals in every thread: the controller reads them from a signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file-size limit (ulimit -f) must fail the write with EFBIG, which the log
  // reports and survives, not kill the whole broker.
  signal(SIGXFSZ, SIG_IGN);
  raise_open_file_limit();

  const auto features = io::probe_features();
  log(log_level::info, "io_uring: {}", features.describe());
  if (const auto missing = features.missing_required(); !missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    log(log_level::error, "this kernel lacks io_uring features the broker needs: {}", list);
    return 1;
  }
  if (!features.unlinkat) {
    log(log_level::warn, "io_uring has no UNLINKAT (Linux 5.11): retention unlinks segments on the shard threads, "
                         "which stalls their connections while a large file is freed");
  }
  try {
    shard_group group(cfg, features);
    return group.run();
  } catch (const std::exception& e) {
    log(log_level::error, "cannot start: {}", e.what());
    return 1;
  }
}
