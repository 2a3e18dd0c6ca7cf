#pragma once
// What threads of the broker send each other through SPSC queues. Every message
// is moved, never shared: ownership of a partition log or a batch's bytes passes
// with it.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "codec/data_messages.h"
#include "broker/group_lease_table.h"
#include "broker/owned_fd.h"
#include "codec/control.h"
#include "codec/errc.h"
#include "storage/partition_log.h"
#include "storage/topic_config.h"

namespace mcp::broker {

// Identifies a connection across threads: the shard it lives on and its id there.
struct conn_ref {
  unsigned shard = 0;
  std::uint64_t id = 0;
};

// A group's committed position on one partition (groups/<group>/offsets).
struct group_position {
  std::string group;
  std::string topic;
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
};

// controller -> shard: a topic exists; the logs of the partitions this shard owns,
// and the committed positions of groups on them.
struct topic_added {
  std::string name;
  storage::topic_config config;
  std::vector<std::pair<std::uint32_t, std::unique_ptr<storage::partition_log>>> logs;
  std::vector<group_position> positions;
};

// controller -> shard: a topic is gone; the shard closes its logs of it.
struct topic_removed {
  std::string name;
};

// shard -> controller: a client asked to create or delete a topic.
struct admin_request {
  enum class kind { create, remove } what = kind::create;
  conn_ref from;
  std::uint32_t correlation = 0;
  std::string name;
  storage::topic_config config;
};

// shard -> controller: the shard has closed its logs of a removed topic.
struct topic_closed {
  std::string name;
};

using controller_message = std::variant<admin_request, topic_closed, group_position>;

// controller -> shard: the answer to send on that connection (code none: OK).
struct admin_reply {
  std::uint64_t conn = 0;
  std::uint32_t correlation = 0;
  codec::error_code code = codec::error_code::none;
  std::string message;
};

// shard -> owning shard: a PUBLISH that arrived elsewhere (validated there).
struct forwarded_publish {
  conn_ref from;
  std::uint32_t correlation = 0;
  std::string topic;
  std::uint32_t partition = 0;
  std::uint32_t count = 0;
  std::vector<std::byte> records;
};

// owning shard -> shard: what to answer a forwarded PUBLISH.
struct forwarded_ack {
  std::uint64_t conn = 0;
  std::uint32_t correlation = 0;
  codec::ack_body ack;
  codec::error_code code = codec::error_code::none;
  std::string message;
  std::uint64_t bytes = 0;  // size of the batch, for the connection's in-flight accounting
};

// shard -> owning shard: a FETCH that arrived elsewhere.
struct forwarded_fetch {
  conn_ref from;
  std::uint32_t correlation = 0;
  std::string topic;
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint32_t max_bytes = 0;
  std::uint32_t max_wait_ms = 0;
  bool by_timestamp = false;  // `offset` is a timestamp in ms: start at the first record at or after it
  std::uint8_t cold_reads = 0;  // times it waited for bytes to be read into the page cache (cold_read.cpp)
};

// owning shard -> shard: the slice to send for a forwarded FETCH, with its own
// duplicate of the segment's descriptor (retention may delete the segment meanwhile).
struct fetch_result {
  std::uint64_t conn = 0;
  std::uint32_t correlation = 0;
  codec::records_body header;
  owned_fd fd;
  std::uint64_t position = 0;
  // A small slice copied from the page cache (broker/cached_copy.h): room for the
  // RECORDS frame, then the records; `fd` is then not set.
  std::vector<std::byte> copied;
  codec::error_code code = codec::error_code::none;
  std::string message;
};

struct stop_serving {};

// --- consumer groups (docs/groups.md): a member lives on its connection's shard;
// each partition's lease table lives on the partition's owner.

// How a subscription asked the group to be set up (used by the SUBSCRIBE that
// creates a lease table; ignored afterwards).
struct group_setup {
  fb::StartPosition start = fb::StartPosition::Committed;
  std::int64_t start_timestamp_ms = 0;
  group_lease_table::settings settings;
};

// member's shard -> owner: lease up to `max` records of the partitions you own.
struct group_pull {
  member_id member;
  std::string topic;
  std::string group;
  group_setup setup;
  std::uint32_t max = 0;
};

// owner -> member's shard: what was leased (maybe nothing: the owner then sends
// group_ready when it has records again).
struct group_leases {
  struct slice {
    std::uint32_t partition = 0;
    std::uint64_t first = 0;
    std::uint32_t count = 0;
    std::uint16_t deliveries = 0;
    owned_fd fd;  // a duplicate of the segment's descriptor, unless `copied`
    std::uint64_t position = 0;
    std::uint64_t bytes = 0;
    // A small run copied from the page cache (broker/cached_copy.h): room for the
    // DELIVERY frame, then the records.
    std::vector<std::byte> copied;
  };
  member_id member;
  unsigned owner = 0;
  std::uint32_t asked = 0;
  std::vector<slice> slices;
};

// member's shard -> owner: the member acked these ranges of a partition.
struct group_commit {
  member_id member;
  std::string topic;
  std::string group;
  std::uint32_t partition = 0;
  std::vector<codec::offset_range> ranges;
};

// member's shard -> owner: the member NACKed a record.
struct group_nack {
  member_id member;
  std::string topic;
  std::string group;
  std::uint32_t partition = 0;
  std::uint64_t offset = 0;
  std::uint32_t delay_ms = 0;
  bool dead_letter = false;  // NACK with nack_flag_dead_letter: give up on it now
};

// member's shard -> every owner: the member is gone; release its leases.
struct group_leave {
  member_id member;
  std::string topic;
  std::string group;
};

// owner -> member's shard: `count` of the member's leases ended (acked, nacked, expired).
struct group_released {
  member_id member;
  std::uint32_t count = 0;
};

// owner -> member's shard: records are available again for the member's group.
struct group_ready {
  member_id member;
  unsigned owner = 0;
};

// --- scatter-gather of what each shard knows (METADATA offsets, GROUPS): the
// shard a request arrived on asks every shard, itself included, and answers once
// all have replied.
struct stats_request {
  unsigned from = 0;
  std::uint64_t query = 0;
  std::string group;  // GROUPS: empty = every group
  bool groups = false;  // a GROUPS query (else METADATA): also the age of each partition's oldest record
};

struct partition_stats {
  std::string topic;
  std::uint32_t partition = 0;
  std::uint64_t log_start = 0;
  std::uint64_t high_watermark = 0;
  std::uint64_t size_bytes = 0;
  std::int64_t oldest_age_ms = 0;  // GROUPS only: age of the record at log_start (0 when empty)
  std::string failure;             // the log's failure, empty while it accepts appends
};

struct group_partition_stats {
  std::string group;
  std::string topic;
  std::uint32_t partition = 0;
  std::uint64_t committed = 0;
  std::uint64_t cursor = 0;
  std::uint64_t high_watermark = 0;
  std::uint64_t leased = 0;
  std::uint64_t waiting = 0;
  std::uint64_t redeliveries = 0;
  std::uint64_t dead_lettered = 0;
  std::int64_t lag_ms = 0;
  bool active = false;  // the owner holds lease state for the group (else: a position only)
  group_lease_table::settings settings;
};

struct group_member_stats {
  std::string group;
  std::string topic;
  member_id member;
  std::uint64_t credit = 0;
  std::uint64_t in_flight = 0;
};

struct stats_reply {
  std::uint64_t query = 0;
  std::vector<partition_stats> partitions;
  std::vector<group_partition_stats> groups;
  std::vector<group_member_stats> members;
};

using shard_message = std::variant<topic_added, topic_removed, admin_reply, forwarded_publish, forwarded_ack,
                                   forwarded_fetch, fetch_result, stop_serving, group_pull, group_leases, group_commit,
                                   group_nack, group_leave, group_released, group_ready, stats_request,
                                   stats_reply>;

}  // namespace mcp::broker
