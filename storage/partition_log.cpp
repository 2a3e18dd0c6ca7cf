#include "storage/partition_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "codec/byte_order.h"
#include "codec/frame_format.h"
#include "codec/record.h"
#include "storage/durable_dirs.h"
#include "storage/log_format.h"

namespace mcp::storage {

namespace fs = std::filesystem;

partition_log::partition_log(fs::path dir, const log_options& opts, file_io& io)
    : dir_(std::move(dir)), opts_(opts), io_(io) {
  sync_.log = this;
  sync_kick_.log = this;
  index_batch_cb_.log = this;
  removal_cb_.log = this;
  writeback_cb_.log = this;
  point_.log = this;
}

partition_log::~partition_log() {
  // A log is destroyed only when its backend is idle (the sync backend always is).
  assert(pending_.empty() && !sync_in_flight_ && !removal_in_flight_ && writebacks_ == 0 && seals_.empty() &&
         !point_.in_flight && !sync_kick_.pending);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (point_.fd >= 0) ::close(point_.fd);
}

segment::options partition_log::segment_opts() const noexcept {
  return segment::options{opts_.index_interval, opts_.segment_bytes};
}

result<std::unique_ptr<partition_log>> partition_log::open(const fs::path& dir, const log_options& opts, file_io& io,
                                                           std::int64_t now_ms) {
  if (auto r = create_directories_durably(dir); !r) return unexpected{r.error()};
  std::error_code ec;
  std::unique_ptr<partition_log> log(new partition_log(dir, opts, io));
  // Held for syncing the directory: a segment file's own fdatasync does not make
  // its name durable (fsync(2); on this project's journal-less ext4 it never does).
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return fail(errc::io_error, fmt::format("open {}: {}", dir.string(), std::strerror(errno)));

  std::vector<std::uint64_t> bases;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (auto b = parse_segment_name(entry.path().filename().string(), log_suffix)) bases.push_back(*b);
  }
  if (ec) return fail(errc::io_error, fmt::format("list {}: {}", dir.string(), ec.message()));
  std::sort(bases.begin(), bases.end());

  // Every segment below the stored point was synced whole; from it on they may
  // hold pages the disk never got. No readable point: any of them may.
  std::optional<std::uint64_t> stored_point;
  const char* const then = opts.after_machine_crash ? "every segment was validated in full" : "it was written again";
  if (auto p = read_recovery_point(dir); !p) {
    log->recovery_notes_.push_back(fmt::format("{}; {}", p.error().message, then));
  } else if (!*p && opts.after_machine_crash && !bases.empty()) {
    log->recovery_notes_.push_back(fmt::format("{}: no {} file (a log older than it); {}", dir.string(),
                                               recovery_point_name, then));
  } else {
    stored_point = *p;
  }
  const std::uint64_t scan_from = stored_point.value_or(0);

  for (std::size_t i = 0; i < bases.size(); ++i) {
    const bool active = i + 1 == bases.size();
    segment::options so = log->segment_opts();
    so.validate_all = opts.after_machine_crash && (bases[i] >= scan_from || active);
    auto s = segment::open(dir, bases[i], so, active, now_ms);
    if (!s) return unexpected{s.error()};
    if (active && !s->cut_tail().empty()) log->recovery_notes_.push_back(s->cut_tail());
    if (!active && s->next_offset() > bases[i + 1]) {
      return fail(errc::corrupt, fmt::format("{}: segment ends at offset {} but the next segment starts at {}",
                                             s->log_path().string(), s->next_offset(), bases[i + 1]));
    }
    if (!active && (!s->cut_tail().empty() || s->next_offset() < bases[i + 1])) {
      // A sealed segment a crash cut short: the process died (or the machine lost
      // power) while writes to it were in flight, after the roll. Acks go in log
      // order, so nothing after its last whole batch was acknowledged: the log
      // ends there, and the later segments, which hold only records after it, go.
      if (auto r = log->drop_segments_after(*s, bases, i); !r) return unexpected{r.error()};
      log->segments_.push_back(std::make_unique<segment>(std::move(*s)));
      break;
    }
    log->segments_.push_back(std::make_unique<segment>(std::move(*s)));
  }
  // A new log: its first segment's name must survive a crash before anything in
  // it is acknowledged as durable (the directory's own name was synced as it was
  // created); open_recovery_point syncs the directory for it.
  const bool new_log = log->segments_.empty();
  if (new_log) {
    auto s = segment::create(dir, 0, log->segment_opts(), now_ms);
    if (!s) return unexpected{s.error()};
    log->segments_.push_back(std::make_unique<segment>(std::move(*s)));
  }
  // This run tracks the seals it issues itself: the sealed segments an earlier
  // run left possibly unsynced (it died, or seals were in flight) are synced
  // now, and the point moves up to the active segment.
  if (auto r = log->sync_since_point(stored_point); !r) return unexpected{r.error()};
  auto point_fd = open_recovery_point(dir, log->dir_fd_, log->segments_.back()->base(), stored_point, new_log);
  if (!point_fd) return unexpected{point_fd.error()};
  log->point_.fd = *point_fd;
  log->point_.stored = log->segments_.back()->base();
  const segment& last = *log->segments_.back();
  log->written_next_ = log->synced_next_ = log->visible_next_ = last.next_offset();
  log->visible_seg_base_ = last.base();
  log->visible_pos_ = last.size();
  log->last_sync_ms_ = now_ms;
  log->rebuild_producers();
  return log;
}

result<void> partition_log::sync_since_point(std::optional<std::uint64_t> stored) {
  const std::uint64_t from = stored.value_or(0);
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    const segment& s = *segments_[i];
    if (s.base() < from) continue;
    if (::fdatasync(s.log_fd()) != 0) {
      return fail(errc::io_error, fmt::format("fdatasync {}: {}", s.log_path().string(), std::strerror(errno)));
    }
  }
  return {};
}

result<void> partition_log::drop_segments_after(segment& s, const std::vector<std::uint64_t>& bases, std::size_t i) {
  recovery_notes_.push_back(fmt::format(
      "{}; the log was cut there, as a crash leaves it: its records from offset {} on and {} later "
      "segment(s) (offsets {} and up) were removed, none of them acknowledged",
      s.cut_tail().empty() ? fmt::format("{}: ends at offset {} but the next segment starts at {}",
                                         s.log_path().string(), s.next_offset(), bases[i + 1])
                           : s.cut_tail(),
      s.next_offset(), bases.size() - i - 1, bases[i + 1]));
  // Newest first: a crash part way leaves a log this same rule recovers again.
  for (std::size_t j = bases.size() - 1; j > i; --j) {
    const std::string stem = segment_stem(bases[j]);
    for (const auto suffix : {index_suffix, time_index_suffix, log_suffix}) {
      const fs::path p = dir_ / (stem + std::string(suffix));
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
        return fail(errc::io_error, fmt::format("remove {}: {}", p.string(), std::strerror(errno)));
      }
    }
  }
  if (auto r = s.truncate_to_size(); !r) return unexpected{r.error()};
  if (::fsync(dir_fd_) != 0) {
    return fail(errc::io_error, fmt::format("fsync directory {}: {}", dir_.string(), std::strerror(errno)));
  }
  return {};
}

void partition_log::rebuild_producers() {
  // Choose where to start: newest segments first, until the budget is spent,
  // starting each at an index entry (a record boundary).
  struct start_at {
    const segment* seg;
    index_entry at;
  };
  std::vector<start_at> plan;
  std::uint64_t budget = opts_.producer_scan_bytes;
  for (auto it = segments_.rbegin(); it != segments_.rend() && budget > 0; ++it) {
    const segment& s = **it;
    if (s.size() == 0) continue;
    if (s.size() <= budget) {
      plan.push_back({&s, index_entry{}});
      budget -= s.size();
    } else {
      const auto from = static_cast<std::uint32_t>(std::min<std::uint64_t>(s.size() - budget, 0xFFFFFFFFu));
      plan.push_back({&s, s.index().floor_position(from)});
      budget = 0;
    }
  }
  for (auto it = plan.rbegin(); it != plan.rend(); ++it) {
    const segment& s = *it->seg;
    const scan_result r = scan_log(s.log_fd(), it->at.pos, s.size(), s.base() + it->at.rel, 0,
                                   [&](std::uint64_t, const codec::record_view& rec, std::int64_t) {
                                     producers_.record(rec.producer_id, rec.sequence, 1, rec.offset);
                                   });
    producer_scan_read_ += r.bytes_read;
    // Recovery has made the active segment's tail clean; a problem inside a sealed
    // segment is verify()'s to report, as it is for reads. The state is memory of
    // what was stored: what lies past the problem in that segment is not
    // remembered, and the scan goes on with the next segment.
  }
}

std::uint64_t partition_log::log_start() const noexcept { return segments_.front()->base(); }
std::uint64_t partition_log::log_end() const noexcept { return segments_.back()->next_offset(); }
std::uint64_t partition_log::high_watermark() const noexcept { return visible_next_; }

std::uint64_t partition_log::size_bytes() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : segments_) n += s->size();
  return n;
}

result<void> partition_log::roll(std::int64_t now_ms) {
  segment& old = *segments_.back();
  // Sealed segments are synced once, so recovery may trust them whatever the level
  // (at sync, the sync rounds that acknowledge its appends cover them). Its last
  // writes may still be in flight: the seal waits for them (start_seals).
  if (opts_.level.level != durability::kind::sync) {
    seal_sync& seal = seals_.emplace_back();
    seal.log = this;
    seal.fd = old.log_fd();
    seal.base = old.base();
    seal.end = old.next_offset();
    if (written_next_ >= seal.end) {
      seal.issued = true;
      io_.datasync(seal.fd, &seal);  // may complete (and erase `seal`) inside
    }
  }
  write_index_batch(old);
  auto s = segment::create(dir_, old.next_offset(), segment_opts(), now_ms);
  if (!s) return unexpected{s.error()};
  segments_.push_back(std::make_unique<segment>(std::move(*s)));
  // The new file's name is durable only once the directory is synced: the sync
  // round that covers the first appends to it syncs the directory too.
  if (opts_.level.level != durability::kind::none &&
      std::find(dirty_fds_.begin(), dirty_fds_.end(), dir_fd_) == dirty_fds_.end()) {
    dirty_fds_.push_back(dir_fd_);
  }
  return {};
}

result<std::uint64_t> partition_log::append(std::span<std::byte> frames, std::uint32_t count, std::int64_t now_ms,
                                            append_callback* cb) {
  if (failed_) return fail(errc::failed, failure_);
  if (count == 0 || frames.empty()) return fail(errc::invalid_argument, "append of an empty batch");
  {
    const segment& active = *segments_.back();
    const bool too_big = active.size() > 0 && active.size() + frames.size() > opts_.segment_bytes;
    const bool too_old = active.size() > 0 && now_ms - active.created_ms() >= opts_.segment_ms;
    const bool offset_room = active.next_offset() - active.base() + count <= 0xFFFFFFFFull;
    if (too_big || too_old || !offset_room || active.size() + frames.size() > 0xFFFFFFFFull) {
      if (auto r = roll(now_ms); !r) return unexpected{r.error()};
    }
  }
  segment& seg = *segments_.back();
  const std::uint64_t first = seg.next_offset();
  const std::uint64_t pos = seg.reserve(frames.size(), count);

  // Stamp each record and note index entries at record boundaries. This walk is
  // per record by nature (each carries its offset); it touches only the first
  // bytes of each record and patches its CRC for them (codec::crc32c_patch), with
  // no copy and no second pass over the record.
  std::int64_t max_ts = seg.max_ts();
  std::size_t at = 0;
  std::uint64_t offset = first;
  codec::crc32c_shifter shifter;
  while (at < frames.size()) {
    const std::size_t len = codec::length_field_size + codec::load_le<std::uint32_t>(frames.data() + at);
    const auto frame = frames.subspan(at, len);
    codec::stamp_record(frame, offset, now_ms, shifter,
                        at + len < frames.size() ? codec::batch_place::more_follow : codec::batch_place::last);
    seg.note_record(offset, pos + at, max_ts);
    max_ts = std::max(max_ts, codec::record_timestamp(frame));
    ++offset;
    at += len;
  }
  assert(offset == first + count);
  seg.note_timestamp(max_ts);
  // validate_records made every idempotent batch one producer's consecutive run.
  if (const std::uint64_t producer = codec::record_producer_id(frames); producer != 0) {
    producers_.record(producer, codec::record_sequence(frames), count, first);
  }

  pending_append& p = pending_.emplace_back();
  p.log = this;
  p.cb = cb;
  p.first = first;
  p.next = first + count;
  p.count = count;
  p.seg_base = seg.base();
  p.end_pos = pos + frames.size();
  p.fd = seg.log_fd();
  io_.write_at(seg.log_fd(), pos, frames, &p);

  // Index entries: written behind the data, in batches; recovery rebuilds whatever they miss.
  if (seg.index().size() - seg.index_entries_written().offsets >= index_batch_entries) write_index_batch(seg);
  return first;
}

result<void> partition_log::append_barrier(append_callback* cb) {
  pending_append& p = pending_.emplace_back();
  p.log = this;
  p.cb = cb;
  p.first = p.next = log_end();
  p.count = 0;
  p.seg_base = segments_.back()->base();
  p.end_pos = segments_.back()->size();
  p.fd = -1;  // writes nothing, so there is nothing of its own to sync
  p.st = pending_append::state::written;
  advance();
  return {};
}

void partition_log::pending_append::io_done(int res) noexcept {
  if (res < 0) {
    st = state::failed;
    log->fail_log(-res, "write");
  } else {
    st = state::written;
  }
  log->advance();
}

void partition_log::sync_round::io_done(int res) noexcept {
  if (res < 0 && err == 0) err = -res;
  assert(outstanding > 0);
  if (--outstanding > 0) return;
  log->sync_in_flight_ = false;
  if (err != 0) {
    log->fail_log(err, "fdatasync");
  } else {
    log->synced_next_ = std::max(log->synced_next_, log->sync_target_);
  }
  log->advance();
}

void partition_log::seal_sync::io_done(int res) noexcept {
  partition_log* const l = log;
  // The appends it covers were acknowledged at their write (none, interval), but
  // a failed fdatasync may have dropped their pages (fsync(2)): stop here, and
  // let the reopen's recovery find what reached the disk.
  if (res < 0) l->fail_log(-res, "fdatasync sealing a segment");
  l->seals_.remove_if([this](const seal_sync& s) { return &s == this; });  // destroys *this
  l->advance();
}

// Called from advance_once only: a sync completing inside datasync (the sync
// backend) erases its seal, and advance() does not nest, so the walk stays valid.
void partition_log::start_seals() noexcept {
  for (auto it = seals_.begin(); it != seals_.end();) {
    seal_sync& s = *it++;
    if (s.issued) continue;
    if (failed_) {
      // Its writes may never all complete; the reopen after the failure recovers the file.
      seals_.erase(std::prev(it));
      continue;
    }
    if (s.end > written_next_) continue;
    s.issued = true;
    io_.datasync(s.fd, &s);
  }
}

// Writes the entries of `seg`'s indexes noted since its last batch, unless a batch
// is in flight: its completion writes what gathered meanwhile. One write per file
// at a time keeps the backend's queue short and each write large enough to be worth it.
void partition_log::write_index_batch(segment& seg) noexcept {
  if (index_batch_ops_ > 0 || !seg.index_entries_unwritten()) return;
  const auto from = seg.index_entries_written();
  const segment::entries_written to{seg.index().size(), seg.times().size()};
  seg.mark_index_entries_written(to);
  index_batch_seg_ = &seg;
  // Both counted before either is issued: the sync backend completes inside write_at.
  index_batch_ops_ = 2;
  index_writes_ += 2;
  const auto write = [&](int fd, std::size_t entry_size, std::span<const std::byte> bytes, std::size_t at) {
    if (bytes.empty()) {
      index_batch_cb_.io_done(0);
    } else {
      io_.write_at(fd, static_cast<std::uint64_t>(at) * entry_size, bytes, &index_batch_cb_);
    }
  };
  write(seg.index_fd(), offset_entry_size, seg.index().bytes_of(from.offsets, to.offsets - from.offsets), from.offsets);
  write(seg.time_index_fd(), time_entry_size, seg.times().bytes_of(from.times, to.times - from.times), from.times);
}

void partition_log::write_indexes() noexcept {
  // Only the last two segments can have entries to write: a roll writes the sealed one's.
  const std::size_t n = segments_.size();
  for (std::size_t i = n >= 2 ? n - 2 : 0; i < n; ++i) write_index_batch(*segments_[i]);
}

void partition_log::index_batch::io_done(int) noexcept {
  // A failed index write leaves a stale index: recovery detects and rebuilds it.
  --log->index_writes_;
  if (--log->index_batch_ops_ > 0) return;
  log->index_batch_seg_ = nullptr;
  // Entries noted while it was in flight: another batch, only once enough gathered
  // (or a roll sealed their segment); tick() writes a quiet log's rest.
  const std::size_t n = log->segments_.size();
  if (n >= 2 && log->segments_[n - 2]->index_entries_unwritten()) {
    log->write_index_batch(*log->segments_[n - 2]);
    return;
  }
  segment& active = *log->segments_.back();
  if (active.index().size() - active.index_entries_written().offsets >= index_batch_entries) {
    log->write_index_batch(active);
  }
}

void partition_log::writeback::io_done(int) noexcept {
  // Only a head start for the disk: a failure shows, if it is real, in the fdatasync that seals the segment.
  --log->writebacks_;
}

// Written (in offset order) up to end_pos of the segment file fd.
void partition_log::note_written(int fd, std::uint64_t end_pos) noexcept {
  // `sync` fdatasyncs all the time already.
  if (opts_.writeback_bytes == 0 || opts_.level.level == durability::kind::sync) return;
  if (fd != writeback_fd_) {  // a new segment (or the first write since open)
    writeback_fd_ = fd;
    writeback_pos_ = 0;
  }
  // Whole pages only: the next append dirties the last, partial page again, and
  // starting its write now would write it twice (and may make that append wait on it).
  const std::uint64_t end = end_pos & ~std::uint64_t{4095};
  if (end < writeback_pos_ + opts_.writeback_bytes) return;
  ++writebacks_;
  io_.start_writeback(fd, writeback_pos_, end - writeback_pos_, &writeback_cb_);
  writeback_pos_ = end;
}

void partition_log::removal::io_done(int res) noexcept {
  log->removal_in_flight_ = false;
  // Gone already is what was asked for. On a real failure the file stays at the
  // front of the queue, so no later file goes before it (see doomed_).
  if (res < 0 && res != -ENOENT) {
    log->removal_failure_ = fmt::format("remove {}: {}; retried at the next retention pass",
                                        log->doomed_.front().string(), std::strerror(-res));
    return;
  }
  log->doomed_.pop_front();
  if (!log->starting_removals_) log->start_removals();
}

void partition_log::start_removals() noexcept {
  // A loop rather than recursion: a synchronous backend completes inside remove().
  starting_removals_ = true;
  while (!removal_in_flight_ && !doomed_.empty() && removal_failure_.empty()) {
    removal_in_flight_ = true;
    io_.remove(doomed_.front().c_str(), &removal_cb_);
  }
  starting_removals_ = false;
}

void partition_log::fail_log(int err, const char* what) noexcept {
  if (!failed_) {
    failed_ = true;
    failure_ = fmt::format("{}: {} failed: {}; the log accepts no more appends until it is reopened",
                           dir_.string(), what, std::strerror(err));
  }
}

// The base of the oldest segment that may hold data no completed fdatasync covers.
std::uint64_t partition_log::unsynced_from() const noexcept {
  std::uint64_t from = segments_.back()->base();
  for (const seal_sync& s : seals_) from = std::min(from, s.base);
  // `sync` seals nothing: its sync rounds cover every written segment, up to synced_next_.
  if (opts_.level.level == durability::kind::sync) {
    if (const segment* s = segment_for(synced_next_)) from = std::min(from, s->base());
  }
  return from;
}

void partition_log::store_recovery_point() noexcept {
  // After a failure seals are dropped unissued: what is synced is no longer known.
  if (failed_ || point_.in_flight || point_.fd < 0) return;
  const std::uint64_t from = unsynced_from();
  if (from <= point_.stored) return;
  point_.in_flight = true;
  point_.syncing = false;
  point_.writing = from;
  point_.bytes = encode_recovery_point(from);
  io_.write_at(point_.fd, 0, point_.bytes, &point_);  // may complete inside
}

void partition_log::point_write::io_done(int res) noexcept {
  if (res < 0) {
    // The file keeps an older point (or a torn one, read as none): safe, only
    // more to validate after a machine crash. Tried again at the next change.
    in_flight = false;
    return;
  }
  if (!syncing) {
    syncing = true;
    log->io_.datasync(fd, this);
    return;
  }
  in_flight = false;
  stored = writing;
  log->store_recovery_point();  // seals that completed meanwhile
}

void partition_log::start_sync() noexcept {
  if (!sync_due()) return;
  sync_in_flight_ = true;
  ++syncs_issued_;
  sync_target_ = written_next_;
  sync_.err = 0;
  const std::vector<int> fds = std::exchange(dirty_fds_, {});
  sync_.outstanding = static_cast<unsigned>(fds.size());
  for (const int fd : fds) io_.datasync(fd, &sync_);
}

void partition_log::request_sync() noexcept {
  if (sync_kick_.pending || !sync_due()) return;
  sync_kick_.pending = true;
  io_.defer(&sync_kick_);  // may call back inside (the sync backend)
}

void partition_log::sync_kick::io_done(int) noexcept {
  pending = false;
  if (!log->failed_) log->start_sync();
}

void partition_log::tick(std::int64_t now_ms) {
  write_indexes();
  if (opts_.level.level == durability::kind::interval && !failed_ &&
      now_ms - last_sync_ms_ >= static_cast<std::int64_t>(opts_.level.interval_ms) && written_next_ > synced_next_) {
    last_sync_ms_ = now_ms;
    start_sync();
  }
}

void partition_log::advance() noexcept {
  // Completions may arrive inside write_at/datasync (the sync backend) and user
  // callbacks may append again: run the state machine iteratively, never nested.
  if (advancing_) {
    advance_again_ = true;
    return;
  }
  advancing_ = true;
  do {
    advance_again_ = false;
    advance_once();
  } while (advance_again_);
  advancing_ = false;
}

void partition_log::advance_once() noexcept {
  // Written watermark: the longest prefix of pending appends whose write completed.
  for (const auto& p : pending_) {
    if (p.next <= written_next_) continue;
    if (p.st != pending_append::state::written) break;
    written_next_ = p.next;
    if (p.fd >= 0) note_written(p.fd, p.end_pos);
    // `none` never syncs, so it tracks nothing to sync.
    if (opts_.level.level != durability::kind::none && p.fd >= 0 &&
        std::find(dirty_fds_.begin(), dirty_fds_.end(), p.fd) == dirty_fds_.end()) {
      dirty_fds_.push_back(p.fd);
    }
  }
  start_seals();
  const bool sync_level = opts_.level.level == durability::kind::sync;
  if (sync_level && !failed_) request_sync();

  const std::uint64_t complete_below = sync_level ? synced_next_ : written_next_;
  while (!pending_.empty()) {
    pending_append& p = pending_.front();
    if (failed_) {
      // After a failure nothing more is acknowledged; wait for in-flight writes
      // to finish (their buffers are in use) before reporting them.
      if (p.st == pending_append::state::in_flight) break;
      const error e{errc::failed, failure_};
      append_callback* cb = p.cb;
      const std::uint64_t first = p.first;
      const std::uint32_t count = p.count;
      pending_.pop_front();
      if (cb != nullptr) cb->append_done(first, count, &e);
      continue;
    }
    if (p.next > complete_below) break;
    visible_next_ = p.next;
    visible_seg_base_ = p.seg_base;
    visible_pos_ = p.end_pos;
    append_callback* cb = p.cb;
    const std::uint64_t first = p.first;
    const std::uint32_t count = p.count;
    pending_.pop_front();
    if (cb != nullptr) cb->append_done(first, count, nullptr);
  }
  store_recovery_point();
}

std::uint64_t partition_log::visible_size(const segment& s) const noexcept {
  if (s.base() < visible_seg_base_) return s.size();
  if (s.base() == visible_seg_base_) return visible_pos_;
  return 0;
}

std::uint64_t partition_log::visible_next(const segment& s) const noexcept {
  return s.base() < visible_seg_base_ ? s.next_offset() : visible_next_;
}

const segment* partition_log::segment_for(std::uint64_t offset) const noexcept {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](std::uint64_t o, const std::unique_ptr<segment>& s) { return o < s->base(); });
  if (it == segments_.begin()) return nullptr;
  return std::prev(it)->get();
}

result<log_slice> partition_log::locate(std::uint64_t offset, std::uint64_t max_bytes, read_mode mode) const {
  if (offset < log_start() || offset > visible_next_) {
    return fail(errc::out_of_range, fmt::format("offset {} is outside [{}, {}]", offset, log_start(), visible_next_));
  }
  log_slice out;
  out.first_offset = offset;
  if (offset == visible_next_) return out;
  const segment* s = segment_for(offset);
  // A segment may end exactly at `offset` (empty active segment after a roll): move on.
  while (s != nullptr && offset >= visible_next(*s)) {
    s = segment_for(s->next_offset());
    if (s != nullptr && s->base() > offset) return out;
  }
  if (s == nullptr) return out;
  const std::uint64_t vsize = visible_size(*s);
  auto pos = s->position_of(offset, vsize, mode);
  if (!pos) return unexpected{pos.error()};
  out.fd = s->log_fd();
  out.position = *pos;
  const std::uint64_t limit = *pos + std::max<std::uint64_t>(max_bytes, 1);
  if (vsize <= limit) {
    out.bytes = vsize - *pos;
    out.last_offset = visible_next(*s) - 1;
    return out;
  }
  // Use an index entry inside the budget as the start of the walk when there is
  // one after the start; the first record always goes, so a reader moves on.
  const index_entry e = s->index().floor_position(static_cast<std::uint32_t>(std::min<std::uint64_t>(limit, 0xFFFFFFFFu)));
  const bool from_entry = e.pos > *pos;
  auto w = from_entry ? s->walk(e.pos, s->base() + e.rel, ~std::uint64_t{0}, limit, false, vsize, mode)
                      : s->walk(*pos, offset, ~std::uint64_t{0}, limit, true, vsize, mode);
  if (!w) return unexpected{w.error()};
  out.bytes = w->pos - *pos;
  out.last_offset = w->offset - 1;
  return out;
}

result<log_slice> partition_log::locate_records(std::uint64_t offset, std::uint32_t max_records,
                                                read_mode mode) const {
  if (offset < log_start() || offset > visible_next_) {
    return fail(errc::out_of_range, fmt::format("offset {} is outside [{}, {}]", offset, log_start(), visible_next_));
  }
  log_slice out;
  out.first_offset = offset;
  if (offset == visible_next_ || max_records == 0) return out;
  const segment* s = segment_for(offset);
  while (s != nullptr && offset >= visible_next(*s)) {
    s = segment_for(s->next_offset());
    if (s != nullptr && s->base() > offset) return out;
  }
  if (s == nullptr) return out;
  const std::uint64_t vsize = visible_size(*s);
  const std::uint64_t vnext = visible_next(*s);
  auto pos = s->position_of(offset, vsize, mode);
  if (!pos) return unexpected{pos.error()};
  const std::uint64_t end_offset = std::min<std::uint64_t>(offset + max_records, vnext);
  std::uint64_t end = vsize;
  if (end_offset < vnext) {
    auto e = s->position_of(end_offset, vsize, mode);
    if (!e) return unexpected{e.error()};
    end = *e;
  }
  out.fd = s->log_fd();
  out.position = *pos;
  out.bytes = end - *pos;
  out.last_offset = end_offset - 1;
  return out;
}

result<std::vector<std::byte>> partition_log::read_record(std::uint64_t offset, read_mode mode) const {
  auto slice = locate_records(offset, 1, mode);
  if (!slice) return unexpected{slice.error()};
  if (slice->bytes == 0) return fail(errc::out_of_range, fmt::format("offset {} is not readable yet", offset));
  const segment* seg = segment_for(offset);
  assert(seg != nullptr && seg->log_fd() == slice->fd);
  std::vector<std::byte> out(slice->bytes);
  auto n = seg->read_log(out.data(), out.size(), out.size(), slice->position, mode);
  if (!n) return unexpected{n.error()};
  return out;
}

result<std::uint64_t> partition_log::offset_for_timestamp(std::int64_t ts, read_mode mode) const {
  for (const auto& sp : segments_) {
    const segment& s = *sp;
    const std::uint64_t vsize = visible_size(s);
    if (vsize == 0 || s.max_ts() < ts) continue;
    const std::uint64_t start = s.base() + s.times().scan_start(ts);
    auto pos = s.position_of(start, vsize, mode);
    if (!pos) return unexpected{pos.error()};
    std::uint64_t p = *pos;
    while (p < vsize) {
      auto r = s.read_record_at(p, vsize, mode);
      if (!r) return unexpected{r.error()};
      if (r->timestamp >= ts) return r->offset;
      p += r->size;
    }
  }
  return visible_next_;
}

result<void> partition_log::verify() const {
  for (const auto& sp : segments_) {
    const segment& s = *sp;
    const scan_result r = s.scan_all();
    if (r.cut()) {
      return fail(errc::corrupt, fmt::format("{}: corrupt at byte {} (offset {}): {}", s.log_path().string(),
                                             r.batch_end.pos, r.batch_end.next_offset, r.cut_reason()));
    }
    if (r.next_offset != s.next_offset()) {
      return fail(errc::corrupt, fmt::format("{}: holds offsets up to {} but {} were expected",
                                             s.log_path().string(), r.next_offset, s.next_offset()));
    }
    for (const auto& e : s.index().entries()) {
      auto rec = s.read_record_at(e.pos, s.size());
      if (!rec || rec->offset != s.base() + e.rel) {
        return fail(errc::corrupt, fmt::format("{}: index entry (offset {}, byte {}) does not point at that record",
                                               s.log_path().string(), s.base() + e.rel, e.pos));
      }
    }
  }
  return {};
}

result<std::size_t> partition_log::apply_retention(std::int64_t now_ms) {
  if (!removal_failure_.empty()) {
    auto why = std::exchange(removal_failure_, {});
    start_removals();
    return fail(errc::io_error, std::move(why));
  }
  std::size_t removed = 0;
  // A quiet log's active segment would never age out (it is never deleted, and
  // it rolls by age only at the next append): once everything in it is written
  // and acknowledged, roll it when it is due by segment_ms or when all its
  // records are past retention_ms. It is deleted by a later call (once its
  // sealing sync, if any, is done), like any sealed segment.
  if (idle() && !failed_ && segments_.back()->size() > 0) {
    const segment& active = *segments_.back();
    const bool due_by_age = now_ms - active.created_ms() >= opts_.segment_ms;
    const bool expired = opts_.retention_ms >= 0 && active.max_ts() < now_ms - opts_.retention_ms;
    if (due_by_age || expired) {
      if (auto r = roll(now_ms); !r) return unexpected{r.error()};
      return removed;
    }
  }
  std::uint64_t total = size_bytes();
  while (segments_.size() > 1 && !sync_in_flight_) {
    segment& oldest = *segments_.front();
    if (&oldest == index_batch_seg_) break;  // a write in flight reads its index memory; the next call takes it
    const bool over_bytes = opts_.retention_bytes >= 0 && total > static_cast<std::uint64_t>(opts_.retention_bytes);
    const bool over_age = opts_.retention_ms >= 0 && oldest.max_ts() < now_ms - opts_.retention_ms;
    if (!over_bytes && !over_age) break;
    // Only whole, acknowledged, synced-or-not-waiting segments go.
    const int fd = oldest.log_fd();
    if (oldest.next_offset() > visible_next_ || std::find(dirty_fds_.begin(), dirty_fds_.end(), fd) != dirty_fds_.end() ||
        std::any_of(seals_.begin(), seals_.end(), [fd](const seal_sync& s) { return s.fd == fd; })) {
      break;
    }
    total -= oldest.size();
    for (auto& p : oldest.close_for_removal()) doomed_.push_back(std::move(p));
    segments_.pop_front();
    ++removed;
  }
  start_removals();
  return removed;
}

}  // namespace mcp::storage
