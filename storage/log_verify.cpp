#include "storage/log_verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "codec/byte_order.h"
#include "codec/frame_format.h"
#include "codec/record_format.h"
#include "storage/log_format.h"
#include "storage/recovery_point.h"
#include "storage/segment.h"
#include "storage/segment_index.h"
#include "storage/time_index.h"

namespace mcp::storage {

namespace fs = std::filesystem;

namespace {

std::vector<std::uint64_t> segment_bases(const fs::path& dir) {
  std::vector<std::uint64_t> bases;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (auto b = parse_segment_name(e.path().filename().string(), log_suffix)) bases.push_back(*b);
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::vector<std::byte> read_all(const fs::path& p) {
  std::vector<std::byte> out;
  fd_guard f{::open(p.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return out;
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return out;
  out.resize(static_cast<std::size_t>(st.st_size));
  if (!out.empty() && ::pread(f.fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  return out;
}

// Walks one partition: every segment scanned in full, `fn` per record.
verify_report walk(const fs::path& dir, const record_fn& fn, bool check_indexes) {
  verify_report rep;
  const auto bases = segment_bases(dir);
  std::uint64_t expected = bases.empty() ? 0 : bases.front();
  for (std::size_t i = 0; i < bases.size(); ++i) {
    const bool last = i + 1 == bases.size();
    const fs::path log = dir / (segment_stem(bases[i]) + std::string(log_suffix));
    if (bases[i] != expected) {
      rep.problem = fmt::format("{}: starts at offset {} but the previous segment ended before offset {}",
                                log.string(), bases[i], expected);
      return rep;
    }
    fd_guard f{::open(log.c_str(), O_RDONLY | O_CLOEXEC)};
    struct stat st {};
    if (f.fd < 0 || ::fstat(f.fd, &st) != 0) {
      rep.problem = fmt::format("{}: cannot read: {}", log.string(), std::strerror(errno));
      return rep;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> positions;  // (offset, pos) of every record
    const scan_result r = scan_log(f.fd, 0, size, bases[i], 0,
                                   [&](std::uint64_t pos, const codec::record_view& rec, std::int64_t ts) {
                                     if (check_indexes) positions.emplace_back(rec.offset, pos);
                                     if (fn) fn(pos, rec, ts);
                                   });
    ++rep.segments;
    rep.records += r.records;
    rep.bytes += r.end_pos;
    expected = r.next_offset;
    // The same rules as the broker's open (docs/storage.md "Recovery"): a tail a
    // crash can leave is a note of what the next open cuts; anything else is damage.
    const bool cut = r.cut();
    const auto crash = crash_like_tail(f.fd, r, size, log);
    if (!crash) {
      rep.problem = crash.error().message;
      return rep;
    }
    const std::string what = cut ? fmt::format("{}: at byte {} (offset {}): {}", log.string(), r.batch_end.pos,
                                               r.batch_end.next_offset, r.cut_reason())
                                 : std::string{};
    if (cut && !*crash) {
      rep.problem = what;
      return rep;
    }
    if (!last && (cut || r.next_offset < bases[i + 1])) {
      // A sealed segment a crash during a roll cut short: the log ends here.
      rep.torn_tail = fmt::format("{}; a crash during a roll: the next open cuts the log here and removes {} later "
                                  "segment(s)",
                                  cut ? what
                                      : fmt::format("{}: ends at offset {} but the next segment starts at {}",
                                                    log.string(), r.next_offset, bases[i + 1]),
                                  bases.size() - i - 1);
      return rep;
    }
    if (cut) rep.torn_tail = what;
    if (!check_indexes) continue;
    const auto idx_path = dir / (segment_stem(bases[i]) + std::string(index_suffix));
    const auto entries = segment_index::parse(read_all(idx_path));
    for (const auto& e : entries) {
      const auto want = std::make_pair(bases[i] + e.rel, std::uint64_t{e.pos});
      if (!std::binary_search(positions.begin(), positions.end(), want)) {
        rep.problem = fmt::format("{}: entry (offset {}, byte {}) does not point at that record", idx_path.string(),
                                  want.first, want.second);
        return rep;
      }
    }
    const auto tix_path = dir / (segment_stem(bases[i]) + std::string(time_index_suffix));
    const auto times = time_index::parse(read_all(tix_path));
    for (const auto& t : times) {
      const auto it = std::lower_bound(positions.begin(), positions.end(),
                                       std::make_pair(bases[i] + t.rel, std::uint64_t{0}));
      if (it == positions.end() || it->first != bases[i] + t.rel) {
        rep.problem = fmt::format("{}: entry for offset {} names no record", tix_path.string(), bases[i] + t.rel);
        return rep;
      }
    }
  }
  return rep;
}

}  // namespace

std::vector<fs::path> find_partitions(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!segment_bases(root).empty()) out.push_back(root);
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec) && !segment_bases(it->path()).empty()) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

verify_report verify_partition(const fs::path& dir) {
  verify_report rep = walk(dir, {}, true);
  const auto bases = segment_bases(dir);
  if (auto p = read_recovery_point(dir); !p) {
    rep.recovery_point = p.error().message;
  } else if (*p && !bases.empty() && **p > bases.back()) {
    rep.recovery_point = fmt::format("{}: names offset {}, past the last segment (base {})",
                                     (dir / recovery_point_name).string(), **p, bases.back());
  }
  return rep;
}

std::string for_each_record(const fs::path& dir, const std::function<void(const codec::record_view&)>& fn) {
  const auto rep = walk(dir, [&fn](std::uint64_t, const codec::record_view& rec, std::int64_t) { fn(rec); }, false);
  return rep.problem.empty() ? rep.torn_tail : rep.problem;
}

}  // namespace mcp::storage
