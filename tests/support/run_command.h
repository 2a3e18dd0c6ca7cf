#pragma once
// Runs a shell command line and collects its output and exit code, for tests of
// the command-line tools.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace mcp::test {

struct command_result {
  int exit_code = -1;  // -1 when the command did not exit normally
  std::string out;
};

// With `merge_stderr`, stderr is collected with stdout; otherwise it is discarded.
inline command_result run_command(const std::string& cmd, bool merge_stderr = true) {
  FILE* p = ::popen((cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  command_result r;
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace mcp::test
