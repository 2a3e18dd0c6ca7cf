#include "broker/shard_group.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "broker/log.h"
#include "broker/shard_router.h"
#include "codec/data_messages.h"
#include "storage/durable_dirs.h"
#include "storage/group_offsets.h"

namespace mcp::broker {

namespace fs = std::filesystem;
using codec::error_code;

namespace {

// Deleted topics on their way out (docs/operations.md "Deleting a topic").
fs::path trash_dir(const std::string& data_dir) { return fs::path(data_dir) / "trash"; }

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The marker handle_admin leaves when CREATE_TOPIC named no durability.
bool wants_default(const storage::topic_config& c) {
  return c.level.level == storage::durability::kind::sync && c.level.interval_ms == 0xFFFFFFFF;
}

}  // namespace

shard_group::shard_group(const broker_config& cfg, const io::ring_features& features) : cfg_(cfg) {
  auto d = storage::parse_durability(cfg.durability);
  if (!d) throw std::runtime_error(d.error().message);
  default_durability_ = *d;
  controller_event_ = ::eventfd(0, EFD_CLOEXEC);
  if (controller_event_ < 0) throw std::runtime_error("eventfd failed");
  for (unsigned i = 0; i < cfg.shards; ++i) {
    shards_.push_back(std::make_unique<shard>(i, cfg, features, *this));
    to_controller_.push_back(std::make_unique<spsc_queue<controller_message>>(1024));
  }
  for (auto& s : shards_) s->listen_shared();
  if (auto made = storage::create_directories_durably(cfg.data_dir); !made) throw std::runtime_error(made.error().message);
  auto marker = storage::run_marker::begin(cfg.data_dir);
  if (!marker) throw std::runtime_error(marker.error().message);
  marker_.emplace(std::move(*marker));
  after_machine_crash_ = marker_->previous() == storage::last_stop::machine_went_down;
  if (after_machine_crash_) {
    log(log_level::warn, "the previous run did not stop cleanly and the machine has restarted since (boot id "
                         "changed): writes not synced then may be lost out of order, so the newest segments of "
                         "every partition are validated in full");
  } else if (marker_->previous() == storage::last_stop::process_died) {
    log(log_level::warn, "the previous run did not stop cleanly (the process died); recovering the logs' tails");
  }
  auto offsets = storage::group_offsets_store::open(cfg.data_dir);
  if (!offsets) throw std::runtime_error(offsets.error().message);
  offsets_.emplace(std::move(*offsets));
  // Existing topics: open every partition log before serving (blocking is fine here).
  if (auto made = storage::create_directories_durably(fs::path(cfg.data_dir) / "topics"); !made) {
    throw std::runtime_error(made.error().message);
  }
  // Topics deleted before a crash, or whose removal failed, finish going now.
  const fs::path trash = trash_dir(cfg.data_dir);
  std::error_code ec;
  std::vector<fs::path> left;
  for (const auto& e : fs::directory_iterator(trash, ec)) left.push_back(e.path());
  for (const auto& p : left) {
    log(log_level::info, "removing {}, a topic deleted before the last stop", p.string());
    fs::remove_all(p, ec);
    if (ec) throw std::runtime_error(fmt::format("remove {}: {}", p.string(), ec.message()));
  }
  if (auto made = storage::create_directories_durably(trash); !made) throw std::runtime_error(made.error().message);
  for (const auto& name : storage::list_topics(cfg.data_dir)) {
    auto c = storage::load_topic_config(fs::path(cfg.data_dir) / "topics" / name / "meta");
    if (!c) throw std::runtime_error(c.error().message);
    announce(name, *c);
    topics_[name] = *c;
    log(log_level::info, "topic {}: {} partitions, durability {}", name, c->partitions, storage::to_string(c->level));
  }
}

shard_group::~shard_group() {
  if (controller_event_ >= 0) ::close(controller_event_);
}

std::unique_ptr<storage::partition_log> shard_group::open_log(const std::string& topic, std::uint32_t p,
                                                               const storage::topic_config& c, unsigned owner) {
  storage::log_options o;
  o.level = c.level;
  o.retention_bytes = c.retention_bytes;
  o.retention_ms = c.retention_ms;
  o.segment_bytes = static_cast<std::uint64_t>(c.segment_bytes);
  o.segment_ms = c.segment_ms;
  o.writeback_bytes = cfg_.writeback_bytes;
  o.after_machine_crash = after_machine_crash_;
  auto log = storage::partition_log::open(fs::path(cfg_.data_dir) / "topics" / topic / std::to_string(p), o,
                                          shards_[owner]->file_io(), wall_ms());
  if (!log) throw std::runtime_error(log.error().message);
  for (const auto& note : (*log)->recovery_notes()) broker::log(log_level::warn, "partition {}/{}: {}", topic, p, note);
  return std::move(*log);
}

// Opens the topic's partition logs and hands each shard its own, plus the config.
void shard_group::announce(const std::string& name, const storage::topic_config& c) {
  std::vector<topic_added> per_shard(shards_.size());
  for (unsigned i = 0; i < shards_.size(); ++i) {
    per_shard[i].name = name;
    per_shard[i].config = c;
  }
  for (std::uint32_t p = 0; p < c.partitions; ++p) {
    const unsigned owner = owner_shard(name, p, size());
    per_shard[owner].logs.emplace_back(p, open_log(name, p, c, owner));
    for (const auto& g : offsets_->groups()) {
      if (const auto o = offsets_->committed(g, name, p)) per_shard[owner].positions.push_back({g, name, p, *o});
    }
  }
  for (unsigned i = 0; i < shards_.size(); ++i) post_blocking(i, std::move(per_shard[i]));
}

void shard_group::post_blocking(unsigned shard, shard_message&& m) {
  // The controller may wait: it is not a shard.
  while (!shards_[shard]->post(size(), std::move(m))) std::this_thread::sleep_for(std::chrono::microseconds(100));
}

bool shard_group::post_to_controller(unsigned from_shard, controller_message&& m) {
  if (!to_controller_[from_shard]->try_push(std::move(m))) return false;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(controller_event_, &one, sizeof one);
  return true;
}

void shard_group::serve_admin(admin_request&& r) {
  auto reply = [&](error_code code, std::string msg) {
    post_blocking(r.from.shard, admin_reply{r.from.id, r.correlation, code, std::move(msg)});
  };
  if (!codec::is_valid_topic_name(r.name)) {
    return reply(error_code::invalid_argument,
                 fmt::format("topic name '{}' must be 1..249 characters of A-Z a-z 0-9 . _ -", r.name));
  }
  const fs::path dir = fs::path(cfg_.data_dir) / "topics" / r.name;
  if (r.what == admin_request::kind::create) {
    if (topics_.count(r.name) != 0) return reply(error_code::topic_exists, fmt::format("topic '{}' exists", r.name));
    if (topics_.size() >= cfg_.max_topics) {
      return reply(error_code::resource_exhausted, fmt::format("the broker holds its maximum of {} topics", cfg_.max_topics));
    }
    storage::topic_config c = r.config;
    if (wants_default(c)) c.level = default_durability_;
    if (auto v = storage::validate(c); !v) return reply(error_code::invalid_argument, v.error().message);
    // The topic's directory survives a crash as its meta file and logs do.
    if (auto d = storage::create_directories_durably(dir); !d) return reply(error_code::storage_error, d.error().message);
    if (auto w = storage::store_topic_config(dir / "meta", c); !w) return reply(error_code::storage_error, w.error().message);
    try {
      announce(r.name, c);
    } catch (const std::exception& e) {
      return reply(error_code::storage_error, e.what());
    }
    topics_[r.name] = c;
    log(log_level::info, "created topic {}: {} partitions, durability {}", r.name, c.partitions, storage::to_string(c.level));
    return reply(error_code::none, {});
  }
  if (topics_.erase(r.name) == 0) return reply(error_code::unknown_topic, fmt::format("no topic '{}'", r.name));
  for (unsigned i = 0; i < size(); ++i) post_blocking(i, topic_removed{r.name});
  // The files go only once every shard has drained its appends and closed its logs.
  wait_closed(r.name);
  // Atomic on disk: the directory moves out of topics/ in one rename (synced), so
  // a crash leaves the whole topic or none of it; what is under trash/ is removed
  // now, or at the next start.
  const fs::path doomed = trash_dir(cfg_.data_dir) / fmt::format("{}~{}", r.name, wall_ms());
  std::error_code ec;
  if (::rename(dir.c_str(), doomed.c_str()) == 0) {
    if (auto s = storage::sync_directory(dir.parent_path()); !s) log(log_level::warn, "{}", s.error().message);
    fs::remove_all(doomed, ec);
    if (ec) log(log_level::warn, "deleted topic {}: removing {}: {} (retried at the next start)", r.name, doomed.string(), ec.message());
  } else {
    log(log_level::warn, "deleted topic {}: moving it to {}: {}; removing it in place", r.name, doomed.string(),
        std::strerror(errno));
    fs::remove_all(dir, ec);
    if (ec) log(log_level::error, "deleted topic {}: removing {}: {}", r.name, dir.string(), ec.message());
  }
  segment_files_deleted();
  log(log_level::info, "deleted topic {}", r.name);
  reply(error_code::none, {});
}

void shard_group::wait_closed(const std::string& name) {
  unsigned closed = 0;
  while (closed < size()) {
    std::uint64_t v = 0;
    [[maybe_unused]] const auto n = ::read(controller_event_, &v, sizeof v);  // blocks until a shard posts
    for (auto& q : to_controller_) {
      while (auto m = q->try_pop()) {
        if (auto* c = std::get_if<topic_closed>(&*m); c != nullptr && c->name == name) {
          ++closed;
        } else if (auto* r = std::get_if<admin_request>(&*m)) {
          deferred_.push_back(std::move(*r));
        } else if (auto* gp = std::get_if<group_position>(&*m)) {
          store_position(*gp);
        }
      }
    }
  }
}

void shard_group::store_position(const group_position& p) {
  // A topic deleted meanwhile has no positions to keep.
  if (!topics_.contains(p.topic)) return;
  auto r = offsets_->set(p.group, p.topic, p.partition, p.offset);
  if (r) r = offsets_->flush(p.group);
  if (!r) {
    // Retried at every commit: logged once until it stops failing.
    if (store_failures_.failed(p.group, r.error().message)) {
      log(log_level::error, "group {}: {} (retried at every commit; "
          "repeats of this error are not logged until it stops)", p.group, r.error().message);
    }
    return;
  }
  if (const auto n = store_failures_.succeeded(p.group)) {
    log(log_level::warn, "group {}: positions stored again, after {} more failed attempt(s)", p.group, *n);
  }
}

// The shards have stopped (joined): their lease tables can be read from here.
void shard_group::store_final_positions() {
  for (auto& q : to_controller_) {
    while (auto m = q->try_pop()) {
      if (auto* gp = std::get_if<group_position>(&*m)) store_position(*gp);
    }
  }
  for (auto& s : shards_) {
    for (const auto& [name, t] : s->topics_) {
      for (const auto& [part, ps] : t.partitions) {
        for (const auto& [group, table] : ps.groups) store_position({group, name, part, table.committed()});
      }
    }
  }
}

int shard_group::run() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) throw std::runtime_error(fmt::format("signalfd failed: {}", std::strerror(errno)));
  for (auto& s : shards_) s->start();
  log(log_level::info, "listening on {}:{} with {} shards (shard ports {}..{}), data in {}", cfg_.listen_host,
      cfg_.listen_port, size(), port_of(0), port_of(size() - 1), cfg_.data_dir);
  for (;;) {
    pollfd fds[2] = {{controller_event_, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      [[maybe_unused]] const auto n = ::read(sfd, &si, sizeof si);
      log(log_level::info, "signal {}: draining", si.ssi_signo);
      break;
    }
    if (fds[0].revents & POLLIN) {
      std::uint64_t v = 0;
      [[maybe_unused]] const auto n = ::read(controller_event_, &v, sizeof v);
      for (auto& q : to_controller_) {
        while (auto m = q->try_pop()) {
          if (auto* r = std::get_if<admin_request>(&*m)) {
            deferred_.push_back(std::move(*r));
          } else if (auto* gp = std::get_if<group_position>(&*m)) {
            store_position(*gp);
          }
        }
      }
      while (!deferred_.empty()) {
        admin_request r = std::move(deferred_.front());
        deferred_.pop_front();
        serve_admin(std::move(r));
      }
    }
  }
  for (unsigned i = 0; i < size(); ++i) post_blocking(i, stop_serving{});
  for (auto& s : shards_) s->join();
  store_final_positions();
  ::close(sfd);
  // A clean stop promises the next start that nothing written can be lost out of
  // order: everything goes to the disk first, then the marker.
  const int dfd = ::open(cfg_.data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::syncfs(dfd) != 0) {
    log(log_level::warn, "syncing {} failed ({}): the next start recovers as after a crash", cfg_.data_dir,
        std::strerror(errno));
  } else if (auto e = marker_->end_clean(); !e) {
    log(log_level::warn, "{}: the next start recovers as after a crash", e.error().message);
  }
  if (dfd >= 0) ::close(dfd);
  log(log_level::info, "stopped cleanly");
  return 0;
}

}  // namespace mcp::broker
