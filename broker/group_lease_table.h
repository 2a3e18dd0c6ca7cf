#pragma once
// The state of one consumer group on one partition (docs/groups.md "A record's
// life in a group"): which records are leased to which member until when, which
// wait to be delivered again, and the committed position — the lowest offset not
// yet done. Pure bookkeeping: no I/O, no clock of its own (callers pass `now`).
//
// Memory: leases are kept as runs — consecutive offsets leased together to one
// member with one deadline and delivery count are one map node, split only where
// an ack, NACK or give-back ends part of a run — so a member's window of new
// records costs one node, not one per record. A waiting redelivery is one node
// per record. There are at most as many records as the credit of the group's
// members plus the records they released, so the table stays bounded by the
// credit the broker lets members hold.
//
// Thread: owned by the partition's owner shard.

#include <cstdint>
#include <map>
#include <vector>

namespace mcp::broker {

// A member of a group, across shards: (shard, connection id, subscription id).
struct member_id {
  unsigned shard = 0;
  std::uint64_t conn = 0;
  std::uint32_t sub = 0;
  auto operator<=>(const member_id&) const = default;
};

class group_lease_table {
 public:
  struct settings {
    std::uint32_t ack_wait_ms = 30'000;
    std::uint32_t max_deliver = 5;
  };
  // A run of consecutive offsets leased together with one delivery count.
  struct run {
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    std::uint16_t deliveries = 0;
  };
  // A lease that ended without an ack.
  struct released {
    std::uint64_t offset = 0;
    member_id member;
    std::uint16_t deliveries = 0;
    bool dead = false;  // delivered max_deliver times: goes to the dead-letter topic
    bool gone = false;  // deleted by retention: neither redelivered nor dead-lettered
  };

  group_lease_table(std::uint64_t start, settings s) : cursor_(start), settings_(s) {}

  // Leases up to `max` available records below `end` (the high watermark) to `m`:
  // due redeliveries first, then new records from the cursor.
  std::vector<run> take(const member_id& m, std::int64_t now, std::uint32_t max, std::uint64_t end);
  // Undoes the tail of a run `take` handed out that could not be sent: offsets
  // [from, run_end) return to where they came from.
  void give_back(std::uint64_t from, std::uint64_t run_end, std::uint16_t deliveries);

  // Completes the records in [first, last] leased to `m`; returns how many.
  std::uint32_t ack(const member_id& m, std::uint64_t first, std::uint64_t last);
  // Ends `m`'s lease of `offset` now; the record is available again at `ready_at`
  // (or dead if delivered max_deliver times, or at once with `give_up`). False if
  // `m` does not hold it.
  bool nack(const member_id& m, std::uint64_t offset, std::int64_t ready_at, released& out, bool give_up = false);
  // Ends every lease whose deadline passed.
  std::vector<released> expire(std::int64_t now);
  // Ends every lease of `m` (it left).
  std::vector<released> release_member(const member_id& m);
  // Marks a dead record done once it went to the dead-letter topic.
  void dead_lettered(std::uint64_t offset);
  // Retention deleted the records below `log_start`: those not leased now are
  // gone for the group (counted in skipped()); leased ones stay with their holders,
  // whose deliveries already carry the bytes, until acked or ended, and are not
  // delivered again. Returns how many records were skipped.
  std::uint64_t skip_to(std::uint64_t log_start);

  // True if some released record is due by `now`.
  bool has_due(std::int64_t now) const noexcept;
  std::int64_t next_due() const noexcept;  // earliest ready time of a waiting redelivery, or INT64_MAX
  std::uint64_t committed() const noexcept;
  std::uint64_t cursor() const noexcept { return cursor_; }
  std::size_t leased() const noexcept { return leased_; }        // records, not runs
  std::size_t lease_runs() const noexcept { return leases_.size(); }
  std::size_t waiting() const noexcept { return redeliver_.size(); }
  std::uint64_t redeliveries() const noexcept { return redeliveries_; }
  std::uint64_t dead_letters() const noexcept { return dead_; }
  std::uint64_t skipped() const noexcept { return skipped_; }
  const settings& config() const noexcept { return settings_; }

 private:
  // Offsets [key, key + count) leased to `member` until `deadline`.
  struct lease {
    std::uint32_t count = 0;
    member_id member;
    std::int64_t deadline = 0;
    std::uint16_t deliveries = 0;
  };
  using lease_map = std::map<std::uint64_t, lease>;
  struct waiting_record {
    std::int64_t ready_at = 0;
    std::uint16_t deliveries = 0;  // deliveries so far
  };
  // The run covering `offset`, or end().
  lease_map::iterator run_at(std::uint64_t offset);
  // Makes `offset` the first offset of a run if a run covers it (with `only`: a
  // run of that member).
  void split_at(std::uint64_t offset, const member_id* only = nullptr);
  // Removes the whole run; returns the run after it.
  lease_map::iterator erase_run(lease_map::iterator it);
  // Ends the lease of every record of the run: out gets one entry per record.
  lease_map::iterator end_run(lease_map::iterator it, std::int64_t ready_at, bool give_up, std::vector<released>& out);
  released end_one(std::uint64_t offset, const lease& l, std::int64_t ready_at, bool give_up);

  std::uint64_t cursor_;
  settings settings_;
  lease_map leases_;
  std::size_t leased_ = 0;  // records in leases_
  std::map<std::uint64_t, waiting_record> redeliver_;
  std::map<std::uint64_t, bool> held_;  // dead, not yet in the dead-letter topic: the position waits
  std::uint64_t redeliveries_ = 0;
  std::uint64_t dead_ = 0;
  std::uint64_t skipped_ = 0;
  std::uint64_t log_start_ = 0;  // below it nothing is delivered again
};

}  // namespace mcp::broker
