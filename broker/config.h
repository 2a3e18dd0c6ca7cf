#pragma once
// mcp-broker's configuration: command-line flags with their defaults, validated
// at start-up (the only place exceptions are used).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/log_level.h"

namespace mcp::broker {

enum class delivery_mode { zero_copy, copy };

struct broker_config {
  std::string data_dir = "./mcp-data";
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 9092;
  unsigned shards = 0;                 // 0: one per core the process may use
  std::string durability = "sync";     // broker default for topics that do not set one
  std::uint32_t max_frame = 8u << 20;
  log_level level = log_level::info;
  delivery_mode delivery = delivery_mode::zero_copy;
  // Slices of at most this many bytes are copied from the page cache into the
  // reply instead of spliced (broker/cached_copy.h); 0: never.
  std::uint32_t copy_max_bytes = 16u << 10;
  unsigned max_connections = 10000;
  unsigned max_topics = 1000;
  std::uint32_t idle_timeout_ms = 60'000;
  std::uint32_t max_inflight_bytes = 64u << 20;  // per connection
  unsigned recv_buffers = 1024;                  // per shard, power of two
  std::uint32_t recv_buffer_size = 64u << 10;
  // none / interval topics: start writeback every this many bytes of a segment (0: off).
  std::uint64_t writeback_bytes = 4u << 20;
};

// What parse_args decided: run with a config, or exit with `exit_code` after
// printing `message` (help text on stdout with code 0; an error on stderr with code 2).
struct parse_outcome {
  std::optional<broker_config> config;
  int exit_code = 0;
  std::string message;
};

parse_outcome parse_args(int argc, const char* const* argv);

const char* to_string(delivery_mode d) noexcept;

}  // namespace mcp::broker
