#pragma once
// One segment of a partition log: a .log file of RECORD frames with its offset
// index (.idx) and time index (.tix). A segment is *active* (the one appended to)
// or *sealed*. Thread: owned by one partition_log, used by one thread.
//
// Opening, creating, truncating and removing files are synchronous system calls:
// they happen when a log opens, when a segment rolls, and in retention — never
// per append. Appends and index writes go through the log's file_io.

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "codec/record.h"
#include "storage/errc.h"
#include "storage/segment_index.h"
#include "storage/time_index.h"

namespace mcp::storage {

// What a scan of a .log found: the valid prefix, and the first problem if any.
struct scan_result {
  std::uint64_t end_pos = 0;       // just past the last valid record
  std::uint64_t next_offset = 0;   // offset the next record would have
  std::int64_t max_ts = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes_read = 0;
  bool clean = true;               // false: bytes after end_pos are not a valid record
  std::string problem;             // what was wrong at end_pos
  // Where the last batch that is whole ends: just past the last record with the
  // batch-continues attribute clear, or the scan's start if none was. Records
  // between here and end_pos belong to a batch whose last record is missing.
  struct batch_end_at {
    std::uint64_t pos = 0;
    std::uint64_t next_offset = 0;
    std::int64_t max_ts = 0;
    bool seen = false;  // a record of this scan closed a batch
  } batch_end;
  bool ends_inside_batch() const noexcept { return batch_end.pos != end_pos; }
  // The log this scan read ends before the end of the file: at batch_end.
  bool cut() const noexcept { return !clean || ends_inside_batch(); }
  // What lies past batch_end, for messages (when cut()).
  std::string cut_reason() const;
};

class segment {
 public:
  struct options {
    std::uint64_t index_interval = 4096;  // bytes of log between index entries
    std::uint64_t max_bytes = 256u << 20;  // roll size: sizes the index capacity
    // After a machine crash (storage/run_marker.h): open() validates every
    // record from byte 0 instead of the tail after the last index entry, and a
    // page that never reached the disk (zeros from a record boundary to the end
    // of its 4 KiB page) ends the segment like a crash tail even with records
    // after it. Any other bad record before the tail normal opening scans is
    // reported (corrupt), in an active segment too.
    bool validate_all = false;
  };

  // Creates new, empty files for base offset `base` in `dir`.
  static result<segment> create(const std::filesystem::path& dir, std::uint64_t base, const options& opts,
                                std::int64_t now_ms);
  // Opens existing files. The segment ends where its last whole batch does. With
  // `active`, a torn or corrupt tail is truncated there. A sealed segment whose
  // tail is what a crash leaves (a batch or record cut short at the end of the
  // file, or zeros to the end) opens without its tail, unchanged on disk, and
  // says so in cut_tail(): the log decides (partition_log::open). Anything
  // else wrong in a sealed segment's tail is an error (corrupt). A missing or
  // stale index is rebuilt. The tail is scanned from the last valid index entry only.
  static result<segment> open(const std::filesystem::path& dir, std::uint64_t base, const options& opts,
                              bool active, std::int64_t now_ms);
  // What open() left out at the end, described (empty if nothing): in an active
  // segment it is truncated already; in a sealed one it is still in the file.
  const std::string& cut_tail() const noexcept { return cut_tail_; }
  // Cuts the file to size() (a crash tail left by open) and syncs it. Blocking.
  result<void> truncate_to_size();

  segment(segment&&) noexcept;
  segment& operator=(segment&&) noexcept;
  ~segment();

  std::uint64_t base() const noexcept { return base_; }
  std::uint64_t next_offset() const noexcept { return next_offset_; }  // appended (maybe not yet written)
  std::uint64_t size() const noexcept { return size_; }                // bytes appended
  std::int64_t max_ts() const noexcept { return max_ts_; }
  std::int64_t created_ms() const noexcept { return created_ms_; }
  int log_fd() const noexcept { return log_fd_; }
  int index_fd() const noexcept { return idx_fd_; }
  int time_index_fd() const noexcept { return tix_fd_; }
  const segment_index& index() const noexcept { return index_; }
  const time_index& times() const noexcept { return times_; }
  const std::filesystem::path& log_path() const noexcept { return log_path_; }
  std::uint64_t recovery_bytes_scanned() const noexcept { return recovery_scanned_; }

  // Reserves room for a run of `count` records of `bytes` bytes starting at offset
  // next_offset(): returns the file position to write them at.
  std::uint64_t reserve(std::uint64_t bytes, std::uint32_t count) noexcept;
  // Adds the index entries (offset and time) due at a record boundary, if any;
  // index_entries_written() says which are not on disk yet.
  void note_record(std::uint64_t offset, std::uint64_t pos, std::int64_t max_ts_before) noexcept;
  void note_timestamp(std::int64_t ts) noexcept { max_ts_ = std::max(max_ts_, ts); }
  std::uint64_t bytes_since_index() const noexcept { return size_ - last_index_pos_; }
  // How many entries of index() and times() were handed to the backend to write
  // so far. partition_log writes the ones past them in batches.
  struct entries_written {
    std::size_t offsets = 0;
    std::size_t times = 0;
  };
  entries_written index_entries_written() const noexcept { return entries_written_; }
  bool index_entries_unwritten() const noexcept {
    return entries_written_.offsets < index_.size() || entries_written_.times < times_.size();
  }
  void mark_index_entries_written(entries_written w) noexcept { entries_written_ = w; }

  // Finds the position of the record with `offset` (base <= offset < next written):
  // binary search in the index, then a forward walk over frame headers with pread.
  result<std::uint64_t> position_of(std::uint64_t offset, std::uint64_t visible_size,
                                    read_mode mode = read_mode::blocking) const;
  // Reads the header fields of the record at `pos`: frame size and offset.
  struct record_at {
    std::uint64_t size = 0;
    std::uint64_t offset = 0;
    std::int64_t timestamp = 0;
  };
  result<record_at> read_record_at(std::uint64_t pos, std::uint64_t visible_size,
                                   read_mode mode = read_mode::blocking) const;

  // Walks record headers forward from the record at `pos` (which has `offset`),
  // reading the file in chunks of several records per pread, and stops at the
  // first record that has offset `stop_offset`, or that would end past
  // `stop_pos` (unless it is the first and `take_first`), or at `visible_size`.
  // Returns where it stopped: the position and offset of that next record.
  // Checks each header (magic, opcode, size) and offset continuity.
  struct walk_end {
    std::uint64_t pos = 0;
    std::uint64_t offset = 0;
  };
  result<walk_end> walk(std::uint64_t pos, std::uint64_t offset, std::uint64_t stop_offset, std::uint64_t stop_pos,
                        bool take_first, std::uint64_t visible_size, read_mode mode = read_mode::blocking) const;

  // Validates every record of the file (CRC, layout, offset continuity) from the start.
  scan_result scan_all() const;
  // Writes the whole in-memory indexes to their files (used when sealing and at
  // recovery; synchronous).
  result<void> rewrite_indexes();
  // Closes the three files and returns their paths in the order they must be
  // deleted (retention): both indexes before the log, so a crash in between leaves
  // at worst a segment without its index, which opening rebuilds, never an index
  // without its segment. The segment is unusable afterwards. Never blocks: the
  // files are still linked, so closing frees nothing.
  std::array<std::filesystem::path, 3> close_for_removal();

  // Reads up to n bytes of the log at pos, at least `at_least` (<= n) of them; returns
  // how many. Fails with io_error, or in nowait mode with would_block naming the range.
  result<std::size_t> read_log(std::byte* out, std::size_t n, std::size_t at_least, std::uint64_t pos,
                               read_mode mode) const;

 private:
  segment() = default;
  void close_fds() noexcept;
  // Checks the header of the record whose first bytes (at least record_peek of
  // them) are at `b`, read from file position `pos`.
  result<record_at> header_at(const std::byte* b, std::uint64_t pos, std::uint64_t visible_size) const;

  std::filesystem::path log_path_, idx_path_, tix_path_;
  int log_fd_ = -1, idx_fd_ = -1, tix_fd_ = -1;
  std::uint64_t base_ = 0;
  std::uint64_t next_offset_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t last_index_pos_ = 0;
  std::int64_t max_ts_ = 0;
  std::int64_t created_ms_ = 0;
  std::uint64_t index_interval_ = 4096;
  std::uint64_t recovery_scanned_ = 0;
  std::string cut_tail_;
  entries_written entries_written_;
  segment_index index_{0};
  time_index times_{0};
};

// Called for each valid record a scan passes: its position, the decoded record
// (views valid during the call) and the largest timestamp before it.
using record_fn = std::function<void(std::uint64_t pos, const codec::record_view& rec, std::int64_t max_ts_before)>;

// Scans frames of `fd` from `pos` to `file_size`, expecting the first record to
// have `expected_offset`. Reads in chunks with pread; never writes.
scan_result scan_log(int fd, std::uint64_t pos, std::uint64_t file_size, std::uint64_t expected_offset,
                     std::int64_t max_ts_before, const record_fn& on_record = {});

// True if where a scan of a file of `file_size` bytes stopped is what a crash
// leaves: nothing (the scan was clean), a record cut short by the end of the
// file, or zeros from there to the end (blocks whose data never reached the disk).
// False for a bad record with data after it: damage. Reads the rest of the file
// in the zeros case.
result<bool> crash_like_tail(int fd, const scan_result& r, std::uint64_t file_size, const std::filesystem::path& p);

// True if a 4 KiB page that the bad record at `pos` covers is all zeros (from
// `pos` for the first, to the end of the file for the last): a page whose data
// never reached the disk, which only a machine crash leaves in the middle of a
// file. The pages are those of the record's length if it is readable, else its
// first two.
result<bool> lost_page_at(int fd, std::uint64_t pos, std::uint64_t file_size, const std::filesystem::path& p);

}  // namespace mcp::storage
