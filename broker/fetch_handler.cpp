// FETCH: locate whole records in the owning shard's log, answer with a RECORDS
// header and the segment byte range (zero-copy or copy), or park the request
// until data arrives (long-poll) or its wait runs out. A FETCH that follows
// (codec::fetch_flag_follow) is asked again by the connection's shard from the
// end of each answer, while the peer keeps up with reading, and, when windowed,
// while the bytes its WINDOW frames granted are not used up.

#include "broker/shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "broker/cached_copy.h"
#include "broker/log.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

namespace mcp::broker {

using codec::error_code;
using codec::opcode;

void shard::handle_fetch(connection& c, const codec::frame_view& f) {
  const auto q = codec::decode_fetch(f.body);
  if (!q) return send_error(c, f.header.correlation, error_code::malformed_body, "FETCH body is malformed");
  topic_state* t = find_topic(q->topic);
  if (t == nullptr) return send_error(c, f.header.correlation, error_code::unknown_topic, fmt::format("no topic '{}'", q->topic));
  if (q->partition >= t->config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has partitions 0..{}", q->topic, t->config.partitions - 1));
  }
  const bool follows = (q->flags & codec::fetch_flag_follow) != 0;
  if (follows && q->max_wait_ms == 0) {
    // Each answer would come back at once, empty, and be asked again: a busy loop.
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      "a FETCH that follows needs max_wait_ms > 0 (how long each answer may wait for data)");
  }
  // A newer FETCH of a partition ends the follow on it (a consumer that seeks).
  end_follow(c, q->topic, q->partition);
  forwarded_fetch req{{id_, c.id}, f.header.correlation, std::string(q->topic), q->partition, q->offset,
                      std::max<std::uint32_t>(q->max_bytes, 1), q->max_wait_ms,
                      (q->flags & codec::fetch_flag_by_timestamp) != 0};
  if (follows) {
    const bool windowed = (q->flags & codec::fetch_flag_windowed) != 0;
    // The first answer may use the whole max_bytes: the window starts there.
    c.follows.push_back({req, true, windowed, req.max_bytes, windowed ? std::int64_t{req.max_bytes} : 0});
  }
  route_fetch(std::move(req));
}

// WINDOW: more bytes for a windowed follow of this connection. One naming no
// follow is ignored: a newer FETCH or an ERROR may have ended it while the WINDOW
// was on its way, and the client learns that from those, not from this.
void shard::handle_window(connection& c, const codec::frame_view& f) {
  const auto w = codec::decode_window(f.body);
  if (!w) return send_error(c, f.header.correlation, error_code::malformed_body, "WINDOW body is malformed");
  const auto it = std::find_if(c.follows.begin(), c.follows.end(),
                               [&](const follow& fw) { return fw.next.correlation == w->fetch; });
  if (it == c.follows.end()) return;
  if (!it->windowed) {
    return send_error(c, f.header.correlation, error_code::invalid_argument,
                      fmt::format("FETCH {} follows without a window (flag bit 2): WINDOW does not apply", w->fetch));
  }
  // Bounded so a client granting forever cannot overflow it; what is queued for
  // the socket stays bounded by --max-inflight-bytes whatever the window.
  constexpr std::int64_t max_window = std::int64_t{1} << 40;
  it->window = std::min<std::int64_t>(it->window + w->bytes, max_window);
  if (!it->in_flight) resume_follows(c);
}

void shard::route_fetch(forwarded_fetch&& req) {
  const unsigned owner = owner_shard(req.topic, req.partition, group_.size());
  if (owner == id_) {
    fetch_local(req);
  } else {
    send_to(owner, std::move(req));
  }
}

void shard::end_follow(connection& c, std::string_view topic, std::uint32_t partition) {
  const auto it = std::find_if(c.follows.begin(), c.follows.end(),
                               [&](const follow& f) { return f.next.partition == partition && f.next.topic == topic; });
  if (it == c.follows.end()) return;
  if (it->in_flight) c.ended_follows.push_back(it->next.correlation);
  c.follows.erase(it);
}

// Asks again, from where its last answer ended, every follow of `c` with nothing in
// flight — unless the peer is behind on reading (the output above half of
// --max-inflight-bytes): then the send completions that shrink it call this again.
// Iterative: a local answer comes back inside route_fetch and lands here again.
void shard::resume_follows(connection& c) {
  follows_ready_.push_back(c.id);
  if (resuming_follows_) return;
  resuming_follows_ = true;
  while (!follows_ready_.empty()) {
    connection* k = find(follows_ready_.back());
    follows_ready_.pop_back();
    if (k == nullptr || k->closing || k->draining || stopping_) continue;
    for (std::size_t i = 0; i < k->follows.size(); ++i) {
      if (k->out_bytes > cfg_.max_inflight_bytes / 2) break;
      follow& f = k->follows[i];
      if (f.in_flight || (f.windowed && f.window <= 0)) continue;
      f.in_flight = true;
      if (f.windowed) f.next.max_bytes = static_cast<std::uint32_t>(std::min<std::int64_t>(f.max_bytes, f.window));
      // Data going out to a peer that reads it keeps the connection alive.
      k->last_activity_ms = now_ms();
      route_fetch(forwarded_fetch(f.next));
    }
  }
  resuming_follows_ = false;
}

void shard::fetch_local(const forwarded_fetch& req) {
  fetch_result r;
  r.conn = req.from.id;
  r.correlation = req.correlation;
  auto reply = [&](fetch_result&& res) {
    if (req.from.shard == id_) {
      deliver_fetch(std::move(res));
    } else {
      send_to(req.from.shard, std::move(res));
    }
  };
  topic_state* t = find_topic(req.topic);
  partition_state* ps = nullptr;
  if (t != nullptr) {
    const auto it = t->partitions.find(req.partition);
    if (it != t->partitions.end()) ps = &it->second;
  }
  if (ps == nullptr) {
    r.code = error_code::unknown_topic;
    r.message = fmt::format("no partition {} of topic '{}' on this broker", req.partition, req.topic);
    return reply(std::move(r));
  }
  const auto p = t->partitions.find(req.partition);
  storage::partition_log& log = *p->second.log;
  // Never wait for the disk here (cold_read.cpp); after a few cold reads of the
  // same request (the page cache evicting as fast as it reads), read blocking.
  const auto mode = req.cold_reads < max_cold_reads ? storage::read_mode::nowait : storage::read_mode::blocking;
  std::uint64_t offset = req.offset;
  if (req.by_timestamp) {
    // Resolved once; a long poll that follows waits at the offset found.
    auto o = log.offset_for_timestamp(static_cast<std::int64_t>(req.offset), mode);
    if (!o && o.error().code == storage::errc::would_block) {
      if (start_cold_read(o.error(), req, {}, {})) return;
      o = log.offset_for_timestamp(static_cast<std::int64_t>(req.offset));  // out of descriptors: read here
    }
    if (!o) {
      r.code = error_code::storage_error;
      r.message = o.error().message;
      return reply(std::move(r));
    }
    offset = *o;
  }
  auto slice = log.locate(offset, req.max_bytes, mode);
  if (!slice && slice.error().code == storage::errc::would_block) {
    if (start_cold_read(slice.error(), req, {}, {})) return;
    slice = log.locate(offset, req.max_bytes);  // out of descriptors: read here
  }
  if (!slice) {
    r.code = slice.error().code == storage::errc::out_of_range ? error_code::out_of_range : error_code::storage_error;
    r.message = slice.error().message;
    return reply(std::move(r));
  }
  if (slice->bytes == 0 && req.max_wait_ms > 0 && !stopping_) {
    p->second.waiters.push_back({req.from, req.correlation, offset, req.max_bytes,
                                 now_ms() + static_cast<std::int64_t>(req.max_wait_ms)});
    return;
  }
  r.header = {offset, log.high_watermark(), log.log_start(), req.partition, slice->count(),
              static_cast<std::uint32_t>(slice->bytes)};
  if (slice->bytes > 0 && slice->bytes <= cfg_.copy_max_bytes) {
    r.copied = copy_if_cached(slice->fd, slice->position, slice->bytes, codec::frame_size(codec::records_size));
  }
  if (slice->bytes > 0 && r.copied.empty()) {
    r.fd = owned_fd::duplicate(slice->fd);
    if (!r.fd.valid()) {
      r.code = error_code::resource_exhausted;
      r.message = "the broker is out of file descriptors; retry later";
      return reply(std::move(r));
    }
  }
  r.position = slice->position;
  reply(std::move(r));
}

void shard::wake_waiters(const std::string& topic, partition_state& ps, std::uint32_t partition) {
  // Group members that found nothing pull again.
  if (!ps.groups.empty()) {
    if (topic_state* t = find_topic(topic)) {
      for (auto& [g, og] : t->groups) {
        if (!og.waiting.empty()) wake_group_waiters(*t, g);
      }
    }
  }
  if (ps.waiters.empty()) return;
  auto ws = std::move(ps.waiters);
  ps.waiters.clear();
  for (const auto& w : ws) {
    // A waiter whose offset is still at the end keeps waiting (max_wait left as is).
    const std::int64_t left = w.deadline_ms - now_ms();
    fetch_local({w.to, w.correlation, topic, partition, w.offset, w.max_bytes,
                 static_cast<std::uint32_t>(std::max<std::int64_t>(left, 1))});
  }
}

void shard::deliver_fetch(fetch_result&& r) {
  connection* c = find(r.conn);
  if (c == nullptr || c->closing) return;
  if (const auto e = std::find(c->ended_follows.begin(), c->ended_follows.end(), r.correlation);
      e != c->ended_follows.end()) {
    c->ended_follows.erase(e);  // a follow a newer FETCH ended: its client waits for that one's answers
    return;
  }
  const auto fw = std::find_if(c->follows.begin(), c->follows.end(),
                               [&](const follow& f) { return f.next.correlation == r.correlation && f.in_flight; });
  if (r.code != error_code::none) {
    if (fw != c->follows.end()) c->follows.erase(fw);  // an ERROR ends a follow
    return send_error(*c, r.correlation, r.code, r.message);
  }
  if (fw != c->follows.end()) {
    fw->in_flight = false;
    // By offset from here on: a timestamp is resolved by the first answer only.
    fw->next.offset = r.header.first_offset + r.header.record_count;
    fw->next.by_timestamp = false;
    // A first record larger than what was left is still sent whole: a debt.
    if (fw->windowed) fw->window -= static_cast<std::int64_t>(r.header.byte_count);
  }
  send_records(*c, std::move(r));
  if (fw != c->follows.end()) resume_follows(*c);
}

void shard::send_records(connection& c, fetch_result&& r) {
  std::array<std::byte, codec::records_size> body{};
  codec::encode_records(body, r.header);
  send_run(c, opcode::records, r.correlation, body, std::move(r.copied), std::move(r.fd), r.position,
           r.header.byte_count);
}

void shard::send_run(connection& c, opcode op, std::uint32_t correlation, std::span<const std::byte> body,
                     std::vector<std::byte>&& copied, owned_fd&& fd, std::uint64_t position, std::uint64_t bytes) {
  // A copied run goes out in one send with its header frame, which it has room
  // for at its front (the records follow the header on the wire, as spliced ones do).
  std::vector<std::byte> f = std::move(copied);
  const std::size_t header_frame = codec::frame_size(body.size());
  const bool was_copied = !f.empty();
  if (!was_copied) f.resize(header_frame);
  std::copy(body.begin(), body.end(), f.begin() + codec::header_size);
  codec::seal_frame(std::span(f).first(header_frame), op, correlation);
  send_frame(c, std::move(f));
  if (was_copied || bytes == 0) return;
  out_chunk ch;
  ch.k = cfg_.delivery == delivery_mode::zero_copy ? out_chunk::kind::file_splice : out_chunk::kind::file_copy;
  ch.fd = fd.get();
  ch.hold = std::move(fd);
  ch.pos = position;
  ch.len = bytes;
  queue(c, std::move(ch));
}

}  // namespace mcp::broker
