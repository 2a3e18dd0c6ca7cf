#include "tools/mcp/group_commands.h"

#include <cstdio>

#include "tools/client/client.h"

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
      std::printf("  %-10u %-10llu %-10llu %-10llu %-7llu %-8llu %-12llu %-8llu %-12llu %.3f\n", p->partition,
                  u(p->committed), u(p->cursor), u(p->high_watermark), u(p->leased), u(p->waiting), u(p->redeliveries),
                  u(p->dead_lettered), u(p->lag_records), static_cast<double>(p->lag_ms) / 1000.0);
    }
  }
  return 0;
}

}  // namespace mcp::cli
