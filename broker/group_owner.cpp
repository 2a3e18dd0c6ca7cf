// Consumer groups, owner side (docs/groups.md): the shard that owns a partition
// keeps each group's lease table for it, leases records to members' pulls as
// slices of the segment files, ends leases on COMMIT / NACK / expiry / a member
// leaving, dead-letters records delivered max_deliver times, and hands committed
// positions to the controller to persist.

#include <fmt/format.h>

#include <limits>

#include "broker/cached_copy.h"
#include "broker/log.h"
#include "broker/shard.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/frame_decoder.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

namespace mcp::broker {

namespace {

constexpr std::int64_t position_flush_ms = 100;

}  // namespace

group_lease_table* shard::find_lease_table(topic_state& t, std::uint32_t partition, std::string_view group) {
  const auto p = t.partitions.find(partition);
  if (p == t.partitions.end()) return nullptr;
  const auto g = p->second.groups.find(group);
  return g == p->second.groups.end() ? nullptr : &g->second;
}

group_lease_table* shard::make_lease_table(topic_state& t, std::string_view topic, std::uint32_t partition,
                                           std::string_view group, const group_setup& setup) {
  const auto p = t.partitions.find(partition);
  if (p == t.partitions.end()) return nullptr;
  partition_state& ps = p->second;
  if (const auto g = ps.groups.find(group); g != ps.groups.end()) return &g->second;
  const storage::partition_log& plog = *ps.log;
  std::uint64_t start = plog.log_start();
  if (const auto c = ps.persisted.find(group); c != ps.persisted.end()) {
    start = std::clamp(c->second, plog.log_start(), plog.high_watermark());
  } else if (setup.start == fb::StartPosition::Latest) {
    start = plog.high_watermark();
  } else if (setup.start == fb::StartPosition::Timestamp) {
    auto o = plog.offset_for_timestamp(setup.start_timestamp_ms, storage::read_mode::nowait);
    if (!o && o.error().code == storage::errc::would_block) {
      // Not in the page cache: read it through the ring (cold_read.cpp), which wakes
      // the group's waiting members; their next pull makes the table.
      if (start_cold_read(o.error(), std::nullopt, std::string(topic), std::string(group))) return nullptr;
      o = plog.offset_for_timestamp(setup.start_timestamp_ms);  // out of descriptors: read here
    }
    if (o) start = *o;
  }
  const auto [it, inserted] = ps.groups.emplace(std::string(group), group_lease_table(start, setup.settings));
  return &it->second;
}

void shard::owner_pull(group_pull&& p) {
  group_leases out;
  out.member = p.member;
  out.owner = id_;
  out.asked = p.max;
  topic_state* t = find_topic(p.topic);
  if (t != nullptr && !t->partitions.empty()) {
    owner_group& og = t->groups[p.group];
    const std::int64_t now = now_ms();
    std::uint32_t left = p.max;
    // Partitions take turns being first, so one busy partition cannot starve the others.
    std::vector<std::uint32_t> order;
    for (const auto& [part, ps] : t->partitions) order.push_back(part);
    const std::size_t first = og.next_partition % order.size();
    og.next_partition = static_cast<std::uint32_t>(first + 1);
    for (std::size_t k = 0; k < order.size() && left > 0; ++k) {
      const std::uint32_t part = order[(first + k) % order.size()];
      group_lease_table* table = make_lease_table(*t, p.topic, part, p.group, p.setup);
      if (table == nullptr) continue;  // its start is being read from disk
      const storage::partition_log& plog = *t->partitions[part].log;
      table->skip_to(plog.log_start());
      bool cold = false;  // a nowait read missed the page cache: the rest of this partition waits for it
      for (const auto& r : table->take(p.member, now, left, plog.high_watermark())) {
        std::uint64_t at = r.first;
        const std::uint64_t end = r.first + r.count;
        while (at < end) {
          if (cold) {
            table->give_back(at, end, r.deliveries);
            break;
          }
          auto sl = plog.locate_records(at, static_cast<std::uint32_t>(end - at), storage::read_mode::nowait);
          if (!sl && sl.error().code == storage::errc::would_block) {
            // Read the bytes through the ring (cold_read.cpp); the group's waiting members pull again then.
            if (start_cold_read(sl.error(), std::nullopt, p.topic, p.group)) {
              cold = true;
              table->give_back(at, end, r.deliveries);
              break;
            }
            sl = plog.locate_records(at, static_cast<std::uint32_t>(end - at));  // out of descriptors: read here
          }
          if (!sl || sl->bytes == 0) {
            // Not readable (a storage error): hand the rest back rather than lease what cannot be sent.
            if (!sl) broker::log(log_level::warn, "group {}: cannot read {}/{} at {}: {}", p.group, p.topic, part, at, sl.error().message);
            table->give_back(at, end, r.deliveries);
            break;
          }
          std::vector<std::byte> copied;
          if (sl->bytes <= cfg_.copy_max_bytes) {
            copied = copy_if_cached(sl->fd, sl->position, sl->bytes, codec::frame_size(codec::delivery_size));
          }
          owned_fd fd = copied.empty() ? owned_fd::duplicate(sl->fd) : owned_fd{};
          if (copied.empty() && !fd.valid()) {
            broker::log(log_level::warn, "group {}: out of file descriptors; {}/{} at {} waits", p.group, p.topic, part, at);
            table->give_back(at, end, r.deliveries);
            break;
          }
          out.slices.push_back({part, at, sl->count(), r.deliveries, std::move(fd), sl->position, sl->bytes, std::move(copied)});
          left -= sl->count();
          at += sl->count();
        }
      }
    }
    if (out.slices.empty() &&
        std::find(og.waiting.begin(), og.waiting.end(), p.member) == og.waiting.end()) {
      og.waiting.push_back(p.member);
    }
  }
  to_member(p.member, std::move(out));
}

void shard::owner_commit(const group_commit& c) {
  topic_state* t = find_topic(c.topic);
  if (t == nullptr) return;
  group_lease_table* table = find_lease_table(*t, c.partition, c.group);
  if (table == nullptr) return;
  std::uint32_t n = 0;
  for (const auto& r : c.ranges) n += table->ack(c.member, r.first, r.last);
  if (n > 0) to_member(c.member, group_released{c.member, n});
}

void shard::owner_nack(const group_nack& n) {
  topic_state* t = find_topic(n.topic);
  if (t == nullptr) return;
  group_lease_table* table = find_lease_table(*t, n.partition, n.group);
  if (table == nullptr) return;
  group_lease_table::released r;
  if (!table->nack(n.member, n.offset, now_ms() + n.delay_ms, r, n.dead_letter)) return;
  // "rejected": the member gave up on it; "nacked": its last allowed delivery was nacked.
  if (r.dead) dead_letter(n.topic, n.partition, *table, n.group, r, n.dead_letter ? "rejected" : "nacked");
  to_member(n.member, group_released{n.member, 1});
  if (n.delay_ms == 0 && !r.dead) wake_group_waiters(*t, n.group);
}

void shard::owner_leave(const group_leave& l) {
  topic_state* t = find_topic(l.topic);
  if (t == nullptr) return;
  if (const auto g = t->groups.find(l.group); g != t->groups.end()) std::erase(g->second.waiting, l.member);
  for (auto& [part, ps] : t->partitions) {
    group_lease_table* table = find_lease_table(*t, part, l.group);
    if (table == nullptr) continue;
    end_leases(l.topic, part, *table, l.group, table->release_member(l.member), "member left");
  }
  wake_group_waiters(*t, l.group);
}

void shard::end_leases(const std::string& topic, std::uint32_t partition, group_lease_table& table,
                       std::string_view group, std::vector<group_lease_table::released>&& ended, const char* reason) {
  for (const auto& r : ended) {
    if (r.dead) dead_letter(topic, partition, table, group, r, reason);
  }
}

void shard::dead_letter(const std::string& topic, std::uint32_t partition, group_lease_table& table,
                        std::string_view group, const group_lease_table::released& r, const char* reason) {
  const std::string dlq = fmt::format("{}.{}.dlq", topic, group);
  topic_state* t = find_topic(topic);
  if (t == nullptr) return;
  const storage::partition_log& plog = *t->partitions[partition].log;
  auto bytes = plog.read_record(r.offset, storage::read_mode::nowait);
  if (!bytes && bytes.error().code == storage::errc::would_block) {
    // Not in the page cache: read it through the ring and try again at the next
    // tick (the record stays held meanwhile). Out of descriptors: read it here.
    if (start_cold_read(bytes.error(), std::nullopt, topic, std::string(group))) {
      pending_dead_.push_back({topic, partition, std::string(group), r, reason});
      return;
    }
    bytes = plog.read_record(r.offset);
  }
  if (!bytes) {
    broker::log(log_level::error, "group {}: cannot read {}/{} offset {} to dead-letter it: {}", group, topic, partition,
           r.offset, bytes.error().message);
    return;  // stays held: the position does not pass it
  }
  const auto f = codec::parse_frame(*bytes, {});
  if (f.status != codec::errc::ok) return;  // read_record returns whole, verified-at-append frames
  const auto rec = codec::decode_record(f.frame.body);
  if (!rec) return;
  std::vector<codec::record_header> headers;
  auto it = rec->headers();
  for (codec::record_header h; it.next(h);) headers.push_back(h);
  const std::string part_s = std::to_string(partition), offset_s = std::to_string(r.offset),
                    deliveries_s = std::to_string(r.deliveries);
  auto bytes_of = [](std::string_view v) { return std::as_bytes(std::span(v.data(), v.size())); };
  headers.push_back({"mcp.dlq.topic", bytes_of(topic)});
  headers.push_back({"mcp.dlq.partition", bytes_of(part_s)});
  headers.push_back({"mcp.dlq.offset", bytes_of(offset_s)});
  headers.push_back({"mcp.dlq.deliveries", bytes_of(deliveries_s)});
  headers.push_back({"mcp.dlq.reason", bytes_of(reason)});
  codec::record_input in;
  in.timestamp_ms = rec->timestamp_ms;
  in.key = rec->key;
  in.value = rec->value;
  in.headers = headers;
  std::vector<std::byte> out(codec::record_frame_size(in));
  codec::encode_record(out, in);
  if (find_topic(dlq) == nullptr) {
    // SUBSCRIBE asked the controller to create it; until it exists the record is
    // held (the position does not pass it) and retried every tick.
    pending_dead_.push_back({topic, partition, std::string(group), r, reason});
    return;
  }
  // Nobody waits for this append's ACK (connection 0 is never a connection).
  const unsigned owner = owner_shard(dlq, 0, group_.size());
  if (owner == id_) {
    append_local({id_, 0}, 0, dlq, 0, 1, std::move(out));
  } else {
    send_to(owner, forwarded_publish{{id_, 0}, 0, dlq, 0, 1, std::move(out)});
  }
  table.dead_lettered(r.offset);
}

void shard::wake_group_waiters(topic_state& t, std::string_view group) {
  const auto g = t.groups.find(group);
  if (g == t.groups.end() || g->second.waiting.empty()) return;
  // Moved out first: a local member pulls inside to_member and may wait again.
  const auto waiting = std::exchange(g->second.waiting, {});
  for (const auto& m : waiting) to_member(m, group_ready{m, id_});
}

void shard::retry_dead_letters(std::int64_t now) {
  if (pending_dead_.empty()) return;
  auto pending = std::exchange(pending_dead_, {});
  for (auto& d : pending) {
    topic_state* t = find_topic(d.topic);
    if (t == nullptr) continue;  // the topic is gone, and its group state with it
    group_lease_table* table = find_lease_table(*t, d.partition, d.group);
    if (table == nullptr) continue;
    dead_letter(d.topic, d.partition, *table, d.group, d.record, d.reason);
  }
  // Still missing (its creation failed or was refused by a full queue): ask again, once a second.
  if (!pending_dead_.empty() && now - last_dlq_create_ms_ >= 1000) {
    last_dlq_create_ms_ = now;
    const auto& d = pending_dead_.front();
    if (topic_state* t = find_topic(d.topic)) {
      storage::topic_config dc = t->config;
      dc.partitions = 1;
      (void)group_.post_to_controller(
          id_, admin_request{admin_request::kind::create, {id_, 0}, 0, fmt::format("{}.{}.dlq", d.topic, d.group), dc});
    }
  }
}

void shard::groups_tick(std::int64_t now) {
  retry_dead_letters(now);
  const bool flush = now - last_position_flush_ms_ >= position_flush_ms;
  if (flush) last_position_flush_ms_ = now;
  for (auto& [name, t] : topics_) {
    for (auto& [part, ps] : t.partitions) {
      for (auto& [group, table] : ps.groups) {
        auto ended = table.expire(now);
        std::map<member_id, std::uint32_t> per_member;
        for (const auto& r : ended) ++per_member[r.member];
        for (const auto& [m, n] : per_member) to_member(m, group_released{m, n});
        const bool wake = !ended.empty() || table.has_due(now);
        end_leases(name, part, table, group, std::move(ended), "ack_wait expired");
        if (wake) wake_group_waiters(t, group);
        if (flush) {
          const std::uint64_t c = table.committed();
          const auto p = ps.persisted.find(group);
          if ((p == ps.persisted.end() || p->second != c) &&
              group_.post_to_controller(id_, group_position{group, name, part, c})) {
            ps.persisted[group] = c;
          }
        }
      }
    }
  }
}

}  // namespace mcp::broker
