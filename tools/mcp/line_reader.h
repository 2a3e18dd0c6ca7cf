#pragma once
// line_reader: the lines of a file descriptor (stdin for `mcp pub`) in the groups
// they arrive in, so a command can act on each group at once instead of waiting
// for the end of input: `mcp pub --acks` prints an offset as soon as the line
// typed (or piped) is acknowledged.

#include <cstddef>
#include <string>
#include <vector>

namespace mcp::cli {

class line_reader {
 public:
  explicit line_reader(int fd) : fd_(fd) {}

  // Up to `max` whole lines: blocks for the first one, then takes more only while
  // more arrive within `linger_ms` of the last. Empty once the input ended (a last
  // line without a newline counts as a line). False on a read error.
  bool next(std::vector<std::string>& out, std::size_t max, int linger_ms);

 private:
  bool fill(int timeout_ms);  // one read if data comes within the timeout (-1: wait)
  bool take_line(std::vector<std::string>& out);

  int fd_;
  std::string buf_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
};

}  // namespace mcp::cli
