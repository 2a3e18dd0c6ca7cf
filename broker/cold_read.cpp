// Cold reads: a FETCH or a group delivery finds whole records by walking record
// headers (partition_log::locate), a group starting at a timestamp looks for its
// first record (offset_for_timestamp), and dead-lettering copies one record
// (read_record); all of them read the segment file. On the shard
// thread that walk is nowait (RWF_NOWAIT): when the bytes are not in the page
// cache it fails with would_block instead of waiting for the disk, and the
// range is read here through the ring, by an io-wq worker. When that read
// completes the request runs again; the shard serves everyone else meanwhile.

#include "broker/shard.h"

#include <algorithm>
#include <cstring>

#include "broker/log.h"

namespace mcp::broker {

bool shard::start_cold_read(const storage::error& e, std::optional<forwarded_fetch> fetch, std::string topic,
                            std::string group) {
  auto r = std::make_unique<cold_read>();
  r->fd = owned_fd::duplicate(e.fd);
  if (!r->fd.valid()) return false;
  r->s = this;
  // What the walk wanted (at most one 16 KiB chunk of headers); the kernel's
  // readahead brings the bytes after it as well.
  r->buf.resize(static_cast<std::size_t>(std::clamp<std::uint64_t>(e.length, 1, 1u << 20)));
  r->fetch = std::move(fetch);
  r->topic = std::move(topic);
  r->group = std::move(group);
  io_uring_sqe* sqe = ring_.get_sqe();
  io_uring_prep_read(sqe, r->fd.get(), r->buf.data(), static_cast<unsigned>(r->buf.size()), e.position);
  io_uring_sqe_set_data64(sqe, io::make_user_data(r.get()));
  log(log_level::debug, "cold read: {} bytes at {} before {}", r->buf.size(), e.position,
      r->fetch ? "a fetch" : "a group's delivery, start or dead letter");
  const cold_read* key = r.get();
  cold_reads_.emplace(key, std::move(r));
  return true;
}

void shard::cold_read::complete(int res, std::uint32_t) noexcept {
  shard* const sh = s;
  // Own it for the rest of this call: the retry below may start another cold read.
  const auto it = sh->cold_reads_.find(this);
  std::unique_ptr<cold_read> self = std::move(it->second);
  sh->cold_reads_.erase(it);
  // A failed read is not an answer: the retry reads again, and reports what it finds.
  if (res < 0) log(log_level::debug, "cold read of {} bytes failed: {}", buf.size(), std::strerror(-res));
  if (fetch) {
    ++fetch->cold_reads;
    sh->fetch_local(*fetch);
    return;
  }
  if (topic_state* t = sh->find_topic(topic)) sh->wake_group_waiters(*t, group);
}

}  // namespace mcp::broker
