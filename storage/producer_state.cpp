#include "storage/producer_state.h"

#include <algorithm>

namespace mcp::storage {

producer_state::decision producer_state::check(std::uint64_t producer, std::uint32_t first_seq,
                                               std::uint32_t count) const noexcept {
  const auto it = producers_.find(producer);
  // A producer never seen (or forgotten) may start anywhere: its first batch, or
  // one whose earlier batches lie beyond what was remembered.
  if (it == producers_.end() || it->second.runs.empty()) return {};
  const run& last = it->second.runs.back();
  const std::uint64_t next = last.first_seq + last.count;
  const std::uint64_t s = first_seq;
  const std::uint64_t e = s + count;  // exclusive
  if (s == next) return {};
  if (s > next) return {verdict::out_of_order, 0};
  for (auto r = it->second.runs.rbegin(); r != it->second.runs.rend(); ++r) {
    if (s >= r->first_seq && e <= r->first_seq + r->count) {
      return {verdict::duplicate, r->first_offset + (s - r->first_seq)};
    }
  }
  return {verdict::duplicate_unknown, 0};
}

void producer_state::record(std::uint64_t producer, std::uint32_t first_seq, std::uint32_t count,
                            std::uint64_t first_offset) {
  if (producer == 0 || count == 0) return;
  if (producers_.size() >= max_producers && !producers_.contains(producer)) {
    const auto oldest = std::min_element(producers_.begin(), producers_.end(), [](const auto& a, const auto& b) {
      return a.second.last_active < b.second.last_active;
    });
    producers_.erase(oldest);
  }
  entry& en = producers_[producer];
  en.last_active = ++clock_;
  if (!en.runs.empty()) {
    run& last = en.runs.back();
    if (last.first_seq + last.count == first_seq && last.first_offset + last.count == first_offset) {
      last.count += count;
      return;
    }
  }
  en.runs.push_back({first_seq, first_offset, count});
  if (en.runs.size() > max_runs) en.runs.pop_front();
}

}  // namespace mcp::storage
