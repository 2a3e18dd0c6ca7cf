#pragma once
// The shards of one broker process and the controller (the main thread) that
// does what must block: creating and deleting topics, opening partition logs.
// Shards reach each other and the controller only through this object's queues.

#include <sys/eventfd.h>

#include <deque>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/io/ring.h"
#include "broker/messages.h"
#include "broker/repeated_failure.h"
#include "broker/shard.h"
#include "broker/spsc_queue.h"
#include "storage/group_offsets.h"
#include "storage/run_marker.h"

namespace mcp::broker {

class shard_group {
 public:
  // Start-up: builds the shards (sockets bound) and loads existing topics. Throws.
  shard_group(const broker_config& cfg, const io::ring_features& features);
  ~shard_group();

  unsigned size() const noexcept { return static_cast<unsigned>(shards_.size()); }
  shard& at(unsigned i) noexcept { return *shards_[i]; }
  const broker_config& config() const noexcept { return cfg_; }
  std::uint16_t port_of(unsigned shard) const noexcept {
    return static_cast<std::uint16_t>(cfg_.listen_port + 1 + shard);
  }

  // Shard threads: hand an admin request to the controller. False if its queue is full.
  bool post_to_controller(unsigned from_shard, controller_message&& m);

  // Main thread: starts the shards and serves admin requests until SIGTERM/SIGINT,
  // then stops the shards (they finish in-flight appends) and joins them.
  int run();

 private:
  void serve_admin(admin_request&& r);
  void announce(const std::string& name, const storage::topic_config& c);
  void post_blocking(unsigned shard, shard_message&& m);
  void wait_closed(const std::string& name);
  void store_position(const group_position& p);
  void store_final_positions();
  std::unique_ptr<storage::partition_log> open_log(const std::string& topic, std::uint32_t p,
                                                   const storage::topic_config& c, unsigned owner);

  const broker_config& cfg_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::unique_ptr<spsc_queue<controller_message>>> to_controller_;
  std::deque<admin_request> deferred_;  // requests that came in while a delete waited for the shards
  int controller_event_ = -1;
  std::map<std::string, storage::topic_config> topics_;
  storage::durability default_durability_;
  std::optional<storage::group_offsets_store> offsets_;  // committed positions of consumer groups
  repeated_failure store_failures_;  // per group: a failing position store is logged once, not per commit
  // How the last run ended (storage/run_marker.h); removed at a clean stop.
  std::optional<storage::run_marker> marker_;
  bool after_machine_crash_ = false;
};

}  // namespace mcp::broker
