#pragma once
// Where a topic's partitions live: the part of METADATA_OK a shard-aware client
// needs. Producer and consumer fetch it from the broker's main port, then talk
// to each partition's owning shard on that shard's own port, so no request
// crosses cores inside the broker.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/client/client.h"

namespace mcp::client {

struct shard_endpoint {
  std::string host;
  std::uint16_t port = 0;
};

struct topic_route {
  std::uint32_t partitions = 0;
  std::uint32_t max_frame = 0;                 // from HELLO_OK: the largest frame the broker takes
  std::vector<std::uint32_t> shard_of;         // per partition: the owning shard
  // Per partition, as the answering shard knew them: only the owner knows a
  // partition's offsets, so after fetch_route these are reliable only once
  // fetch_offsets has asked the owners.
  std::vector<std::uint64_t> log_start;
  std::vector<std::uint64_t> log_end;          // the next offset to be written
  std::vector<shard_endpoint> shards;          // indexed by shard

  const shard_endpoint& owner(std::uint32_t partition) const { return shards[shard_of[partition]]; }
};

// Connects to `host:port`, says HELLO as `client_name` and asks METADATA for
// `topic`. UNKNOWN_TOPIC if the broker has no such topic; disconnected if it
// cannot be reached.
result<topic_route> fetch_route(const std::string& host, std::uint16_t port, std::string_view topic,
                                std::string_view client_name, int timeout_ms);

// Asks each shard that owns a partition of the topic (on its own port) for the
// log start and end of the partitions it owns, and stores them in `route`.
result<void> fetch_offsets(topic_route& route, std::string_view topic, std::string_view client_name, int timeout_ms);

// A connection to `shard`'s own port, after HELLO.
result<connection> connect_shard(const topic_route& route, std::uint32_t shard, std::string_view client_name,
                                 int timeout_ms);

}  // namespace mcp::client
