#pragma once
// The log of one partition: segments of RECORD frames with dense offsets.
//
// Durability contract (docs/storage.md "Durability"): append() reports each batch
// through its append_callback exactly once — success only when the batch is as
// durable as the level asks (sync: covered by a completed fdatasync; interval and
// none: written to the page cache), failure after a write or sync error, after
// which the log refuses further appends until it is reopened (recovery then keeps
// exactly the records that reached the file). Batches complete in offset order.
// Readers see only completed batches: locate() never returns bytes past the
// high watermark.
//
// Buffers: the frames passed to append() are stamped in place and must stay valid
// and unchanged until that append's callback runs.
//
// Thread: one owner thread calls everything and receives every callback (the
// file_io's completions run there too). Not copyable or movable: callbacks point at it.

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "storage/durability.h"
#include "storage/errc.h"
#include "storage/file_io.h"
#include "storage/producer_state.h"
#include "storage/recovery_point.h"
#include "storage/segment.h"

namespace mcp::storage {

struct log_options {
  std::uint64_t segment_bytes = 256u << 20;
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;
  std::uint64_t index_interval = 4096;
  durability level{};
  std::int64_t retention_bytes = -1;  // -1: unlimited
  std::int64_t retention_ms = -1;     // -1: unlimited
  // How much of the log's tail open() scans to rebuild what it remembers of
  // idempotent producers (docs/storage.md "Idempotent producers").
  std::uint64_t producer_scan_bytes = 64u << 20;
  // Levels none and interval: every time this many more bytes of the active
  // segment are written, start their writeback (file_io::start_writeback), so
  // the disk gets a steady trickle instead of a whole segment at its sealing
  // fdatasync, a burst that stalled the VM's whole pipeline for ~40 ms per 64 MiB
  // (perf/results.md). 0: never (the kernel's own writeback and the seal only).
  std::uint64_t writeback_bytes = 4u << 20;
  // The previous run ended with the machine going down (storage/run_marker.h):
  // open() validates in full every segment from the stored recovery point on
  // (storage/recovery_point.h: those may hold data that was never synced; all of
  // them without a readable point), and cuts the log at a page lost there.
  bool after_machine_crash = false;
};

class append_callback {
 public:
  // `err` is null on success.
  virtual void append_done(std::uint64_t first_offset, std::uint32_t count, const error* err) noexcept = 0;

 protected:
  ~append_callback() = default;
};

// A byte range of one segment file holding whole records, for sendfile/splice.
struct log_slice {
  int fd = -1;
  std::uint64_t position = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_offset = 0;
  std::uint64_t last_offset = 0;  // valid when bytes > 0
  std::uint32_t count() const noexcept { return bytes == 0 ? 0 : static_cast<std::uint32_t>(last_offset - first_offset + 1); }
};

class partition_log {
 public:
  // Opens (recovering) or creates the log in `dir`. Blocking: call at start-up or
  // from a helper thread.
  static result<std::unique_ptr<partition_log>> open(const std::filesystem::path& dir, const log_options& opts,
                                                     file_io& io, std::int64_t now_ms);
  ~partition_log();
  partition_log(const partition_log&) = delete;
  partition_log& operator=(const partition_log&) = delete;

  // Appends `count` validated RECORD frames (codec::validate_records) lying back to
  // back in `frames`: stamps offsets (and `now_ms` where the producer left the
  // timestamp 0) and writes them with one write. Returns the first offset; the
  // callback reports completion. May roll the segment first (a synchronous file
  // create, once per segment).
  result<std::uint64_t> append(std::span<std::byte> frames, std::uint32_t count, std::int64_t now_ms,
                               append_callback* cb);

  // Completes `cb` (count 0, first_offset = log_end()) once every append made
  // before it has completed, e.g. to answer a resent idempotent batch only when
  // its original is as durable as the level asks. Never fails by itself; after a
  // log failure it reports the failure like the appends before it.
  result<void> append_barrier(append_callback* cb);

  // Idempotent producers: what append() has stored from each (append() records
  // every batch whose records carry a producer id), rebuilt by open() from the
  // last `producer_scan_bytes` of the log.
  const producer_state& producers() const noexcept { return producers_; }
  std::uint64_t producer_scan_bytes_read() const noexcept { return producer_scan_read_; }

  // interval durability: syncs when the interval has passed and data is unsynced.
  // Every level: writes the index entries noted since the last index write.
  void tick(std::int64_t now_ms);

  // Index entries are written in batches behind the data (append writes them once
  // index_batch_entries have gathered, a roll writes the sealed segment's rest,
  // tick() whatever is left), one write per index file at a time. This hands every
  // entry noted so far to the backend now, e.g. before a clean shutdown. Entries
  // lost in a crash only make the next open scan a little more of the segment.
  void write_indexes() noexcept;
  static constexpr std::size_t index_batch_entries = 32;

  // Whole records from `offset`, at most `max_bytes` of them unless the first
  // record alone is larger (it is then returned alone, so a reader always moves on).
  // An offset equal to the high watermark gives an empty slice (wait for more).
  // With read_mode::nowait the walk over record headers reads only what the page
  // cache holds and fails with would_block (naming the range to read) otherwise.
  result<log_slice> locate(std::uint64_t offset, std::uint64_t max_bytes, read_mode mode = read_mode::blocking) const;
  // Up to `max_records` whole records from `offset`, within one segment (a run that
  // crosses into the next segment is cut at its end). Empty at the high watermark.
  result<log_slice> locate_records(std::uint64_t offset, std::uint32_t max_records,
                                   read_mode mode = read_mode::blocking) const;
  // A copy of the RECORD frame at `offset` (below the high watermark), for rare
  // paths (dead letters, lag in time), not for delivery. With read_mode::nowait it
  // fails with would_block, naming the range, when the bytes are not in the page cache.
  result<std::vector<std::byte>> read_record(std::uint64_t offset, read_mode mode = read_mode::blocking) const;
  // The first offset whose record has timestamp >= ts, or the high watermark.
  result<std::uint64_t> offset_for_timestamp(std::int64_t ts, read_mode mode = read_mode::blocking) const;

  // Reads every record of every segment and checks frames, CRCs, record layout and
  // offset continuity (opening checks only the tail). The first problem is
  // reported as corrupt with the segment file and byte position. Blocking.
  result<void> verify() const;

  // Drops whole sealed segments beyond retention (bytes, age); never the active
  // one. When the log is idle it also rolls an active segment that is due by
  // segment_ms or wholly past retention_ms, so a quiet log ages out too (that
  // segment goes in a later call). Returns how many segments went: they are gone
  // from the log at once, and their files are unlinked through the backend, one
  // after the other (files_to_remove() until done). A removal that failed is
  // reported as the error of the next call, which retries it. A roll creates
  // files (open O_CREAT, on this thread).
  result<std::size_t> apply_retention(std::int64_t now_ms);

  std::uint64_t log_start() const noexcept;
  std::uint64_t log_end() const noexcept;         // next offset to be assigned
  std::uint64_t high_watermark() const noexcept;  // next offset a reader can see
  std::uint64_t size_bytes() const noexcept;
  std::size_t segment_count() const noexcept { return segments_.size(); }
  const segment& segment_at(std::size_t i) const noexcept { return *segments_[i]; }
  bool failed() const noexcept { return failed_; }
  // Why the log failed (which file operation, the errno text); empty while it has not.
  const std::string& failure() const noexcept { return failure_; }
  // No write, sync or file removal in flight.
  bool idle() const noexcept {
    return pending_.empty() && !sync_in_flight_ && index_writes_ == 0 && !removal_in_flight_ && writebacks_ == 0 &&
           seals_.empty() && !point_.in_flight && !sync_kick_.pending;
  }
  // The recovery point durably stored (storage/recovery_point.h): every segment
  // below this base offset is synced whole. It rises as seals and sync rounds
  // complete, one in-place write + fdatasync at a time.
  std::uint64_t recovery_point() const noexcept { return point_.stored; }
  // Files of dropped segments not yet unlinked.
  std::size_t files_to_remove() const noexcept { return doomed_.size(); }
  std::uint64_t syncs_issued() const noexcept { return syncs_issued_; }
  // What open() cut off or removed to recover from a crash, one line each, for
  // the operator's log; empty after a clean shutdown.
  const std::vector<std::string>& recovery_notes() const noexcept { return recovery_notes_; }
  const log_options& options() const noexcept { return opts_; }

 private:
  struct pending_append final : io_callback {
    partition_log* log = nullptr;
    append_callback* cb = nullptr;
    std::uint64_t first = 0;
    std::uint64_t next = 0;
    std::uint32_t count = 0;
    std::uint64_t seg_base = 0;
    std::uint64_t end_pos = 0;
    int fd = -1;
    enum class state { in_flight, written, failed } st = state::in_flight;
    void io_done(int res) noexcept override;
  };
  struct sync_round final : io_callback {
    partition_log* log = nullptr;
    unsigned outstanding = 0;
    int err = 0;
    void io_done(int res) noexcept override;
  };
  // `sync`: the next round starts through file_io::defer, after the completions
  // at hand, so every write that completed in the same batch joins it.
  struct sync_kick final : io_callback {
    partition_log* log = nullptr;
    bool pending = false;
    void io_done(int res) noexcept override;
  };
  // The sealing fdatasync of a rolled segment (levels none and interval). It is
  // issued only once every write to the segment has completed, so that it covers
  // them all; until then the segment is not removed by retention.
  struct seal_sync final : io_callback {
    partition_log* log = nullptr;
    int fd = -1;
    std::uint64_t base = 0;  // the segment's: the recovery point stays at or below it until done
    std::uint64_t end = 0;   // the segment's next offset: issued once written_next_ reaches it
    bool issued = false;
    void io_done(int res) noexcept override;
  };
  struct writeback final : io_callback {
    partition_log* log = nullptr;
    void io_done(int res) noexcept override;
  };
  // Completion of the two writes (offset and time index) of an index batch.
  struct index_batch final : io_callback {
    partition_log* log = nullptr;
    void io_done(int res) noexcept override;
  };
  // Completion of the file removal in flight (doomed_.front()).
  struct removal final : io_callback {
    partition_log* log = nullptr;
    void io_done(int res) noexcept override;
  };

  // The in-place write, then fdatasync, of the recovery point file; one at a time.
  struct point_write final : io_callback {
    partition_log* log = nullptr;
    int fd = -1;
    bool in_flight = false;
    bool syncing = false;       // the write is done; its fdatasync is in flight
    std::uint64_t stored = 0;   // durable in the file
    std::uint64_t writing = 0;  // in flight
    std::array<std::byte, recovery_point_size> bytes{};
    void io_done(int res) noexcept override;
  };

  partition_log(std::filesystem::path dir, const log_options& opts, file_io& io);
  result<void> sync_since_point(std::optional<std::uint64_t> stored);
  std::uint64_t unsynced_from() const noexcept;
  void store_recovery_point() noexcept;
  result<void> roll(std::int64_t now_ms);
  void rebuild_producers();
  result<void> drop_segments_after(segment& s, const std::vector<std::uint64_t>& bases, std::size_t i);
  void advance() noexcept;
  void advance_once() noexcept;
  // Written data no sync round covers, and none in flight.
  bool sync_due() const noexcept {
    return !sync_in_flight_ && !dirty_fds_.empty() && written_next_ > synced_next_;
  }
  void start_sync() noexcept;
  void request_sync() noexcept;
  void start_removals() noexcept;
  void start_seals() noexcept;
  void note_written(int fd, std::uint64_t end_pos) noexcept;
  void write_index_batch(segment& seg) noexcept;
  void fail_log(int err, const char* what) noexcept;
  segment::options segment_opts() const noexcept;
  std::uint64_t visible_size(const segment& s) const noexcept;
  std::uint64_t visible_next(const segment& s) const noexcept;
  const segment* segment_for(std::uint64_t offset) const noexcept;

  std::filesystem::path dir_;
  log_options opts_;
  file_io& io_;
  std::deque<std::unique_ptr<segment>> segments_;
  std::deque<pending_append> pending_;
  std::vector<int> dirty_fds_;  // written since their last sync round started (the directory after a roll)
  int dir_fd_ = -1;             // the log's directory, for syncing new segments' names
  sync_round sync_;
  sync_kick sync_kick_;
  std::list<seal_sync> seals_;  // a list: each is the callback of its sync, so it must not move
  unsigned index_writes_ = 0;
  index_batch index_batch_cb_;
  const segment* index_batch_seg_ = nullptr;  // whose index batch is in flight (its memory is being written)
  unsigned index_batch_ops_ = 0;
  // Files of dropped segments, to unlink in this order, one at a time: so whatever
  // is left of them on disk (after a crash or a failure) is always whole segments
  // just below the log start, which the next open takes back as the log's first
  // segments, with no gap. A segment's indexes go before its log: a log without
  // its index is rebuilt at open, an index without its log would never be deleted.
  std::deque<std::filesystem::path> doomed_;
  writeback writeback_cb_;
  unsigned writebacks_ = 0;
  int writeback_fd_ = -1;          // the segment file the next writeback is for
  std::uint64_t writeback_pos_ = 0;  // where it starts: everything before was started
  removal removal_cb_;
  bool removal_in_flight_ = false;
  bool starting_removals_ = false;
  std::string removal_failure_;  // the removal that failed; retried at the next apply_retention
  bool sync_in_flight_ = false;
  std::uint64_t sync_target_ = 0;
  std::uint64_t written_next_ = 0;   // every offset below is written
  std::uint64_t synced_next_ = 0;    // every offset below is covered by an fdatasync
  std::uint64_t visible_next_ = 0;   // every offset below is complete (acked) and readable
  std::uint64_t visible_seg_base_ = 0;
  std::uint64_t visible_pos_ = 0;
  std::int64_t last_sync_ms_ = 0;
  std::uint64_t syncs_issued_ = 0;
  bool failed_ = false;
  std::string failure_;
  std::vector<std::string> recovery_notes_;
  producer_state producers_;
  std::uint64_t producer_scan_read_ = 0;
  bool advancing_ = false;
  bool advance_again_ = false;
  point_write point_;
};

}  // namespace mcp::storage
