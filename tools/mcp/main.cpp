// mcp: the command line. Today: `mcp log dump DIR` and `mcp log verify DIR`, which
// read segment files offline (read-only). Topic, pub, sub and group commands come
// with the client library.
//
// Exit codes: 0 fine, 1 a problem was found (or a torn tail with --strict),
// 2 bad usage.

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "storage/log_verify.h"

namespace {

std::string preview(std::span<const std::byte> bytes, std::size_t max = 64) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = std::to_integer<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (bytes.size() > max) out += fmt::format("...(+{} bytes)", bytes.size() - max);
  return out;
}

int dump(const std::string& root, std::uint64_t limit) {
  const auto parts = mcp::storage::find_partitions(root);
  if (parts.empty()) {
    std::fprintf(stderr, "mcp log dump: no segment files under %s\n", root.c_str());
    return 1;
  }
  int rc = 0;
  for (const auto& p : parts) {
    std::printf("# %s\n", p.string().c_str());
    std::uint64_t n = 0;
    const std::string problem = mcp::storage::for_each_record(p, [&](const mcp::codec::record_view& r) {
      if (limit != 0 && n >= limit) return;
      ++n;
      std::string line = fmt::format("offset={} timestamp={} key=\"{}\" value=\"{}\" ({} bytes)", r.offset,
                                     r.timestamp_ms, preview(r.key), preview(r.value), r.value.size());
      if (r.producer_id != 0) line += fmt::format(" producer={} seq={}", r.producer_id, r.sequence);
      mcp::codec::record_header h;
      auto it = r.headers();
      while (it.next(h)) line += fmt::format(" {}=\"{}\"", h.name, preview(h.value, 32));
      std::puts(line.c_str());
    });
    if (!problem.empty()) {
      std::fprintf(stderr, "mcp log dump: stopped: %s\n", problem.c_str());
      rc = 1;
    }
  }
  return rc;
}

int verify(const std::string& root) {
  const auto parts = mcp::storage::find_partitions(root);
  if (parts.empty()) {
    std::fprintf(stderr, "mcp log verify: no segment files under %s\n", root.c_str());
    return 1;
  }
  int rc = 0;
  for (const auto& p : parts) {
    const auto rep = mcp::storage::verify_partition(p);
    if (!rep.problem.empty()) {
      std::printf("CORRUPT %s\n", rep.problem.c_str());
      rc = 1;
      continue;
    }
    std::printf("ok %s: %llu segments, %llu records, %llu bytes\n", p.string().c_str(),
                static_cast<unsigned long long>(rep.segments), static_cast<unsigned long long>(rep.records),
                static_cast<unsigned long long>(rep.bytes));
    if (!rep.torn_tail.empty()) {
      std::printf("  torn tail (not corruption: the broker truncates it when it opens the log): %s\n",
                  rep.torn_tail.c_str());
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mcp: command line of the MCP broker"};
  app.require_subcommand(1);
  auto* log = app.add_subcommand("log", "read segment files offline (read-only)");
  log->require_subcommand(1);
  std::string dir;
  std::uint64_t limit = 0;
  auto* d = log->add_subcommand("dump", "print records: offset, timestamp, key, value preview, headers");
  d->add_option("DIR", dir, "a partition directory, or a directory holding some")->required();
  d->add_option("--limit", limit, "records per partition (0: all)");
  auto* v = log->add_subcommand("verify", "check every segment and index; exit 1 at the first problem");
  v->add_option("DIR", dir, "a partition directory, or a directory holding some")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (d->parsed()) return dump(dir, limit);
  return verify(dir);
}
