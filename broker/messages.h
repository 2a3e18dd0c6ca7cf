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
#include "codec/errc.h"
#include "storage/partition_log.h"
#include "storage/topic_config.h"

namespace mcp::broker {

// Identifies a connection across threads: the shard it lives on and its id there.
struct conn_ref {
  unsigned shard = 0;
  std::uint64_t id = 0;
};

// controller -> shard: a topic exists; the logs of the partitions this shard owns.
struct topic_added {
  std::string name;
  storage::topic_config config;
  std::vector<std::pair<std::uint32_t, std::unique_ptr<storage::partition_log>>> logs;
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

using controller_message = std::variant<admin_request, topic_closed>;

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
};

// owning shard -> shard: the slice to send for a forwarded FETCH (the fd stays
// open: segments are deleted only by retention, which the broker does not run yet).
struct fetch_result {
  std::uint64_t conn = 0;
  std::uint32_t correlation = 0;
  codec::records_body header;
  int fd = -1;
  std::uint64_t position = 0;
  codec::error_code code = codec::error_code::none;
  std::string message;
};

struct stop_serving {};

using shard_message = std::variant<topic_added, topic_removed, admin_reply, forwarded_publish, forwarded_ack,
                                   forwarded_fetch, fetch_result, stop_serving>;

}  // namespace mcp::broker
