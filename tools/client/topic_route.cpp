#include "tools/client/topic_route.h"

#include <fmt/format.h>

namespace mcp::client {

result<topic_route> fetch_route(const std::string& host, std::uint16_t port, std::string_view topic,
                                std::string_view client_name, int timeout_ms) {
  auto c = connection::connect(host, port, timeout_ms);
  if (!c) return unexpected{c.error()};
  auto h = c->hello(client_name);
  if (!h) return unexpected{h.error()};
  auto m = c->metadata({std::string(topic)});
  if (!m) return unexpected{m.error()};
  const fb::TopicMetadataT* t = nullptr;
  for (const auto& tm : m->topics) {
    if (tm && tm->name == topic) t = tm.get();
  }
  if (t == nullptr || t->error_code != 0) {
    const auto code = t ? static_cast<codec::error_code>(t->error_code) : codec::error_code::unknown_topic;
    return unexpected{client_error{code, fmt::format("topic '{}': {}", topic, error_name(code))}};
  }
  topic_route r;
  r.max_frame = h->max_frame;
  r.partitions = static_cast<std::uint32_t>(t->partitions.size());
  r.shard_of.assign(r.partitions, 0);
  r.log_start.assign(r.partitions, 0);
  r.log_end.assign(r.partitions, 0);
  std::uint32_t shard_count = 0;
  for (const auto& s : m->shards) shard_count = std::max(shard_count, s->shard + 1);
  for (const auto& p : t->partitions) shard_count = std::max(shard_count, p->shard + 1);
  r.shards.resize(shard_count);
  for (const auto& s : m->shards) {
    // A broker listening on a wildcard address names it; the client reaches it
    // the way it reached the main port.
    const bool wildcard = s->host.empty() || s->host == "0.0.0.0" || s->host == "::";
    r.shards[s->shard] = {wildcard ? host : s->host, s->port};
  }
  for (const auto& p : t->partitions) {
    if (p->partition >= r.partitions) {
      return unexpected{client_error{local_error::protocol,
                                     fmt::format("METADATA_OK names partition {} of {}", p->partition, r.partitions)}};
    }
    r.shard_of[p->partition] = p->shard;
    r.log_start[p->partition] = p->log_start_offset;
    r.log_end[p->partition] = p->log_end_offset;
    if (r.shards[p->shard].port == 0) r.shards[p->shard] = {host, p->port};
  }
  if (r.partitions == 0) {
    return unexpected{client_error{local_error::protocol, fmt::format("topic '{}' has no partitions", topic)}};
  }
  return r;
}

result<void> fetch_offsets(topic_route& route, std::string_view topic, std::string_view client_name, int timeout_ms) {
  std::vector<bool> asked(route.shards.size(), false);
  for (std::uint32_t p = 0; p < route.partitions; ++p) {
    const auto shard = route.shard_of[p];
    if (asked[shard]) continue;
    asked[shard] = true;
    auto c = connect_shard(route, shard, client_name, timeout_ms);
    if (!c) return unexpected{c.error()};
    auto m = c->metadata({std::string(topic)});
    if (!m) return unexpected{m.error()};
    for (const auto& t : m->topics) {
      if (!t || t->name != topic) continue;
      if (t->error_code != 0) {
        const auto code = static_cast<codec::error_code>(t->error_code);
        return unexpected{client_error{code, fmt::format("topic '{}': {}", topic, error_name(code))}};
      }
      for (const auto& pm : t->partitions) {
        if (pm->partition < route.partitions && pm->shard == shard) {
          route.log_start[pm->partition] = pm->log_start_offset;
          route.log_end[pm->partition] = pm->log_end_offset;
        }
      }
    }
  }
  return {};
}

result<connection> connect_shard(const topic_route& route, std::uint32_t shard, std::string_view client_name,
                                 int timeout_ms) {
  const auto& ep = route.shards.at(shard);
  auto c = connection::connect(ep.host, ep.port, timeout_ms);
  if (!c) return c;
  auto h = c->hello(client_name);
  if (!h) return unexpected{h.error()};
  return c;
}

}  // namespace mcp::client
