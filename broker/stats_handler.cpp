// METADATA and GROUPS: answers that need what every shard knows (each partition's
// offsets live with its owner; a group's lease tables with the partitions' owners,
// its members with their connections' shards). The shard a request arrived on asks
// every shard, itself included, and answers once all have replied. Shards only
// ever exchange moved values: no shard reads another's state.

#include <fmt/format.h>

#include "broker/shard.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

namespace mcp::broker {

using codec::error_code;
using codec::opcode;

namespace {

}  // namespace

// Lag in time: the age of the oldest record not done, read nowait. A record whose
// pages are not in the page cache is read through the ring for the next request,
// and this answer says -1: not known yet.
std::int64_t shard::lag_ms_at(const storage::partition_log& log, std::uint64_t committed, std::int64_t now) {
  if (committed >= log.high_watermark()) return 0;
  const auto rec = log.read_record(committed, storage::read_mode::nowait);
  if (!rec) {
    if (rec.error().code != storage::errc::would_block) return 0;
    (void)start_cold_read(rec.error(), std::nullopt, {}, {});  // nobody waits for it
    return -1;
  }
  return std::max<std::int64_t>(0, now - codec::record_timestamp(*rec));
}

void shard::handle_metadata(connection& c, const codec::frame_view& f) {
  const auto req = codec::verify_control<fb::MetadataRequest>(f.body);
  if (!req) return send_error(c, f.header.correlation, error_code::malformed_body, "METADATA body does not verify");
  std::vector<std::string> wanted;
  if ((*req)->topics() != nullptr) {
    for (const auto* s : *(*req)->topics()) wanted.push_back(s->str());
  }
  if (wanted.empty()) {
    for (const auto& [name, t] : topics_) wanted.push_back(name);
  }
  start_stats_query(c, f.header.correlation, opcode::metadata, std::move(wanted), {});
}

void shard::handle_groups(connection& c, const codec::frame_view& f) {
  const auto req = codec::verify_control<fb::GroupsRequest>(f.body);
  if (!req) return send_error(c, f.header.correlation, error_code::malformed_body, "GROUPS body does not verify");
  start_stats_query(c, f.header.correlation, opcode::groups, {}, (*req)->group() ? (*req)->group()->str() : "");
}

void shard::start_stats_query(connection& c, std::uint32_t correlation, opcode kind, std::vector<std::string> topics,
                              std::string group) {
  const std::uint64_t q = next_query_++;
  pending_stats& p = pending_stats_[q];
  p.conn = c.id;
  p.correlation = correlation;
  p.kind = kind;
  p.topics = std::move(topics);
  p.waiting_for = group_.size();
  for (unsigned i = 0; i < group_.size(); ++i) to_owner(i, stats_request{id_, q, group, kind == opcode::groups});
}

void shard::serve_stats(const stats_request& r) {
  stats_reply out;
  out.query = r.query;
  const std::int64_t now = now_ms();
  for (const auto& [name, t] : topics_) {
    for (const auto& [part, ps] : t.partitions) {
      const storage::partition_log& log = *ps.log;
      out.partitions.push_back({name, part, log.log_start(), log.high_watermark(), log.size_bytes(),
                                r.groups ? lag_ms_at(log, log.log_start(), now) : 0, log.failure()});
      for (const auto& [group, table] : ps.groups) {
        if (!r.group.empty() && r.group != group) continue;
        group_partition_stats g;
        g.group = group;
        g.topic = name;
        g.partition = part;
        g.active = true;
        g.committed = table.committed();
        g.cursor = table.cursor();
        g.high_watermark = log.high_watermark();
        g.leased = table.leased();
        g.waiting = table.waiting();
        g.redeliveries = table.redeliveries();
        g.dead_lettered = table.dead_letters();
        g.settings = table.config();
        g.lag_ms = lag_ms_at(log, g.committed, now);
        out.groups.push_back(std::move(g));
      }
      // A group with a persisted position but no state here since the broker
      // started (no member pulled from this partition yet): its position on disk.
      for (const auto& [group, committed] : ps.persisted) {
        if (!r.group.empty() && r.group != group) continue;
        if (ps.groups.contains(group)) continue;
        group_partition_stats g;
        g.group = group;
        g.topic = name;
        g.partition = part;
        g.committed = std::clamp(committed, log.log_start(), log.high_watermark());
        g.cursor = g.committed;
        g.high_watermark = log.high_watermark();
        g.lag_ms = lag_ms_at(log, g.committed, now);
        out.groups.push_back(std::move(g));
      }
    }
  }
  for (const auto& [key, s] : subs_) {
    if (!r.group.empty() && r.group != s.group) continue;
    out.members.push_back({s.group, s.topic, {id_, s.conn, s.id}, s.credit, s.outstanding});
  }
  if (r.from == id_) {
    on_stats_reply(std::move(out));
  } else {
    send_to(r.from, std::move(out));
  }
}

void shard::on_stats_reply(stats_reply&& r) {
  const auto it = pending_stats_.find(r.query);
  if (it == pending_stats_.end()) return;
  pending_stats& p = it->second;
  auto& all = p.gathered;
  std::move(r.partitions.begin(), r.partitions.end(), std::back_inserter(all.partitions));
  std::move(r.groups.begin(), r.groups.end(), std::back_inserter(all.groups));
  std::move(r.members.begin(), r.members.end(), std::back_inserter(all.members));
  if (--p.waiting_for > 0) return;
  const pending_stats done = std::move(p);
  pending_stats_.erase(it);
  connection* c = find(done.conn);
  if (c == nullptr || c->closing) return;
  if (done.kind == opcode::metadata) {
    answer_metadata(*c, done.correlation, done.topics, done.gathered.partitions);
  } else {
    answer_groups(*c, done.correlation, done.gathered);
  }
}

void shard::answer_metadata(connection& c, std::uint32_t correlation, const std::vector<std::string>& topics,
                            const std::vector<partition_stats>& parts) {
  std::map<std::pair<std::string_view, std::uint32_t>, const partition_stats*> by_partition;
  for (const auto& p : parts) by_partition[{p.topic, p.partition}] = &p;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::TopicMetadata>> tops;
  for (const auto& name : topics) {
    const topic_state* ts = find_topic(name);
    if (ts == nullptr) {
      const auto n = fbb.CreateString(name);
      fb::TopicMetadataBuilder tb(fbb);
      tb.add_name(n);
      tb.add_error_code(static_cast<std::uint16_t>(error_code::unknown_topic));
      tops.push_back(tb.Finish());
      continue;
    }
    std::vector<flatbuffers::Offset<fb::PartitionMetadata>> pv;
    for (std::uint32_t p = 0; p < ts->config.partitions; ++p) {
      const unsigned owner = owner_shard(name, p, group_.size());
      const auto st = by_partition.find({name, p});
      // Strings before the table that refers to them (FlatBuffers builds bottom up).
      const auto failure = st != by_partition.end() && !st->second->failure.empty()
                               ? fbb.CreateString(st->second->failure)
                               : flatbuffers::Offset<flatbuffers::String>{};
      fb::PartitionMetadataBuilder pb(fbb);
      pb.add_partition(p);
      pb.add_shard(owner);
      pb.add_port(group_.port_of(owner));
      if (st != by_partition.end()) {
        pb.add_log_start_offset(st->second->log_start);
        pb.add_log_end_offset(st->second->high_watermark);
        pb.add_size_bytes(st->second->size_bytes);
        if (!failure.IsNull()) pb.add_failure(failure);
      }
      pv.push_back(pb.Finish());
    }
    const auto n = fbb.CreateString(name);
    const auto pvec = fbb.CreateVector(pv);
    fb::TopicConfigBuilder cb(fbb);
    cb.add_partitions(ts->config.partitions);
    cb.add_retention_bytes(ts->config.retention_bytes);
    cb.add_retention_ms(ts->config.retention_ms);
    cb.add_segment_bytes(ts->config.segment_bytes);
    cb.add_segment_ms(ts->config.segment_ms);
    const auto cfg = cb.Finish();
    fb::TopicMetadataBuilder tb(fbb);
    tb.add_name(n);
    tb.add_config(cfg);
    tb.add_partitions(pvec);
    tops.push_back(tb.Finish());
  }
  std::vector<flatbuffers::Offset<fb::ShardEndpoint>> eps;
  for (unsigned i = 0; i < group_.size(); ++i) {
    eps.push_back(fb::CreateShardEndpoint(fbb, i, fbb.CreateString(cfg_.listen_host), group_.port_of(i)));
  }
  const auto sv = fbb.CreateVector(eps);
  const auto tv = fbb.CreateVector(tops);
  fb::MetadataReplyBuilder rb(fbb);
  rb.add_shards(sv);
  rb.add_topics(tv);
  fbb.Finish(rb.Finish());
  std::vector<std::byte> out;
  codec::append_control_frame(out, opcode::metadata_ok, correlation, fbb);
  send_frame(c, std::move(out));
}

void shard::answer_groups(connection& c, std::uint32_t correlation, const stats_reply& all) {
  // One GroupInfo per (group, topic), sorted by name.
  struct gathered_group {
    std::vector<const group_member_stats*> members;
    std::map<std::uint32_t, group_partition_stats> partitions;
  };
  std::map<std::pair<std::string, std::string>, gathered_group> groups;
  for (const auto& g : all.groups) groups[{g.group, g.topic}].partitions.emplace(g.partition, g);
  for (const auto& m : all.members) groups[{m.group, m.topic}].members.push_back(&m);
  std::map<std::pair<std::string_view, std::uint32_t>, const partition_stats*> logs;
  for (const auto& p : all.partitions) logs[{p.topic, p.partition}] = &p;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::GroupInfo>> out;
  for (auto& [key, g] : groups) {
    // Partitions whose owner has no state for the group yet (no member pulled from
    // them since the broker started, nothing persisted): where a group starts by
    // default, the log start.
    if (const topic_state* ts = find_topic(key.second); ts != nullptr) {
      for (std::uint32_t p = 0; p < ts->config.partitions; ++p) {
        if (g.partitions.contains(p)) continue;
        const auto l = logs.find({key.second, p});
        if (l == logs.end()) continue;
        group_partition_stats x;
        x.partition = p;
        x.committed = x.cursor = l->second->log_start;
        x.high_watermark = l->second->high_watermark;
        x.lag_ms = l->second->oldest_age_ms;
        g.partitions.emplace(p, x);
      }
    }
    std::vector<flatbuffers::Offset<fb::GroupMemberInfo>> mv;
    for (const auto* m : g.members) {
      mv.push_back(fb::CreateGroupMemberInfo(fbb, m->member.shard, m->member.conn, m->member.sub, m->credit, m->in_flight));
    }
    std::vector<flatbuffers::Offset<fb::GroupPartitionInfo>> pv;
    for (const auto& [part, p] : g.partitions) {
      pv.push_back(fb::CreateGroupPartitionInfo(fbb, p.partition, p.committed, p.cursor, p.high_watermark, p.leased,
                                                p.waiting, p.redeliveries, p.dead_lettered,
                                                p.high_watermark - std::min(p.committed, p.high_watermark), p.lag_ms,
                                                p.settings.ack_wait_ms, p.settings.max_deliver, p.active));
    }
    const auto name = fbb.CreateString(key.first);
    const auto topic = fbb.CreateString(key.second);
    const auto mvec = fbb.CreateVector(mv);
    const auto pvec = fbb.CreateVector(pv);
    out.push_back(fb::CreateGroupInfo(fbb, name, topic, mvec, pvec));
  }
  const auto gv = fbb.CreateVector(out);
  fbb.Finish(fb::CreateGroupsReply(fbb, gv));
  std::vector<std::byte> reply;
  codec::append_control_frame(reply, opcode::groups_ok, correlation, fbb);
  send_frame(c, std::move(reply));
}

}  // namespace mcp::broker
