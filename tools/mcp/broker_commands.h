#pragma once
// Commands that talk to a broker: topic admin, pub, sub. Each returns the exit
// code: 0 success, 1 the broker refused or failed (the reason on stderr).

#include <cstdint>
#include <optional>
#include <string>

#include "tools/client/broker_address.h"

namespace mcp::cli {

using client::broker_address;
using client::parse_broker;

struct topic_create_args {
  std::string name;
  std::uint32_t partitions = 1;
  std::string durability;  // empty: the broker's default
  std::int64_t retention_bytes = -1;
  std::int64_t retention_ms = -1;
  std::int64_t segment_bytes = 0;  // 0: the broker's default
  std::int64_t segment_ms = 0;     // 0: the broker's default
};
int topic_create(const broker_address& b, const topic_create_args& a);
int topic_list(const broker_address& b);
int topic_describe(const broker_address& b, const std::string& name);
int topic_delete(const broker_address& b, const std::string& name);

struct pub_args {
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::uint32_t> partition;
  std::string file;  // publish this file as one message instead of stdin lines
  bool acks = false;
};
int pub(const broker_address& b, const pub_args& a);

struct sub_args {
  std::string topic;
  std::optional<std::uint32_t> partition;
  std::string from = "earliest";  // earliest | latest | OFFSET | @TIMESTAMP_MS
  std::uint64_t count = 0;         // 0: no limit
  std::uint32_t timeout_ms = 5000; // exit after this long without a new message
  std::string format = "value";    // value | json
  std::string group;               // join this consumer group (acks each record after printing it)
};
int sub(const broker_address& b, const sub_args& a);

}  // namespace mcp::cli
