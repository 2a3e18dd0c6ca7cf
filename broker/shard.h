#pragma once
// A shard: one thread pinned to one core with its own io_uring, receive-buffer
// pool, connections and the partitions it owns. Shards share nothing mutable;
// they exchange shard_messages through SPSC queues (one per producer) and wake
// each other with an eventfd the shard keeps a read armed on.

#include <sys/eventfd.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/config.h"
#include "broker/connection.h"
#include "broker/io/buffer_pool.h"
#include "broker/io/fixed_buffers.h"
#include "broker/io/ring.h"
#include "broker/io/uring_file_io.h"
#include "broker/messages.h"
#include "broker/spsc_queue.h"
#include "storage/topic_config.h"

namespace mcp::broker {

class shard_group;

class shard {
 public:
  // Start-up (throws on failure): creates the ring, the pool and the listening sockets.
  shard(unsigned id, const broker_config& cfg, const io::ring_features& features, shard_group& group);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  unsigned id() const noexcept { return id_; }
  std::uint16_t shard_port() const noexcept { return shard_port_; }
  storage::file_io& file_io() noexcept { return file_io_; }

  // Binds the port all shards share (SO_REUSEPORT). Called once every shard has
  // bound its own port: those are not shared, so waiting for them to be free
  // waits out the sockets of a broker that just exited, which would otherwise
  // join the shared port's group and take connections nobody serves.
  void listen_shared();
  void start();
  void join();
  // Any thread: queues a message from producer `from` (shard id, or shards() for the
  // controller) and wakes the shard. False if that queue is full.
  bool post(unsigned from, shard_message&& m);
  // Queues without waking (the sender wakes once per loop turn: wake_peers).
  bool enqueue(unsigned from, shard_message&& m);
  void wake_by_eventfd();

  // Shard thread only, for connection ops.
  void on_recv(connection& c, int res, std::uint32_t flags) noexcept;
  void on_send(connection& c, int res) noexcept;
  void on_read(connection& c, int res) noexcept;

 private:
  struct partition_state {
    std::unique_ptr<storage::partition_log> log;
    struct waiter {
      conn_ref to;
      std::uint32_t correlation;
      std::uint64_t offset;
      std::uint32_t max_bytes;
      std::int64_t deadline_ms;
    };
    std::vector<waiter> waiters;
    // Consumer groups on this partition (owner side), and the positions last persisted.
    std::map<std::string, group_lease_table, std::less<>> groups;
    std::map<std::string, std::uint64_t, std::less<>> persisted;
    bool failure_logged = false;  // the log's failure went to the log once
  };
  // A group on a topic, owner side: the members that found nothing and wait for records.
  struct owner_group {
    std::vector<member_id> waiting;
    std::uint32_t next_partition = 0;  // where the next pull starts, so partitions take turns
  };
  struct topic_state {
    storage::topic_config config;
    std::map<std::uint32_t, partition_state> partitions;  // the ones this shard owns
    std::map<std::string, owner_group, std::less<>> groups;
  };
  // A group subscription of a connection on this shard (member side).
  struct subscription {
    std::uint64_t conn = 0;
    std::uint32_t id = 0;  // the SUBSCRIBE's correlation
    std::string topic;
    std::string group;
    group_setup setup;
    std::uint64_t credit = 0;       // records it may hold unacked
    std::uint64_t outstanding = 0;  // leased to it and not ended
    bool pulling = false;           // a group_pull is out (its `asked` is reserved)
    std::uint32_t asked = 0;
    std::vector<unsigned> owners;   // shards owning partitions of the topic
    std::vector<bool> empty;        // per owners[i]: had nothing at the last pull
    std::size_t next_owner = 0;
  };
  struct listener final : io::io_completion {
    shard* s = nullptr;
    int fd = -1;
    bool armed = false;  // a multishot accept is in the ring (it holds the socket open)
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  struct wakeup final : io::io_completion {
    shard* s = nullptr;
    std::uint64_t value = 0;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  // The CQE a peer's MSG_RING posts: nothing to do but return from the wait, after
  // which the loop drains the inbox.
  struct msg_wakeup final : io::io_completion {
    void complete(int, std::uint32_t) noexcept override {}
  };
  struct ticker final : io::io_completion {
    shard* s = nullptr;
    __kernel_timespec ts{};
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  class pending_append;
  // Bytes that a nowait locate found missing from the page cache, read through
  // the ring (an io-wq worker waits for the disk, not the shard); then the FETCH
  // that needed them runs again, or the group's waiting members pull again.
  struct cold_read final : io::io_completion {
    shard* s = nullptr;
    owned_fd fd;  // a duplicate: retention may close the segment's own meanwhile
    std::vector<std::byte> buf;
    std::optional<forwarded_fetch> fetch;
    std::string topic, group;  // without a fetch: whose waiting members to wake
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  // A FETCH gives up on nowait reads after this many cold reads and reads blocking.
  static constexpr std::uint8_t max_cold_reads = 3;

  void run();
  // thread_fd_closer of a shard thread (broker/owned_fd.h).
  static void close_in_ring(void* ctx, int fd) noexcept;
  void arm_accept(listener& l);
  void arm_recv(connection& c);
  void arm_wakeup();
  void arm_tick();
  void on_accept(int fd);
  void on_tick();
  // Deletes whole sealed segments beyond each topic's retention, once a second.
  void run_retention(std::int64_t now);
  void drain_inbox();
  void drain_controller();
  topic_state* find_topic(std::string_view name);
  void flush_outbox();
  void wake_peers();
  void send_to(unsigned shard, shard_message&& m);
  void handle(shard_message&& m);
  void handle_frame(connection& c, const codec::frame_view& f);
  void handle_hello(connection& c, const codec::frame_view& f);
  // METADATA and GROUPS gather what every shard knows (stats_handler.cpp).
  void handle_metadata(connection& c, const codec::frame_view& f);
  void handle_groups(connection& c, const codec::frame_view& f);
  void start_stats_query(connection& c, std::uint32_t correlation, codec::opcode kind, std::vector<std::string> topics,
                         std::string group);
  void serve_stats(const stats_request& r);
  void on_stats_reply(stats_reply&& r);
  void answer_metadata(connection& c, std::uint32_t correlation, const std::vector<std::string>& topics,
                       const std::vector<partition_stats>& parts);
  void answer_groups(connection& c, std::uint32_t correlation, const stats_reply& all);
  void handle_admin(connection& c, const codec::frame_view& f);
  void handle_publish(connection& c, const codec::frame_view& f);
  void handle_fetch(connection& c, const codec::frame_view& f);
  void handle_window(connection& c, const codec::frame_view& f);
  void append_local(conn_ref from, std::uint32_t correlation, const std::string& topic, std::uint32_t partition,
                    std::uint32_t count, std::vector<std::byte>&& records);
  void fetch_local(const forwarded_fetch& req);
  void report_log_failure(const std::string& topic, std::uint32_t partition, partition_state& ps);
  // Reads the range of a would_block error through the ring, then retries `fetch`
  // or wakes the group's waiters. False if it cannot (out of descriptors).
  std::int64_t lag_ms_at(const storage::partition_log& log, std::uint64_t committed, std::int64_t now);
  bool start_cold_read(const storage::error& e, std::optional<forwarded_fetch> fetch, std::string topic,
                       std::string group);
  // Consumer groups: member side (group_member.cpp) and owner side (group_owner.cpp).
  void handle_subscribe(connection& c, const codec::frame_view& f);
  void handle_credit(connection& c, const codec::frame_view& f);
  void handle_commit(connection& c, const codec::frame_view& f);
  void handle_nack(connection& c, const codec::frame_view& f);
  void maybe_pull(subscription& s);
  void on_leases(group_leases&& l);
  void on_released(const group_released& r);
  void on_ready(const group_ready& r);
  void end_subscriptions(connection& c);
  void to_owner(unsigned owner, shard_message&& m);
  void to_member(const member_id& m, shard_message&& msg);
  void owner_pull(group_pull&& p);
  void owner_commit(const group_commit& c);
  void owner_nack(const group_nack& n);
  void owner_leave(const group_leave& l);
  // The group's lease table of a partition this shard owns, or null.
  group_lease_table* find_lease_table(topic_state& t, std::uint32_t partition, std::string_view group);
  // The same, made from `setup` if missing. Null if the partition is not here, or
  // while a group starting at a timestamp waits for a ring read to find its start
  // (its members pull again then).
  group_lease_table* make_lease_table(topic_state& t, std::string_view topic, std::uint32_t partition,
                                      std::string_view group, const group_setup& setup);
  void end_leases(const std::string& topic, std::uint32_t partition, group_lease_table& table,
                  std::string_view group, std::vector<group_lease_table::released>&& ended, const char* reason);
  void dead_letter(const std::string& topic, std::uint32_t partition, group_lease_table& table,
                   std::string_view group, const group_lease_table::released& r, const char* reason);
  void wake_group_waiters(topic_state& t, std::string_view group);
  void groups_tick(std::int64_t now);
  void retry_dead_letters(std::int64_t now);
  void wake_waiters(const std::string& topic, partition_state& p, std::uint32_t partition);
  void deliver_fetch(fetch_result&& r);
  void send_records(connection& c, fetch_result&& r);
  // A header frame (`body` sealed with `op`) and the run of `bytes` record bytes that
  // follows it: one send when the run was copied from the page cache (`copied`,
  // broker/cached_copy.h, with room for the header frame at its front), else the
  // header and then the file range of `fd` (zero-copy or copy delivery).
  void send_run(connection& c, codec::opcode op, std::uint32_t correlation, std::span<const std::byte> body,
                std::vector<std::byte>&& copied, owned_fd&& fd, std::uint64_t position, std::uint64_t bytes);
  void route_fetch(forwarded_fetch&& req);
  void end_follow(connection& c, std::string_view topic, std::uint32_t partition);
  void resume_follows(connection& c);
  void deliver_ack(const forwarded_ack& a);
  void send_error(connection& c, std::uint32_t correlation, codec::error_code code, std::string_view text);
  void send_frame(connection& c, std::vector<std::byte>&& frame);
  void apply_backpressure(connection& c);
  void queue(connection& c, out_chunk&& chunk);
  void pump(connection& c);
  void close_connection(connection& c, const char* why);
  void maybe_destroy(connection& c);
  void release_copy_buffer(connection& c);
  connection* find(std::uint64_t id) noexcept;
  std::int64_t now_ms() const noexcept;

  const unsigned id_;
  const broker_config& cfg_;
  shard_group& group_;
  io::ring ring_;
  io::buffer_pool pool_;
  io::uring_file_io file_io_;
  std::optional<io::fixed_buffers> copy_bufs_;  // --delivery copy only
  std::deque<std::uint64_t> copy_waiters_;      // connections waiting for one of them
  codec::decoder_options decoder_opts_;
  listener main_listener_, shard_listener_;
  wakeup wakeup_;
  msg_wakeup msg_wake_;
  std::vector<bool> wake_pending_;
  bool use_msg_ring_ = false;
  ticker ticker_;
  int event_fd_ = -1;
  std::uint16_t shard_port_ = 0;
  std::vector<std::unique_ptr<spsc_queue<shard_message>>> inbox_;  // one per producer
  std::vector<std::deque<shard_message>> outbox_;                  // per destination, when its queue is full
  std::unordered_map<std::uint64_t, std::unique_ptr<connection>> conns_;
  std::map<std::string, topic_state, std::less<>> topics_;
  std::map<std::pair<std::uint64_t, std::uint32_t>, subscription> subs_;  // (conn, subscription id)
  std::int64_t last_position_flush_ms_ = 0;
  std::unordered_map<const cold_read*, std::unique_ptr<cold_read>> cold_reads_;  // in flight
  // Dead letters waiting for their dead-letter topic to exist (its creation is in flight).
  struct pending_dead_letter {
    std::string topic;
    std::uint32_t partition = 0;
    std::string group;
    group_lease_table::released record;
    const char* reason = "";
  };
  std::vector<pending_dead_letter> pending_dead_;
  struct pending_stats {
    std::uint64_t conn = 0;
    std::uint32_t correlation = 0;
    codec::opcode kind = codec::opcode::metadata;
    std::vector<std::string> topics;
    unsigned waiting_for = 0;
    stats_reply gathered;
  };
  std::map<std::uint64_t, pending_stats> pending_stats_;
  std::uint64_t next_query_ = 1;
  std::int64_t last_dlq_create_ms_ = 0;
  std::int64_t next_retention_ms_ = 0;
  std::uint64_t next_conn_id_ = 1;
  bool stopping_ = false;
  std::vector<std::uint64_t> follows_ready_;  // connections whose follows resume_follows is to ask again
  bool resuming_follows_ = false;
  std::int64_t stop_deadline_ms_ = 0;
  std::thread thread_;
  friend class shard_group;
};

}  // namespace mcp::broker
