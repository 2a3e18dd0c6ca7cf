#include "tools/mcp/line_reader.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace mcp::cli {

bool line_reader::take_line(std::vector<std::string>& out) {
  const auto nl = buf_.find('\n', scanned_);
  if (nl == std::string::npos) {
    scanned_ = buf_.size();
    if (!eof_ || buf_.empty()) return false;
    out.push_back(std::move(buf_));  // the last line, without a newline
    buf_.clear();
    scanned_ = 0;
    return true;
  }
  out.emplace_back(buf_, 0, nl);
  buf_.erase(0, nl + 1);
  scanned_ = 0;
  return true;
}

bool line_reader::fill(int timeout_ms) {
  if (eof_) return true;
  pollfd p{fd_, POLLIN, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return false;
  if (r == 0) return true;  // nothing within the timeout
  char chunk[64 * 1024];
  ssize_t n = 0;
  do {
    n = ::read(fd_, chunk, sizeof chunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return false;
  if (n == 0) {
    eof_ = true;
  } else {
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
  return true;
}

bool line_reader::next(std::vector<std::string>& out, std::size_t max, int linger_ms) {
  out.clear();
  // The first line: wait as long as it takes.
  while (!take_line(out)) {
    if (eof_) return true;
    if (!fill(-1)) return false;
  }
  // More, while they keep coming quickly.
  while (out.size() < max) {
    if (take_line(out)) continue;
    if (eof_) break;
    const std::size_t before = buf_.size();
    if (!fill(linger_ms)) return false;
    if (buf_.size() == before && !eof_) break;  // nothing more within the linger time
  }
  return true;
}

}  // namespace mcp::cli
