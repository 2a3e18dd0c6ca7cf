#include "storage/segment.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <vector>

#include "codec/byte_order.h"
#include "codec/frame_decoder.h"
#include "codec/record.h"
#include "codec/record_format.h"
#include "storage/log_format.h"

namespace mcp::storage {

namespace fs = std::filesystem;
using codec::load_le;

std::string segment_stem(std::uint64_t base_offset) { return fmt::format("{:020d}", base_offset); }

std::optional<std::uint64_t> parse_segment_name(std::string_view name, std::string_view suffix) {
  if (name.size() != base_offset_digits + suffix.size() || name.substr(base_offset_digits) != suffix) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  const char* b = name.data();
  const auto [end, ec] = std::from_chars(b, b + base_offset_digits, v);
  if (ec != std::errc() || end != b + base_offset_digits) return std::nullopt;
  return v;
}

namespace {

std::string errno_text(const fs::path& p, const char* what) {
  return fmt::format("{} {}: {}", what, p.string(), std::strerror(errno));
}

result<std::uint64_t> file_size(int fd, const fs::path& p) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(errc::io_error, errno_text(p, "fstat"));
  return static_cast<std::uint64_t>(st.st_size);
}

bool pread_all(int fd, std::byte* out, std::size_t n, std::uint64_t pos) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(pos + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

result<std::vector<std::byte>> read_whole(int fd, const fs::path& p) {
  auto size = file_size(fd, p);
  if (!size) return unexpected{size.error()};
  std::vector<std::byte> out(*size);
  if (!out.empty() && !pread_all(fd, out.data(), out.size(), 0)) return fail(errc::io_error, errno_text(p, "read"));
  return out;
}

// Bytes of a RECORD frame needed to read its header, offset and timestamp.
constexpr std::size_t record_peek = codec::header_size + codec::record_layout::timestamp_offset + 8;

scan_result scan_impl(int fd, std::uint64_t pos, std::uint64_t size, std::uint64_t expected,
                      std::int64_t max_ts_before, const record_fn& on_record) {
  scan_result r;
  r.end_pos = pos;
  r.next_offset = expected;
  r.max_ts = max_ts_before;
  r.batch_end = {pos, expected, max_ts_before, false};
  codec::decoder_options opts;
  opts.max_frame = 1u << 30;
  std::vector<std::byte> buf(1u << 20);
  while (r.end_pos < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - r.end_pos));
    if (!pread_all(fd, buf.data(), want, r.end_pos)) {
      r.clean = false;
      r.problem = fmt::format("read failed: {}", std::strerror(errno));
      return r;
    }
    r.bytes_read += want;
    std::span<const std::byte> rest(buf.data(), want);
    std::size_t used = 0;
    while (!rest.empty()) {
      const auto d = codec::parse_frame(rest, opts);
      if (d.status == codec::errc::need_more) break;
      if (d.status != codec::errc::ok) {
        r.clean = false;
        r.problem = fmt::format("bad frame: {}", codec::errc_name(d.status));
        return r;
      }
      const auto rec = d.frame.header.op == codec::opcode::record ? codec::decode_record(d.frame.body)
                                                                  : mcp::result<codec::record_view, codec::errc>(
                                                                        unexpected{codec::errc::malformed_body});
      if (!rec) {
        r.clean = false;
        r.problem = "not a valid RECORD frame";
        return r;
      }
      if (rec->offset != r.next_offset) {
        r.clean = false;
        r.problem = fmt::format("offset {} where {} was expected", rec->offset, r.next_offset);
        return r;
      }
      if (on_record) on_record(r.end_pos, *rec, r.max_ts);
      r.max_ts = r.records == 0 && max_ts_before == 0 ? rec->timestamp_ms : std::max(r.max_ts, rec->timestamp_ms);
      ++r.records;
      ++r.next_offset;
      r.end_pos += d.frame.bytes.size();
      if ((rec->attributes & codec::record_layout::attr_batch_continues) == 0) {
        r.batch_end = {r.end_pos, r.next_offset, r.max_ts, true};
      }
      used += d.frame.bytes.size();
      rest = rest.subspan(d.frame.bytes.size());
    }
    if (used == 0) {
      // A frame larger than the buffer, or a torn one at the end of the file.
      const auto d = codec::parse_frame(std::span<const std::byte>(buf.data(), want), opts);
      const std::uint64_t need_total = want + d.need;
      if (r.end_pos + need_total > size) {
        r.clean = false;
        r.problem = fmt::format("torn record: {} of {} bytes present", size - r.end_pos, need_total);
        return r;
      }
      buf.resize(static_cast<std::size_t>(need_total));
    }
  }
  return r;
}

// True if every byte of [pos, size) is zero.
result<bool> zeros_to_end(int fd, std::uint64_t pos, std::uint64_t size, const fs::path& p) {
  std::vector<std::byte> buf(1u << 20);
  while (pos < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - pos));
    if (!pread_all(fd, buf.data(), want, pos)) return fail(errc::io_error, errno_text(p, "read"));
    if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(want),
                    [](std::byte b) { return b != std::byte{0}; })) {
      return false;
    }
    pos += want;
  }
  return true;
}

result<int> open_file(const fs::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errno == ENOENT ? errc::not_found : errc::io_error, errno_text(p, "open"));
  return fd;
}

std::size_t index_capacity(const segment::options& o) {
  // One entry per interval of a full segment, plus slack for a last oversized batch.
  return static_cast<std::size_t>(o.max_bytes / std::max<std::uint64_t>(o.index_interval, 1) + 16);
}

}  // namespace

scan_result scan_log(int fd, std::uint64_t pos, std::uint64_t size, std::uint64_t expected_offset,
                     std::int64_t max_ts_before, const record_fn& on_record) {
  return scan_impl(fd, pos, size, expected_offset, max_ts_before, on_record);
}

std::string scan_result::cut_reason() const {
  if (!ends_inside_batch()) return problem;
  return fmt::format("records {}..{} are of a batch whose last record is missing{}", batch_end.next_offset,
                     next_offset - 1, clean ? "" : " (" + problem + ")");
}

result<bool> lost_page_at(int fd, std::uint64_t pos, std::uint64_t file_size, const fs::path& p) {
  constexpr std::uint64_t page = 4096;
  if (pos >= file_size) return false;
  // The bad record's own length, if it reached the disk, says which pages it
  // covers; otherwise look at its first two pages.
  std::uint64_t span = 2 * page;
  std::array<std::byte, codec::length_field_size> len{};
  if (::pread(fd, len.data(), len.size(), static_cast<off_t>(pos)) == static_cast<ssize_t>(len.size())) {
    const std::uint64_t frame = codec::length_field_size + codec::load_le<std::uint32_t>(len.data());
    if (frame > codec::length_field_size && frame <= file_size - pos) span = std::max(span, frame);
  }
  const std::uint64_t last = std::min(file_size, pos + span);
  std::array<std::byte, page> buf{};
  for (std::uint64_t at = pos; at < last;) {
    const std::uint64_t end = std::min(file_size, (at / page + 1) * page);
    const auto want = static_cast<std::size_t>(end - at);
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(at));
    if (n < 0) return fail(errc::io_error, errno_text(p, "read"));
    if (static_cast<std::size_t>(n) != want) return false;
    if (std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(want), [](std::byte b) { return b == std::byte{0}; })) {
      return true;
    }
    at = end;
  }
  return false;
}

result<bool> crash_like_tail(int fd, const scan_result& r, std::uint64_t file_size, const fs::path& p) {
  if (r.clean || r.problem.rfind("torn record", 0) == 0) return true;
  return zeros_to_end(fd, r.end_pos, file_size, p);
}

segment::segment(segment&& o) noexcept { *this = std::move(o); }

segment& segment::operator=(segment&& o) noexcept {
  if (this != &o) {
    close_fds();
    log_path_ = std::move(o.log_path_);
    idx_path_ = std::move(o.idx_path_);
    tix_path_ = std::move(o.tix_path_);
    log_fd_ = std::exchange(o.log_fd_, -1);
    idx_fd_ = std::exchange(o.idx_fd_, -1);
    tix_fd_ = std::exchange(o.tix_fd_, -1);
    base_ = o.base_;
    next_offset_ = o.next_offset_;
    size_ = o.size_;
    last_index_pos_ = o.last_index_pos_;
    max_ts_ = o.max_ts_;
    created_ms_ = o.created_ms_;
    index_interval_ = o.index_interval_;
    recovery_scanned_ = o.recovery_scanned_;
    cut_tail_ = std::move(o.cut_tail_);
    entries_written_ = o.entries_written_;
    index_ = std::move(o.index_);
    times_ = std::move(o.times_);
  }
  return *this;
}

segment::~segment() { close_fds(); }

void segment::close_fds() noexcept {
  for (int* fd : {&log_fd_, &idx_fd_, &tix_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

result<segment> segment::create(const fs::path& dir, std::uint64_t base, const options& opts, std::int64_t now_ms) {
  segment s;
  const std::string stem = segment_stem(base);
  s.log_path_ = dir / (stem + std::string(log_suffix));
  s.idx_path_ = dir / (stem + std::string(index_suffix));
  s.tix_path_ = dir / (stem + std::string(time_index_suffix));
  // O_TRUNC: a leftover file of that name can only be a torn roll that never held an acked record.
  auto lf = open_file(s.log_path_, O_RDWR | O_CREAT | O_TRUNC);
  if (!lf) return unexpected{lf.error()};
  s.log_fd_ = *lf;
  auto xf = open_file(s.idx_path_, O_RDWR | O_CREAT | O_TRUNC);
  if (!xf) return unexpected{xf.error()};
  s.idx_fd_ = *xf;
  auto tf = open_file(s.tix_path_, O_RDWR | O_CREAT | O_TRUNC);
  if (!tf) return unexpected{tf.error()};
  s.tix_fd_ = *tf;
  s.base_ = base;
  s.next_offset_ = base;
  s.created_ms_ = now_ms;
  s.index_interval_ = opts.index_interval;
  s.index_ = segment_index(index_capacity(opts));
  s.times_ = time_index(index_capacity(opts));
  return s;
}

result<segment> segment::open(const fs::path& dir, std::uint64_t base, const options& opts, bool active,
                              std::int64_t now_ms) {
  segment s;
  const std::string stem = segment_stem(base);
  s.log_path_ = dir / (stem + std::string(log_suffix));
  s.idx_path_ = dir / (stem + std::string(index_suffix));
  s.tix_path_ = dir / (stem + std::string(time_index_suffix));
  auto lf = open_file(s.log_path_, O_RDWR);
  if (!lf) return unexpected{lf.error()};
  s.log_fd_ = *lf;
  auto xf = open_file(s.idx_path_, O_RDWR | O_CREAT);
  if (!xf) return unexpected{xf.error()};
  s.idx_fd_ = *xf;
  auto tf = open_file(s.tix_path_, O_RDWR | O_CREAT);
  if (!tf) return unexpected{tf.error()};
  s.tix_fd_ = *tf;
  s.base_ = base;
  s.created_ms_ = now_ms;
  s.index_interval_ = opts.index_interval;
  const std::size_t cap = std::max(index_capacity(opts), std::size_t{16});

  auto size = file_size(s.log_fd_, s.log_path_);
  if (!size) return unexpected{size.error()};
  auto idx_bytes = read_whole(s.idx_fd_, s.idx_path_);
  if (!idx_bytes) return unexpected{idx_bytes.error()};
  auto tix_bytes = read_whole(s.tix_fd_, s.tix_path_);
  if (!tix_bytes) return unexpected{tix_bytes.error()};
  auto entries = segment_index::parse(*idx_bytes);
  auto times = time_index::parse(*tix_bytes);

  // Keep the prefix where both indexes agree and the entries point inside the
  // log at a record with the offset they claim. Anything else is stale.
  std::size_t n = std::min(entries.size(), times.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (entries[i].rel != times[i].rel || entries[i].pos >= *size) {
      n = i;
      break;
    }
  }
  while (n > 0) {
    auto rec = s.read_record_at(entries[n - 1].pos, *size);
    if (rec && rec->offset == base + entries[n - 1].rel) break;
    --n;
  }
  // Where a normal open starts trusting nothing: after a machine crash the scan
  // starts at byte 0, and a problem before this point is not a crash tail.
  const std::uint64_t tail_from = n > 0 ? entries[n - 1].pos : 0;
  if (opts.validate_all) n = 0;
  // Scan from the last trusted entry to the end of the file. A batch is stored
  // whole or not at all, so the log ends where the last whole batch does; if the
  // records after the entry never close a batch, the batch may have begun before
  // it: scan again from entries further back (1, 2, 4... of them), down to byte 0
  // if need be, which always starts a batch.
  struct found_entry {
    index_entry at;
    std::int64_t max_before;
  };
  std::vector<found_entry> found;
  scan_result scan;
  std::size_t from = n;  // entries[0, from) are kept; the scan starts at entries[from - 1]
  for (std::size_t back = 1;; back *= 2) {
    const index_entry start = from > 0 ? entries[from - 1] : index_entry{};
    const std::int64_t ts_before = from > 0 ? times[from - 1].max_ts : 0;
    found.clear();
    std::uint64_t last_index_pos = start.pos;
    scan = scan_impl(s.log_fd_, start.pos, *size, base + start.rel, ts_before,
                     [&](std::uint64_t pos, const codec::record_view& rec, std::int64_t max_before) {
                       if (pos - last_index_pos >= s.index_interval_ && pos > 0) {
                         found.push_back({{static_cast<std::uint32_t>(rec.offset - base), static_cast<std::uint32_t>(pos)},
                                          max_before});
                         last_index_pos = pos;
                       }
                     });
    s.recovery_scanned_ += scan.bytes_read;
    if (!scan.ends_inside_batch() || scan.batch_end.seen || start.pos == 0) break;
    from = from > back ? from - back : 0;
  }
  const auto& end = scan.batch_end;
  s.index_ = segment_index(std::max(cap, from + found.size() + 16));
  s.times_ = time_index(std::max(cap, from + found.size() + 16));
  for (std::size_t i = 0; i < from; ++i) {
    s.index_.append(entries[i]);
    s.times_.append(times[i]);
  }
  s.last_index_pos_ = from > 0 ? entries[from - 1].pos : 0;
  std::size_t added = 0;
  for (const auto& f : found) {
    if (f.at.pos >= end.pos) break;  // in the cut-off batch
    if (!s.index_.append(f.at)) break;
    s.times_.append({f.max_before, f.at.rel});
    s.last_index_pos_ = f.at.pos;
    ++added;
  }
  const bool index_changed = from != entries.size() || from != times.size() ||
                             idx_bytes->size() != entries.size() * offset_entry_size ||
                             tix_bytes->size() != times.size() * time_entry_size;
  if (scan.cut()) {
    const std::string problem = scan.cut_reason();
    // What a crash leaves: the file ends inside a record or a batch, or in zeros
    // (blocks allocated whose data never reached the disk); after a machine crash
    // also a lost page with records after it. A bad record with data after it is
    // damage, and is reported.
    const auto crash_tail = [&]() -> result<bool> {
      auto crash = crash_like_tail(s.log_fd_, scan, *size, s.log_path_);
      if (!crash || *crash || !opts.validate_all) return crash;
      return lost_page_at(s.log_fd_, scan.end_pos, *size, s.log_path_);
    };
    if (active && opts.validate_all && end.pos < tail_from) {
      const auto crash = crash_tail();
      if (!crash) return unexpected{crash.error()};
      if (!*crash) {
        return fail(errc::corrupt, fmt::format("{}: corrupt at byte {} (offset {}): {}", s.log_path_.string(),
                                               end.pos, end.next_offset, problem));
      }
    }
    if (!active) {
      const auto crash = crash_tail();
      if (!crash) return unexpected{crash.error()};
      if (!*crash) {
        return fail(errc::corrupt, fmt::format("{}: corrupt at byte {} (offset {}): {}", s.log_path_.string(),
                                               end.pos, end.next_offset, problem));
      }
      s.cut_tail_ = fmt::format("{}: at byte {} (offset {}): {}", s.log_path_.string(), end.pos, end.next_offset,
                                problem);
    } else {
      // A torn or corrupt tail of the active segment is the clean end of the log:
      // nothing past it was acknowledged as durable (acks go in log order, and a
      // batch is acked only whole).
      if (::ftruncate(s.log_fd_, static_cast<off_t>(end.pos)) != 0) {
        return fail(errc::io_error, errno_text(s.log_path_, "truncate"));
      }
      s.cut_tail_ = fmt::format("{}: cut at byte {} (offset {}): {}", s.log_path_.string(), end.pos, end.next_offset,
                                problem);
    }
  }
  s.size_ = end.pos;
  s.next_offset_ = end.next_offset;
  s.max_ts_ = end.max_ts;
  if (index_changed || added > 0) {
    if (auto w = s.rewrite_indexes(); !w) return unexpected{w.error()};
  }
  s.entries_written_ = {s.index_.size(), s.times_.size()};  // the files now hold exactly these
  return s;
}

result<void> segment::truncate_to_size() {
  if (::ftruncate(log_fd_, static_cast<off_t>(size_)) != 0) return fail(errc::io_error, errno_text(log_path_, "truncate"));
  if (::fdatasync(log_fd_) != 0) return fail(errc::io_error, errno_text(log_path_, "fdatasync"));
  cut_tail_.clear();
  return {};
}

std::uint64_t segment::reserve(std::uint64_t bytes, std::uint32_t count) noexcept {
  const std::uint64_t pos = size_;
  size_ += bytes;
  next_offset_ += count;
  return pos;
}

void segment::note_record(std::uint64_t offset, std::uint64_t pos, std::int64_t max_ts_before) noexcept {
  if (pos == 0 || pos - last_index_pos_ < index_interval_) return;
  if (index_.full() || times_.full()) return;
  const auto rel = static_cast<std::uint32_t>(offset - base_);
  if (!index_.append({rel, static_cast<std::uint32_t>(pos)})) return;
  times_.append({max_ts_before, rel});
  last_index_pos_ = pos;
}

result<segment::record_at> segment::header_at(const std::byte* b, std::uint64_t pos,
                                              std::uint64_t visible_size) const {
  if (load_le<std::uint16_t>(b + codec::magic_offset) != codec::magic ||
      static_cast<codec::opcode>(b[codec::opcode_offset]) != codec::opcode::record) {
    return fail(errc::corrupt, fmt::format("{}: no record header at byte {}", log_path_.string(), pos));
  }
  record_at r;
  r.size = codec::length_field_size + load_le<std::uint32_t>(b);
  r.offset = load_le<std::uint64_t>(b + codec::header_size + codec::record_layout::offset_offset);
  r.timestamp = load_le<std::int64_t>(b + codec::header_size + codec::record_layout::timestamp_offset);
  if (r.size < record_peek || pos + r.size > visible_size) {
    return fail(errc::corrupt, fmt::format("{}: record at byte {} runs past the end", log_path_.string(), pos));
  }
  return r;
}

result<std::size_t> segment::read_log(std::byte* out, std::size_t n, std::size_t at_least, std::uint64_t pos,
                                      read_mode mode) const {
  if (mode == read_mode::blocking) {
    if (!pread_all(log_fd_, out, n, pos)) return fail(errc::io_error, errno_text(log_path_, "read"));
    return n;
  }
  std::size_t done = 0;
  while (done < at_least) {
    iovec v{out + done, n - done};
    const ssize_t r = ::preadv2(log_fd_, &v, 1, static_cast<off_t>(pos + done), RWF_NOWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) {
      error e{errc::would_block, fmt::format("{}: bytes {}..{} are not in the page cache", log_path_.string(),
                                             pos + done, pos + n)};
      e.fd = log_fd_;
      e.position = pos + done;
      e.length = n - done;
      return unexpected{std::move(e)};
    }
    // A file system without RWF_NOWAIT for buffered reads: read as before.
    if (r < 0 && errno == EOPNOTSUPP) {
      if (!pread_all(log_fd_, out + done, n - done, pos + done)) return fail(errc::io_error, errno_text(log_path_, "read"));
      return n;
    }
    if (r <= 0) return fail(errc::io_error, errno_text(log_path_, "read"));
    done += static_cast<std::size_t>(r);
  }
  return done;
}

result<segment::record_at> segment::read_record_at(std::uint64_t pos, std::uint64_t visible_size,
                                                   read_mode mode) const {
  if (pos + record_peek > visible_size) {
    return fail(errc::corrupt, fmt::format("{}: no record at byte {}", log_path_.string(), pos));
  }
  std::byte b[record_peek];
  if (auto r = read_log(b, sizeof b, sizeof b, pos, mode); !r) return unexpected{r.error()};
  return header_at(b, pos, visible_size);
}

result<segment::walk_end> segment::walk(std::uint64_t pos, std::uint64_t offset, std::uint64_t stop_offset,
                                         std::uint64_t stop_pos, bool take_first, std::uint64_t visible_size,
                                         read_mode mode) const {
  // One pread brings the headers of every record in a chunk (an index interval
  // of 100-byte records is ~26 of them): a walk costs a syscall per chunk, not
  // per record. Only each record's first bytes are needed, so a record larger
  // than the chunk is skipped over, not read.
  constexpr std::size_t chunk = 16u << 10;
  std::byte buf[chunk];
  std::uint64_t buf_pos = 0, buf_len = 0;  // the file bytes [buf_pos, buf_pos + buf_len) are in buf
  bool first = true;
  while (offset < stop_offset && pos < visible_size) {
    if (pos + record_peek > visible_size) {
      return fail(errc::corrupt, fmt::format("{}: no record at byte {}", log_path_.string(), pos));
    }
    if (pos < buf_pos || pos + record_peek > buf_pos + buf_len) {
      buf_pos = pos;
      buf_len = std::min<std::uint64_t>(chunk, visible_size - pos);
      // In nowait mode what the page cache has is enough, as long as a header is in it.
      const auto got = read_log(buf, static_cast<std::size_t>(buf_len), record_peek, pos, mode);
      if (!got) return unexpected{got.error()};
      buf_len = *got;
    }
    const auto r = header_at(buf + (pos - buf_pos), pos, visible_size);
    if (!r) return unexpected{r.error()};
    if (r->offset != offset) {
      return fail(errc::corrupt, fmt::format("{}: record at byte {} has offset {}, expected {}", log_path_.string(),
                                             pos, r->offset, offset));
    }
    if (pos + r->size > stop_pos && !(first && take_first)) break;
    first = false;
    pos += r->size;
    ++offset;
  }
  return walk_end{pos, offset};
}

result<std::uint64_t> segment::position_of(std::uint64_t offset, std::uint64_t visible_size, read_mode mode) const {
  const index_entry e = index_.floor(static_cast<std::uint32_t>(offset - base_));
  // Walk at most one index interval of records (plus one oversized batch).
  auto w = walk(e.pos, base_ + e.rel, offset, ~std::uint64_t{0}, false, visible_size, mode);
  if (!w) return unexpected{w.error()};
  if (w->offset != offset) {
    return fail(errc::corrupt, fmt::format("{}: no record with offset {} before byte {}", log_path_.string(), offset,
                                           visible_size));
  }
  return w->pos;
}

scan_result segment::scan_all() const {
  return scan_impl(log_fd_, 0, size_, base_, 0, {});
}

result<void> segment::rewrite_indexes() {
  const auto idx = std::as_bytes(index_.entries());
  if (::ftruncate(idx_fd_, 0) != 0 || (!idx.empty() && ::pwrite(idx_fd_, idx.data(), idx.size(), 0) != static_cast<ssize_t>(idx.size()))) {
    return fail(errc::io_error, errno_text(idx_path_, "write"));
  }
  std::vector<std::byte> t;
  for (std::size_t i = 0; i < times_.size(); ++i) {
    const auto b = times_.bytes_of(i);
    t.insert(t.end(), b.begin(), b.end());
  }
  if (::ftruncate(tix_fd_, 0) != 0 || (!t.empty() && ::pwrite(tix_fd_, t.data(), t.size(), 0) != static_cast<ssize_t>(t.size()))) {
    return fail(errc::io_error, errno_text(tix_path_, "write"));
  }
  return {};
}

std::array<fs::path, 3> segment::close_for_removal() {
  close_fds();
  return {std::move(idx_path_), std::move(tix_path_), std::move(log_path_)};
}

}  // namespace mcp::storage
