// Consumer groups, member side (docs/groups.md): a subscription lives on its
// connection's shard. It keeps the credit window — records leased and not yet
// ended never exceed the credit — and pulls from the shards that own the topic's
// partitions, one pull at a time, taking turns, so a reservation never sits on an
// owner that has nothing while another has records. Deliveries go out on the
// connection's ordered queue: a DELIVERY header, then the segment bytes
// (zero-copy, as for FETCH).

#include <fmt/format.h>

#include <array>

#include "broker/log.h"
#include "broker/shard.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"

namespace mcp::broker {

using codec::error_code;
using codec::opcode;

namespace {

// A member may hold at most this many records unacked, whatever credit it asks
// for: the lease tables it fills stay bounded.
constexpr std::uint64_t max_credit = 1u << 16;
constexpr std::size_t max_subscriptions_per_connection = 64;

}  // namespace

void shard::handle_subscribe(connection& c, const codec::frame_view& f) {
  const auto q = codec::verify_control<fb::Subscribe>(f.body);
  if (!q) return send_error(c, f.header.correlation, error_code::malformed_body, "SUBSCRIBE body does not verify");
  const std::string topic = (*q)->topic() ? (*q)->topic()->str() : std::string{};
  const std::string group = (*q)->group() ? (*q)->group()->str() : std::string{};
  topic_state* t = find_topic(topic);
  if (t == nullptr) return send_error(c, f.header.correlation, error_code::unknown_topic, fmt::format("no topic '{}'", topic));
  const std::string dlq = topic + "." + group + ".dlq";
  if (!codec::is_valid_topic_name(group) || !codec::is_valid_topic_name(dlq)) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("group name '{}' must be characters of A-Z a-z 0-9 . _ - and '{}.<group>.dlq' at "
                                  "most 249 bytes",
                                  group, topic));
  }
  const auto key = std::make_pair(c.id, f.header.correlation);
  if (subs_.contains(key)) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("subscription {} exists on this connection", f.header.correlation));
  }
  std::size_t mine = 0;
  for (const auto& [k, s] : subs_) mine += k.first == c.id ? 1 : 0;
  if (mine >= max_subscriptions_per_connection) {
    return send_error(c, f.header.correlation, error_code::resource_exhausted,
                      fmt::format("a connection holds at most {} subscriptions", max_subscriptions_per_connection));
  }
  // The dead-letter topic: created once, by whichever member first needs it.
  if (find_topic(dlq) == nullptr) {
    storage::topic_config dc = t->config;
    dc.partitions = 1;
    admin_request r{admin_request::kind::create, {id_, 0}, 0, dlq, dc};
    if (!group_.post_to_controller(id_, std::move(r))) {
      return send_error(c, f.header.correlation, error_code::resource_exhausted, "the broker is busy; retry");
    }
  }
  subscription s;
  s.conn = c.id;
  s.id = f.header.correlation;
  s.topic = topic;
  s.group = group;
  s.setup.start = (*q)->start();
  s.setup.start_timestamp_ms = (*q)->start_timestamp_ms();
  if ((*q)->ack_wait_ms() != 0) s.setup.settings.ack_wait_ms = (*q)->ack_wait_ms();
  if ((*q)->max_deliver() != 0) s.setup.settings.max_deliver = (*q)->max_deliver();
  s.credit = std::min<std::uint64_t>((*q)->credit(), max_credit);
  for (std::uint32_t p = 0; p < t->config.partitions; ++p) {
    const unsigned o = owner_shard(topic, p, group_.size());
    if (std::find(s.owners.begin(), s.owners.end(), o) == s.owners.end()) s.owners.push_back(o);
  }
  s.empty.assign(s.owners.size(), false);
  std::vector<std::byte> ok;
  codec::append_frame(ok, opcode::ok, f.header.correlation, {});
  send_frame(c, std::move(ok));
  auto [it, inserted] = subs_.emplace(key, std::move(s));
  maybe_pull(it->second);
}

void shard::handle_credit(connection& c, const codec::frame_view& f) {
  const auto b = codec::decode_credit(f.body);
  if (!b) return send_error(c, f.header.correlation, error_code::malformed_body, "CREDIT body is malformed");
  const auto it = subs_.find({c.id, b->subscription});
  if (it == subs_.end()) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("no subscription {} on this connection", b->subscription));
  }
  it->second.credit = std::min<std::uint64_t>(it->second.credit + b->records, max_credit);
  maybe_pull(it->second);
}

void shard::handle_commit(connection& c, const codec::frame_view& f) {
  const auto b = codec::decode_commit(f.body);
  if (!b) return send_error(c, f.header.correlation, error_code::malformed_body, "COMMIT body is malformed");
  const auto it = subs_.find({c.id, b->subscription});
  if (it == subs_.end()) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("no subscription {} on this connection", b->subscription));
  }
  const subscription& s = it->second;
  topic_state* t = find_topic(s.topic);
  if (t == nullptr || b->partition >= t->config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has no partition {}", s.topic, b->partition));
  }
  group_commit m{{id_, c.id, s.id}, s.topic, s.group, b->partition, {}};
  m.ranges.reserve(b->range_count);
  for (std::uint32_t i = 0; i < b->range_count; ++i) m.ranges.push_back(b->range(i));
  to_owner(owner_shard(s.topic, b->partition, group_.size()), std::move(m));
}

void shard::handle_nack(connection& c, const codec::frame_view& f) {
  const auto b = codec::decode_nack(f.body);
  if (!b) return send_error(c, f.header.correlation, error_code::malformed_body, "NACK body is malformed");
  const auto it = subs_.find({c.id, b->subscription});
  if (it == subs_.end()) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("no subscription {} on this connection", b->subscription));
  }
  const subscription& s = it->second;
  topic_state* t = find_topic(s.topic);
  if (t == nullptr || b->partition >= t->config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has no partition {}", s.topic, b->partition));
  }
  to_owner(owner_shard(s.topic, b->partition, group_.size()),
           group_nack{{id_, c.id, s.id}, s.topic, s.group, b->partition, b->offset, b->delay_ms,
                      (b->flags & codec::nack_flag_dead_letter) != 0});
}

void shard::to_owner(unsigned owner, shard_message&& m) {
  if (owner == id_) {
    handle(std::move(m));
  } else {
    send_to(owner, std::move(m));
  }
}

void shard::to_member(const member_id& m, shard_message&& msg) {
  if (m.shard == id_) {
    handle(std::move(msg));
  } else {
    send_to(m.shard, std::move(msg));
  }
}

void shard::maybe_pull(subscription& s) {
  if (s.pulling || stopping_) return;
  const std::uint64_t room = s.credit > s.outstanding ? s.credit - s.outstanding : 0;
  if (room == 0) return;
  for (std::size_t tries = 0; tries < s.owners.size(); ++tries) {
    const std::size_t i = s.next_owner;
    s.next_owner = (s.next_owner + 1) % s.owners.size();
    if (s.empty[i]) continue;
    s.pulling = true;
    s.asked = static_cast<std::uint32_t>(room);
    // A local owner answers inside this call (on_leases clears `pulling`).
    to_owner(s.owners[i], group_pull{{id_, s.conn, s.id}, s.topic, s.group, s.setup, s.asked});
    return;
  }
}

void shard::on_leases(group_leases&& l) {
  const auto it = subs_.find({l.member.conn, l.member.sub});
  // A member that left while its pull was out: the group_leave it sent follows the
  // pull on the same queue, so the owner has released these leases already.
  if (it == subs_.end()) return;
  subscription& s = it->second;
  s.pulling = false;
  std::uint32_t got = 0;
  for (const auto& sl : l.slices) got += sl.count;
  s.outstanding += got;
  for (std::size_t i = 0; i < s.owners.size(); ++i) {
    if (s.owners[i] == l.owner) s.empty[i] = got == 0;
  }
  connection* c = find(s.conn);
  if (c != nullptr && !c->closing) {
    for (auto& sl : l.slices) {
      std::array<std::byte, codec::delivery_size> body{};
      codec::encode_delivery(body, {sl.first, sl.partition, sl.count, static_cast<std::uint32_t>(sl.bytes), s.id,
                                    sl.deliveries});
      send_run(*c, opcode::delivery, s.id, body, std::move(sl.copied), std::move(sl.fd), sl.position, sl.bytes);
    }
  }
  maybe_pull(s);
}

void shard::on_released(const group_released& r) {
  const auto it = subs_.find({r.member.conn, r.member.sub});
  if (it == subs_.end()) return;
  subscription& s = it->second;
  s.outstanding -= std::min<std::uint64_t>(r.count, s.outstanding);
  maybe_pull(s);
}

void shard::on_ready(const group_ready& r) {
  const auto it = subs_.find({r.member.conn, r.member.sub});
  if (it == subs_.end()) return;
  subscription& s = it->second;
  for (std::size_t i = 0; i < s.owners.size(); ++i) {
    if (s.owners[i] == r.owner) s.empty[i] = false;
  }
  maybe_pull(s);
}

void shard::end_subscriptions(connection& c) {
  for (auto it = subs_.lower_bound({c.id, 0}); it != subs_.end() && it->first.first == c.id;) {
    const subscription& s = it->second;
    for (const unsigned o : s.owners) to_owner(o, group_leave{{id_, s.conn, s.id}, s.topic, s.group});
    it = subs_.erase(it);
  }
}

}  // namespace mcp::broker
