#include "tools/mcp/group_commands.h"

#include <fmt/format.h>

#include <cstdio>

#include <chrono>

#include "tools/client/client.h"
#include "tools/client/group_consumer.h"
#include "tools/mcp/record_printer.h"

namespace mcp::cli {

namespace {

std::optional<fb::GroupsReplyT> ask(const broker_address& b, const std::string& group, const char* what) {
  auto c = client::connection::connect(b.host, b.port);
  if (!c) {
    std::fprintf(stderr, "mcp %s: %s\n", what, c.error().message.c_str());
    return std::nullopt;
  }
  if (auto h = c->hello("mcp"); !h) {
    std::fprintf(stderr, "mcp %s: %s\n", what, h.error().message.c_str());
    return std::nullopt;
  }
  auto g = c->groups(group);
  if (!g) {
    std::fprintf(stderr, "mcp %s: %s (%s)\n", what, g.error().message.c_str(), codec::error_code_name(g.error().code));
    return std::nullopt;
  }
  return std::move(*g);
}

unsigned long long u(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

int group_list(const broker_address& b) {
  const auto g = ask(b, {}, "group list");
  if (!g) return 1;
  std::printf("%-24s %-24s %-8s %-12s %s\n", "group", "topic", "members", "lag_records", "dead_lettered");
  for (const auto& gi : g->groups) {
    std::uint64_t lag = 0, dead = 0;
    for (const auto& p : gi->partitions) {
      lag += p->lag_records;
      dead += p->dead_lettered;
    }
    std::printf("%-24s %-24s %-8zu %-12llu %llu\n", gi->name.c_str(), gi->topic.c_str(), gi->members.size(), u(lag),
                u(dead));
  }
  return 0;
}

int group_describe(const broker_address& b, const std::string& name) {
  const auto g = ask(b, name, "group describe");
  if (!g) return 1;
  if (g->groups.empty()) {
    std::fprintf(stderr, "mcp group describe: no group '%s' on this broker\n", name.c_str());
    return 1;
  }
  for (const auto& gi : g->groups) {
    std::printf("group %s on topic %s: %zu members\n", gi->name.c_str(), gi->topic.c_str(), gi->members.size());
    std::printf("  %-6s %-12s %-13s %-8s %s\n", "shard", "connection", "subscription", "credit", "in_flight");
    for (const auto& m : gi->members) {
      std::printf("  %-6u %-12llu %-13u %-8llu %llu\n", m->shard, u(m->connection), m->subscription, u(m->credit),
                  u(m->in_flight));
    }
    std::printf("  %-10s %-10s %-10s %-10s %-7s %-8s %-12s %-8s %-12s %s\n", "partition", "committed", "next_new",
                "end", "leased", "waiting", "redelivered", "dead", "lag_records", "lag_s");
    for (const auto& p : gi->partitions) {
      // -1: the broker had to read that record from disk first; it knows at the next ask.
      const std::string lag_s = p->lag_ms < 0 ? "?" : fmt::format("{:.3f}", static_cast<double>(p->lag_ms) / 1000.0);
      std::printf("  %-10u %-10llu %-10llu %-10llu %-7llu %-8llu %-12llu %-8llu %-12llu %s\n", p->partition,
                  u(p->committed), u(p->cursor), u(p->high_watermark), u(p->leased), u(p->waiting), u(p->redeliveries),
                  u(p->dead_lettered), u(p->lag_records), lag_s.c_str());
    }
  }
  return 0;
}

int group_sub(const broker_address& b, const sub_args& a) {
  if (a.partition) {
    std::fprintf(stderr, "mcp sub: --partition does not go with --group (a group shares every partition)\n");
    return 2;
  }
  client::group_consumer_options o;
  o.host = b.host;
  o.port = b.port;
  o.topic = a.topic;
  o.group = a.group;
  o.client_name = "mcp sub";
  // Print at most what was asked for: hold no more leases than the records still wanted.
  o.credit = a.count != 0 ? static_cast<std::uint32_t>(std::min<std::uint64_t>(a.count, 256)) : 256;
  if (a.from == "earliest") {
    o.start = client::group_start::earliest();
  } else if (a.from == "latest") {
    o.start = client::group_start::latest();
  } else if (a.from.size() > 1 && a.from[0] == '@' && a.from.find_first_not_of("0123456789", 1) == std::string::npos) {
    o.start = client::group_start::at_time(std::stoll(a.from.substr(1)));
  } else {
    std::fprintf(stderr, "mcp sub: with --group, --from must be earliest, latest or @TIMESTAMP_MS (not '%s')\n",
                 a.from.c_str());
    return 2;
  }
  auto gc = client::group_consumer::create(o);
  if (!gc) {
    std::fprintf(stderr, "mcp sub: %s (%s)\n", gc.error().message.c_str(), client::error_name(gc.error().code));
    return 1;
  }
  std::uint64_t printed = 0;
  auto last_message = std::chrono::steady_clock::now();
  for (;;) {
    const auto left = std::chrono::milliseconds(a.timeout_ms) -
                      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - last_message);
    if (left.count() <= 0) break;
    auto batch = gc->poll(std::min(left, std::chrono::milliseconds(500)));
    if (!batch) {
      std::fprintf(stderr, "mcp sub: %s (%s)\n", batch.error().message.c_str(), client::error_name(batch.error().code));
      return 1;
    }
    std::size_t shown = 0;  // the first `shown` records of this batch were printed
    for (const auto& rec : *batch) {
      if (a.count != 0 && printed >= a.count) {
        // Not printed: handed back at once for another member.
        gc->nack(rec);
        continue;
      }
      print_record(a.format, rec.partition, rec);
      ++printed;
      ++shown;
    }
    // Acked only once printed and flushed: a record is never acked unseen.
    std::fflush(stdout);
    for (std::size_t i = 0; i < shown; ++i) gc->ack((*batch)[i]);
    if (!batch->empty()) last_message = std::chrono::steady_clock::now();
    if (a.count != 0 && printed >= a.count) break;
  }
  if (auto c = gc->close(); !c) {
    std::fprintf(stderr, "mcp sub: acks may not have reached the broker: %s\n", c.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace mcp::cli
