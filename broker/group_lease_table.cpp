#include "broker/group_lease_table.h"

#include <algorithm>
#include <limits>

namespace mcp::broker {

std::vector<group_lease_table::run> group_lease_table::take(const member_id& m, std::int64_t now, std::uint32_t max,
                                                            std::uint64_t end) {
  std::vector<run> out;
  const std::int64_t deadline = now + static_cast<std::int64_t>(settings_.ack_wait_ms);
  // Redeliveries first, in offset order, joined into runs of equal delivery count.
  for (auto it = redeliver_.begin(); it != redeliver_.end() && max > 0;) {
    if (it->second.ready_at > now) {
      ++it;
      continue;
    }
    const std::uint64_t offset = it->first;
    const auto deliveries = static_cast<std::uint16_t>(std::min<std::uint32_t>(it->second.deliveries + 1u, 0xFFFF));
    it = redeliver_.erase(it);
    leases_[offset] = {m, deadline, deliveries};
    ++redeliveries_;
    --max;
    if (!out.empty() && out.back().first + out.back().count == offset && out.back().deliveries == deliveries) {
      ++out.back().count;
    } else {
      out.push_back({offset, 1, deliveries});
    }
  }
  if (max > 0 && cursor_ < end) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(max, end - cursor_));
    for (std::uint64_t o = cursor_; o < cursor_ + n; ++o) leases_.emplace_hint(leases_.end(), o, lease{m, deadline, 1});
    out.push_back({cursor_, n, 1});
    cursor_ += n;
  }
  return out;
}

void group_lease_table::give_back(std::uint64_t from, std::uint64_t run_end, std::uint16_t deliveries) {
  for (std::uint64_t o = from; o < run_end; ++o) leases_.erase(o);
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
  std::uint32_t n = 0;
  for (auto it = leases_.lower_bound(first); it != leases_.end() && it->first <= last;) {
    if (it->second.member == m) {
      it = leases_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

group_lease_table::released group_lease_table::end_lease(std::map<std::uint64_t, lease>::iterator it,
                                                         std::int64_t ready_at, bool give_up) {
  released r{it->first, it->second.member, it->second.deliveries,
             give_up || it->second.deliveries >= settings_.max_deliver};
  leases_.erase(it);
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

bool group_lease_table::nack(const member_id& m, std::uint64_t offset, std::int64_t ready_at, released& out,
                             bool give_up) {
  const auto it = leases_.find(offset);
  if (it == leases_.end() || it->second.member != m) return false;
  out = end_lease(it, ready_at, give_up);
  return true;
}

std::vector<group_lease_table::released> group_lease_table::expire(std::int64_t now) {
  std::vector<released> out;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.deadline <= now) {
      auto next = std::next(it);
      out.push_back(end_lease(it, now));
      it = next;
    } else {
      ++it;
    }
  }
  return out;
}

std::vector<group_lease_table::released> group_lease_table::release_member(const member_id& m) {
  std::vector<released> out;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.member == m) {
      auto next = std::next(it);
      out.push_back(end_lease(it, 0));
      it = next;
    } else {
      ++it;
    }
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
