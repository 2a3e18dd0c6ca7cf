#include "broker/config.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <map>
#include <thread>

#include "storage/durability.h"

namespace mcp::broker {

const char* to_string(delivery_mode d) noexcept {
  return d == delivery_mode::zero_copy ? "zero-copy" : "copy";
}

namespace {

// HOST:PORT, [V6]:PORT or :PORT.
bool split_listen(const std::string& s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace

parse_outcome parse_args(int argc, const char* const* argv) {
  broker_config c;
  CLI::App app{"mcp-broker: persistent, shard-per-core MCP message broker"};
  app.option_defaults()->always_capture_default();
  std::string listen = fmt::format("{}:{}", c.listen_host, c.listen_port);
  std::string level = to_string(c.level);
  std::string delivery = to_string(c.delivery);

  app.add_option("--data-dir", c.data_dir, "directory of topics, segments and group offsets");
  app.add_option("--listen", listen, "HOST:PORT of the main port; shard i also listens on PORT+1+i");
  app.add_option("--shards", c.shards, "shard threads, one per core (0: every core the process may use)")
      ->check(CLI::Range(0u, 1024u));
  app.add_option("--durability", c.durability, "default durability: sync | interval:MS | none");
  app.add_option("--max-frame", c.max_frame, "largest frame accepted, in bytes")
      ->check(CLI::Range(4096u, 256u << 20));
  app.add_option("--log-level", level, "debug | info | warn | error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--delivery", delivery, "fetch path: zero-copy (splice) | copy (read + send)")
      ->check(CLI::IsMember({"zero-copy", "copy"}));
  app.add_option("--copy-max-bytes", c.copy_max_bytes,
                 "fetch replies and group deliveries of at most this many record bytes are copied from the page "
                 "cache into the reply (one read, one send) instead of spliced; 0: never")
      ->check(CLI::Range(0u, 1u << 20));
  app.add_option("--max-connections", c.max_connections, "connections open at once over all shards, split evenly: each shard accepts up to this / shards")
      ->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--max-topics", c.max_topics, "topics the broker holds")->check(CLI::Range(1u, 100'000u));
  app.add_option("--idle-timeout-ms", c.idle_timeout_ms, "close a connection silent this long (PING keeps it open)")
      ->check(CLI::Range(100u, 86'400'000u));
  app.add_option("--max-inflight-bytes", c.max_inflight_bytes,
                 "per connection: bytes received but not yet acked before the broker stops reading")
      ->check(CLI::Range(64u << 10, 1u << 30));
  app.add_option("--recv-buffers", c.recv_buffers, "receive buffers per shard (power of two)")
      ->check(CLI::Range(16u, 32768u));
  app.add_option("--recv-buffer-size", c.recv_buffer_size, "bytes per receive buffer")
      ->check(CLI::Range(4096u, 16u << 20));
  app.add_option("--writeback-bytes", c.writeback_bytes,
                 "none/interval topics: start the disk write of each this many bytes of a segment as they are written, "
                 "instead of all at its sealing fdatasync (0: off)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 30));

  parse_outcome out;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.message = app.help();
    out.exit_code = 0;
    return out;
  } catch (const CLI::ParseError& e) {
    out.message = fmt::format("mcp-broker: {}\nRun with --help for the flags.", e.what());
    out.exit_code = 2;
    return out;
  }

  auto fail = [&out](std::string msg) {
    out.message = fmt::format("mcp-broker: {}\nRun with --help for the flags.", msg);
    out.exit_code = 2;
    return out;
  };
  if (!split_listen(listen, c.listen_host, c.listen_port)) {
    return fail(fmt::format("--listen: '{}' is not HOST:PORT", listen));
  }
  if (const auto d = storage::parse_durability(c.durability); !d) {
    return fail(fmt::format("--durability: {}", d.error().message));
  }
  if ((c.recv_buffers & (c.recv_buffers - 1)) != 0) {
    return fail(fmt::format("--recv-buffers: {} is not a power of two", c.recv_buffers));
  }
  if (c.shards == 0) c.shards = std::max(1u, std::thread::hardware_concurrency());
  if (c.shards + 1u + c.listen_port > 65535u && c.listen_port != 0) {
    return fail(fmt::format("--listen port {} leaves no room for {} shard ports", c.listen_port, c.shards));
  }
  static const std::map<std::string, log_level> levels{
      {"debug", log_level::debug}, {"info", log_level::info}, {"warn", log_level::warn}, {"error", log_level::error}};
  c.level = levels.at(level);
  c.delivery = delivery == "copy" ? delivery_mode::copy : delivery_mode::zero_copy;
  out.config = c;
  return out;
}

}  // namespace mcp::broker
