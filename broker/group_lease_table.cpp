#include "broker/group_lease_table.h"

#include <algorithm>
#include <limits>

namespace mcp::broker {

std::vector<group_lease_table::run> group_lease_table::take(const member_id& m, std::int64_t now, std::uint32_t max,
                                                            std::uint64_t end) {
  std::vector<run> out;
  const std::int64_t deadline = now + static_cast<std::int64_t>(settings_.ack_wait_ms);
  // Redeliveries first, in offset order, joined into runs of equal delivery count.
  lease_map::iterator last = leases_.end();
  for (auto it = redeliver_.begin(); it != redeliver_.end() && max > 0;) {
    if (it->second.ready_at > now) {
      ++it;
      continue;
    }
    const std::uint64_t offset = it->first;
    const auto deliveries = static_cast<std::uint16_t>(std::min<std::uint32_t>(it->second.deliveries + 1u, 0xFFFF));
    it = redeliver_.erase(it);
    ++redeliveries_;
    ++leased_;
    --max;
    if (!out.empty() && out.back().first + out.back().count == offset && out.back().deliveries == deliveries) {
      ++out.back().count;
      ++last->second.count;
    } else {
      out.push_back({offset, 1, deliveries});
      last = leases_.emplace(offset, lease{1, m, deadline, deliveries}).first;
    }
  }
  if (max > 0 && cursor_ < end) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(max, end - cursor_));
    // Everything leased lies below the cursor: the new run is the last node.
    leases_.emplace_hint(leases_.end(), cursor_, lease{n, m, deadline, 1});
    leased_ += n;
    out.push_back({cursor_, n, 1});
    cursor_ += n;
  }
  return out;
}

group_lease_table::lease_map::iterator group_lease_table::run_at(std::uint64_t offset) {
  auto it = leases_.upper_bound(offset);
  if (it == leases_.begin()) return leases_.end();
  --it;
  return offset < it->first + it->second.count ? it : leases_.end();
}

void group_lease_table::split_at(std::uint64_t offset, const member_id* only) {
  const auto it = run_at(offset);
  if (it == leases_.end() || it->first == offset) return;
  lease& l = it->second;
  if (only != nullptr && l.member != *only) return;
  lease right = l;
  right.count = static_cast<std::uint32_t>(it->first + l.count - offset);
  l.count = static_cast<std::uint32_t>(offset - it->first);
  leases_.emplace_hint(std::next(it), offset, right);
}

group_lease_table::lease_map::iterator group_lease_table::erase_run(lease_map::iterator it) {
  leased_ -= it->second.count;
  return leases_.erase(it);
}

void group_lease_table::give_back(std::uint64_t from, std::uint64_t run_end, std::uint16_t deliveries) {
  split_at(from);
  split_at(run_end);
  for (auto it = leases_.lower_bound(from); it != leases_.end() && it->first < run_end;) it = erase_run(it);
  if (deliveries == 1 && run_end == cursor_) {
    cursor_ = from;
    return;
  }
  for (std::uint64_t o = from; o < run_end; ++o) {
    redeliver_[o] = {0, static_cast<std::uint16_t>(deliveries - 1)};
    if (deliveries > 1) --redeliveries_;
  }
}

std::uint32_t group_lease_table::ack(const member_id& m, std::uint64_t first, std::uint64_t last) {
  // Only m's runs are cut at the range's ends: other members' runs stay whole.
  split_at(first, &m);
  if (last != std::numeric_limits<std::uint64_t>::max()) split_at(last + 1, &m);
  std::uint32_t n = 0;
  for (auto it = leases_.lower_bound(first); it != leases_.end() && it->first <= last;) {
    if (it->second.member == m) {
      n += it->second.count;
      it = erase_run(it);
    } else {
      ++it;
    }
  }
  return n;
}

group_lease_table::released group_lease_table::end_one(std::uint64_t offset, const lease& l, std::int64_t ready_at,
                                                       bool give_up) {
  released r{offset, l.member, l.deliveries, give_up || l.deliveries >= settings_.max_deliver};
  if (r.offset < log_start_) {
    // Deleted by retention while leased: it cannot be read again, so it is not.
    ++skipped_;
    r.dead = false;
    r.gone = true;
    return r;
  }
  if (r.dead) {
    held_[r.offset] = true;  // until dead_lettered()
  } else {
    redeliver_[r.offset] = {ready_at, r.deliveries};
  }
  return r;
}

group_lease_table::lease_map::iterator group_lease_table::end_run(lease_map::iterator it, std::int64_t ready_at,
                                                                  bool give_up, std::vector<released>& out) {
  for (std::uint32_t k = 0; k < it->second.count; ++k) out.push_back(end_one(it->first + k, it->second, ready_at, give_up));
  return erase_run(it);
}

bool group_lease_table::nack(const member_id& m, std::uint64_t offset, std::int64_t ready_at, released& out,
                             bool give_up) {
  if (const auto it = run_at(offset); it == leases_.end() || it->second.member != m) return false;
  split_at(offset);
  split_at(offset + 1);
  const auto it = leases_.find(offset);
  out = end_one(offset, it->second, ready_at, give_up);
  erase_run(it);
  return true;
}

std::vector<group_lease_table::released> group_lease_table::expire(std::int64_t now) {
  std::vector<released> out;
  for (auto it = leases_.begin(); it != leases_.end();) {
    it = it->second.deadline <= now ? end_run(it, now, false, out) : std::next(it);
  }
  return out;
}

std::vector<group_lease_table::released> group_lease_table::release_member(const member_id& m) {
  std::vector<released> out;
  for (auto it = leases_.begin(); it != leases_.end();) {
    it = it->second.member == m ? end_run(it, 0, false, out) : std::next(it);
  }
  return out;
}

void group_lease_table::dead_lettered(std::uint64_t offset) {
  if (held_.erase(offset) != 0) ++dead_;
}

std::uint64_t group_lease_table::skip_to(std::uint64_t log_start) {
  if (log_start <= log_start_) return 0;
  log_start_ = log_start;
  std::uint64_t n = 0;
  if (cursor_ < log_start) {
    n += log_start - cursor_;
    cursor_ = log_start;
  }
  for (auto* m : {&redeliver_}) {
    const auto end = m->lower_bound(log_start);
    n += static_cast<std::uint64_t>(std::distance(m->begin(), end));
    m->erase(m->begin(), end);
  }
  const auto hend = held_.lower_bound(log_start);
  n += static_cast<std::uint64_t>(std::distance(held_.begin(), hend));
  held_.erase(held_.begin(), hend);
  skipped_ += n;
  return n;
}

bool group_lease_table::has_due(std::int64_t now) const noexcept { return next_due() <= now; }

std::int64_t group_lease_table::next_due() const noexcept {
  std::int64_t t = std::numeric_limits<std::int64_t>::max();
  for (const auto& [o, w] : redeliver_) t = std::min(t, w.ready_at);
  return t;
}

std::uint64_t group_lease_table::committed() const noexcept {
  std::uint64_t c = std::max(cursor_, log_start_);
  if (!leases_.empty()) c = std::min(c, leases_.begin()->first);
  if (!redeliver_.empty()) c = std::min(c, redeliver_.begin()->first);
  if (!held_.empty()) c = std::min(c, held_.begin()->first);
  return c;
}

}  // namespace mcp::broker
