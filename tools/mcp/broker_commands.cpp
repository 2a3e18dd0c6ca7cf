#include "tools/mcp/broker_commands.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string_view>
#include <vector>

#include "codec/data_messages.h"
#include "storage/durability.h"
#include "tools/client/client.h"
#include "tools/mcp/group_commands.h"
#include "tools/mcp/line_reader.h"
#include "tools/mcp/preview.h"
#include "tools/mcp/record_printer.h"

namespace mcp::cli {

namespace {

using client::connection;

void complain(const char* what, const client::client_error& e) {
  std::fprintf(stderr, "mcp %s: %s (%s)\n", what, e.message.c_str(), codec::error_code_name(e.code));
}

std::optional<connection> open(const broker_address& b, const char* what, std::uint16_t port = 0) {
  auto c = connection::connect(b.host, port ? port : b.port);
  if (!c) {
    complain(what, c.error());
    return std::nullopt;
  }
  if (auto h = c->hello("mcp"); !h) {
    complain(what, h.error());
    return std::nullopt;
  }
  return std::move(*c);
}

// The topic's metadata, with each partition's offsets asked of its owning shard
// (a shard reports offsets only for the partitions it owns).
std::optional<fb::TopicMetadataT> describe_topic(const broker_address& b, connection& c, const std::string& name,
                                                 const char* what) {
  auto m = c.metadata({name});
  if (!m) {
    complain(what, m.error());
    return std::nullopt;
  }
  if (m->topics.empty() || m->topics[0]->error_code != 0) {
    std::fprintf(stderr, "mcp %s: no topic '%s' (UNKNOWN_TOPIC)\n", what, name.c_str());
    return std::nullopt;
  }
  fb::TopicMetadataT t = std::move(*m->topics[0]);
  std::map<std::uint16_t, std::optional<fb::MetadataReplyT>> by_port;
  for (auto& p : t.partitions) {
    auto& reply = by_port[p->port];
    if (!reply) {
      if (auto oc = open(b, what, p->port)) {
        if (auto mm = oc->metadata({name})) reply = std::move(*mm);
      }
    }
    if (reply && !reply->topics.empty()) {
      for (const auto& rp : reply->topics[0]->partitions) {
        if (rp->partition == p->partition) {
          p->log_start_offset = rp->log_start_offset;
          p->log_end_offset = rp->log_end_offset;
          p->size_bytes = rp->size_bytes;
          p->failure = rp->failure;
        }
      }
    }
  }
  return t;
}

std::uint32_t partition_for(const std::optional<std::string>& key, std::uint32_t partitions, std::uint64_t seq) {
  if (!key) return static_cast<std::uint32_t>(seq % partitions);
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : *key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return static_cast<std::uint32_t>(h % partitions);
}

}  // namespace

int topic_create(const broker_address& b, const topic_create_args& a) {
  fb::DurabilityKind kind = fb::DurabilityKind::Default;
  std::uint32_t interval = 0;
  if (!a.durability.empty()) {
    const auto d = storage::parse_durability(a.durability);
    if (!d) {
      std::fprintf(stderr, "mcp topic create: %s\n", d.error().message.c_str());
      return 2;
    }
    kind = d->level == storage::durability::kind::sync   ? fb::DurabilityKind::Sync
           : d->level == storage::durability::kind::none ? fb::DurabilityKind::None
                                                         : fb::DurabilityKind::Interval;
    interval = d->interval_ms;
  }
  auto c = open(b, "topic create");
  if (!c) return 1;
  fb::TopicConfigT config;
  config.partitions = a.partitions;
  config.durability = kind;
  config.durability_interval_ms = interval;
  config.retention_bytes = a.retention_bytes;
  config.retention_ms = a.retention_ms;
  config.segment_bytes = a.segment_bytes;
  config.segment_ms = a.segment_ms;
  if (auto r = c->create_topic(a.name, config); !r) {
    complain("topic create", r.error());
    return 1;
  }
  std::printf("created topic %s with %u partitions\n", a.name.c_str(), a.partitions);
  return 0;
}

int topic_list(const broker_address& b) {
  auto c = open(b, "topic list");
  if (!c) return 1;
  auto m = c->metadata();
  if (!m) {
    complain("topic list", m.error());
    return 1;
  }
  for (const auto& t : m->topics) std::printf("%s\t%zu partitions\n", t->name.c_str(), t->partitions.size());
  return 0;
}

int topic_describe(const broker_address& b, const std::string& name) {
  auto c = open(b, "topic describe");
  if (!c) return 1;
  const auto t = describe_topic(b, *c, name, "topic describe");
  if (!t) return 1;
  std::printf("topic %s: %zu partitions\n", name.c_str(), t->partitions.size());
  if (t->config) {
    std::printf("retention_bytes %lld, retention_ms %lld, segment_bytes %lld, segment_ms %lld\n",
                static_cast<long long>(t->config->retention_bytes), static_cast<long long>(t->config->retention_ms),
                static_cast<long long>(t->config->segment_bytes), static_cast<long long>(t->config->segment_ms));
  }
  std::printf("%-10s %-6s %-6s %-14s %-14s %s\n", "partition", "shard", "port", "first_offset", "next_offset", "bytes");
  for (const auto& p : t->partitions) {
    std::printf("%-10u %-6u %-6u %-14llu %-14llu %llu\n", p->partition, p->shard, p->port,
                static_cast<unsigned long long>(p->log_start_offset), static_cast<unsigned long long>(p->log_end_offset),
                static_cast<unsigned long long>(p->size_bytes));
  }
  // A failed partition still serves what it stored, so the table above stays
  // true; what it refuses, and why, comes after it.
  for (const auto& p : t->partitions) {
    if (!p->failure.empty()) std::printf("partition %u FAILED: %s\n", p->partition, p->failure.c_str());
  }
  return 0;
}

int topic_delete(const broker_address& b, const std::string& name) {
  auto c = open(b, "topic delete");
  if (!c) return 1;
  if (auto r = c->delete_topic(name); !r) {
    complain("topic delete", r.error());
    return 1;
  }
  std::printf("deleted topic %s\n", name.c_str());
  return 0;
}

int pub(const broker_address& b, const pub_args& a) {
  auto c = open(b, "pub");
  if (!c) return 1;
  auto m = c->metadata({a.topic});
  if (!m) {
    complain("pub", m.error());
    return 1;
  }
  if (m->topics.empty() || m->topics[0]->error_code != 0) {
    std::fprintf(stderr, "mcp pub: no topic '%s' (UNKNOWN_TOPIC)\n", a.topic.c_str());
    return 1;
  }
  const auto partitions = static_cast<std::uint32_t>(m->topics[0]->partitions.size());
  if (a.partition && *a.partition >= partitions) {
    std::fprintf(stderr, "mcp pub: topic '%s' has partitions 0..%u\n", a.topic.c_str(), partitions - 1);
    return 2;
  }
  // One PUBLISH per partition per group of input lines; the answers come in order
  // on the one connection, so acks print in input order, each group as soon as it
  // is acknowledged (lines piped in arrive in groups of up to 512; typed lines one by one).
  std::uint64_t seq = 0;
  int rc = 0;
  auto publish_group = [&](const std::vector<std::string>& messages) {
    std::map<std::uint32_t, std::vector<std::size_t>> by_partition;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      by_partition[a.partition ? *a.partition : partition_for(a.key, partitions, seq++)].push_back(i);
    }
    std::vector<std::pair<std::size_t, std::string>> printed;  // (input index, "P:O")
    for (const auto& [p, idx] : by_partition) {
      std::vector<codec::record_input> recs(idx.size());
      for (std::size_t k = 0; k < idx.size(); ++k) {
        recs[k].value = std::as_bytes(std::span(messages[idx[k]].data(), messages[idx[k]].size()));
        if (a.key) recs[k].key = std::as_bytes(std::span(a.key->data(), a.key->size()));
      }
      auto ack = c->publish(a.topic, p, recs);
      if (!ack) {
        complain("pub", ack.error());
        rc = 1;
        continue;
      }
      for (std::size_t k = 0; k < idx.size(); ++k) printed.emplace_back(idx[k], fmt::format("{}:{}", p, ack->first_offset + k));
    }
    if (a.acks) {
      std::sort(printed.begin(), printed.end());
      for (const auto& [i, text] : printed) std::printf("%s\n", text.c_str());
      std::fflush(stdout);
    }
  };
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "mcp pub: cannot read %s\n", a.file.c_str());
      return 2;
    }
    publish_group({std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())});
    return rc;
  }
  line_reader lines(STDIN_FILENO);
  for (std::vector<std::string> group;;) {
    if (!lines.next(group, 512, 5)) {
      std::fprintf(stderr, "mcp pub: cannot read standard input: %s\n", std::strerror(errno));
      return 1;
    }
    if (group.empty()) return rc;
    publish_group(group);
  }
}

int sub(const broker_address& b, const sub_args& a) {
  if (!a.group.empty()) return group_sub(b, a);
  auto c = open(b, "sub");
  if (!c) return 1;
  const auto t = describe_topic(b, *c, a.topic, "sub");
  if (!t) return 1;
  struct reader {
    std::uint32_t partition;
    std::optional<connection> conn;
    std::uint64_t next = 0;
  };
  std::vector<reader> readers;
  for (const auto& p : t->partitions) {
    if (a.partition && p->partition != *a.partition) continue;
    reader r{p->partition, open(b, "sub", p->port), 0};
    if (!r.conn) return 1;
    if (a.from == "earliest") {
      r.next = p->log_start_offset;
    } else if (a.from == "latest") {
      r.next = p->log_end_offset;
    } else if (!a.from.empty() && a.from.find_first_not_of("0123456789") == std::string::npos) {
      r.next = std::stoull(a.from);
    } else if (a.from.size() > 1 && a.from[0] == '@' && a.from.find_first_not_of("0123456789", 1) == std::string::npos) {
      // The broker resolves the timestamp to the first offset at or after it.
      auto f = r.conn->fetch_from_time(a.topic, r.partition, std::stoll(a.from.substr(1)), 1);
      if (!f) {
        complain("sub", f.error());
        return 1;
      }
      r.next = f->header.first_offset;
    } else {
      std::fprintf(stderr, "mcp sub: --from '%s' must be earliest, latest, an offset or @TIMESTAMP_MS\n", a.from.c_str());
      return 2;
    }
    readers.push_back(std::move(r));
  }
  if (readers.empty()) {
    std::fprintf(stderr, "mcp sub: topic '%s' has no partition %u\n", a.topic.c_str(), a.partition.value_or(0));
    return 2;
  }
  std::uint64_t printed = 0;
  auto last_message = std::chrono::steady_clock::now();
  // Long-poll each partition in turn with a short wait, so one quiet partition
  // does not hold up the others.
  const std::uint32_t wait = readers.size() == 1 ? std::min<std::uint32_t>(a.timeout_ms, 500) : 50;
  for (;;) {
    for (auto& r : readers) {
      auto f = r.conn->fetch(a.topic, r.partition, r.next, 1 << 20, wait);
      if (!f) {
        complain("sub", f.error());
        return 1;
      }
      for (const auto& rec : f->records) {
        print_record(a.format, r.partition, rec);
        r.next = rec.offset + 1;
        last_message = std::chrono::steady_clock::now();
        if (a.count != 0 && ++printed >= a.count) {
          std::fflush(stdout);
          return 0;
        }
      }
      std::fflush(stdout);
    }
    if (std::chrono::steady_clock::now() - last_message >= std::chrono::milliseconds(a.timeout_ms)) return 0;
  }
}

}  // namespace mcp::cli
