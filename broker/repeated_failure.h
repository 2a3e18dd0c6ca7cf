#pragma once
// Keeps a failure that repeats from flooding the operator's log: the first
// failure of a key is reported, the same failure again is only counted, and
// the next success reports how many attempts failed in between. Used for the
// store of consumer-group positions, which is retried at every commit (many a
// second), so a full disk would otherwise log one line per commit.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace mcp::broker {

class repeated_failure {
 public:
  // A failure of `key` with `message`: true when it should be logged (the
  // first, or one whose message differs from the last logged one).
  bool failed(const std::string& key, const std::string& message) {
    auto [it, fresh] = open_.try_emplace(key);
    if (fresh || it->second.message != message) {
      it->second = state{message, 0};
      return true;
    }
    ++it->second.suppressed;
    return false;
  }

  // A success of `key`: after failures, how many went unlogged since the last
  // logged one (so the caller can say the failure is over); nothing otherwise.
  std::optional<std::uint64_t> succeeded(const std::string& key) {
    auto it = open_.find(key);
    if (it == open_.end()) return std::nullopt;
    const std::uint64_t n = it->second.suppressed;
    open_.erase(it);
    return n;
  }

 private:
  struct state {
    std::string message;
    std::uint64_t suppressed = 0;
  };
  std::map<std::string, state> open_;
};

}  // namespace mcp::broker
