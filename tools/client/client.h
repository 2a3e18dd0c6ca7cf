#pragma once
// One blocking connection to a broker that speaks HELLO, topic admin, METADATA,
// PUBLISH (with ACK) and FETCH: the building block of producer and consumer
// (tools/client/producer.h, consumer.h), and what the tools use directly.
//
// Thread: a connection is used by one thread at a time.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/control.h"
#include "codec/data_messages.h"
#include "codec/errc.h"
#include "codec/frame_decoder.h"
#include "codec/record.h"
#include "codec/result.h"
#include "tools/client/byte_buffer.h"
#include "tools/client/errors.h"

namespace mcp::client {

// A frame read from the broker, owning its bytes.
struct owned_frame {
  codec::frame_header header;
  std::vector<std::byte> body;
};

// The answer to a FETCH: the RECORDS header and the records, decoded (views into `bytes`).
struct fetched {
  codec::records_body header;
  byte_buffer bytes;
  std::vector<codec::record_view> records;
};

class connection {
 public:
  static result<connection> connect(const std::string& host, std::uint16_t port, int timeout_ms = 5000);
  connection(connection&& o) noexcept;
  connection& operator=(connection&& o) noexcept;
  ~connection();

  result<fb::HelloOkT> hello(std::string_view client_name, std::uint8_t min_version = 1, std::uint8_t max_version = 1);
  result<void> create_topic(std::string_view name, std::uint32_t partitions,
                            fb::DurabilityKind durability = fb::DurabilityKind::Default, std::uint32_t interval_ms = 0,
                            std::int64_t retention_bytes = -1, std::int64_t retention_ms = -1);
  // Every setting of the topic (segment_bytes, segment_ms...); 0 / Default fields take the broker's defaults.
  result<void> create_topic(std::string_view name, const fb::TopicConfigT& config);
  result<void> delete_topic(std::string_view name);
  result<fb::MetadataReplyT> metadata(const std::vector<std::string>& topics = {});
  // Consumer groups: members, positions, leases and lag (docs/groups.md); empty name: every group.
  result<fb::GroupsReplyT> groups(std::string_view group = {});
  result<codec::ack_body> publish(std::string_view topic, std::uint32_t partition,
                                  std::span<const codec::record_input> records);
  // Sends a PUBLISH without waiting (pipelining); read_ack() collects the answers in order.
  result<std::uint32_t> send_publish(std::string_view topic, std::uint32_t partition,
                                     std::span<const codec::record_input> records);
  result<codec::ack_body> read_ack(std::uint32_t correlation);
  // The next ACK whatever its request: ACKs of different partitions on one
  // connection may come back in any order (each partition's in order). An ERROR
  // answering a request is returned as the error, with its correlation in `corr`.
  result<codec::ack_body> read_next_ack(std::uint32_t& corr);
  result<fetched> fetch(std::string_view topic, std::uint32_t partition, std::uint64_t offset,
                        std::uint32_t max_bytes = 1 << 20, std::uint32_t max_wait_ms = 0);
  // From the first record with timestamp >= `timestamp_ms` (header.first_offset says which).
  result<fetched> fetch_from_time(std::string_view topic, std::uint32_t partition, std::int64_t timestamp_ms,
                                  std::uint32_t max_bytes = 1 << 20, std::uint32_t max_wait_ms = 0);
  result<std::uint64_t> ping(std::uint64_t token);

  // Raw access for tests of malformed input.
  result<void> send_bytes(std::span<const std::byte> bytes);
  result<owned_frame> read_frame(int timeout_ms = 10000);
  // The next frame as a view, valid until the next read on this connection.
  result<codec::frame_view> next_frame(int timeout_ms = 10000);
  // Like next_frame, but running out of time is not an error: std::nullopt when no
  // whole frame has arrived within `timeout_ms` (0: only what is already here).
  // Lets one thread serve several connections with poll(2).
  result<std::optional<codec::frame_view>> try_next_frame(int timeout_ms = 0);
  // Reads the `byte_count` bytes of RECORD frames that follow a RECORDS or
  // DELIVERY header announcing `record_count` records, appending them to `out`
  // (nullptr: read and dropped). The bytes go straight from the socket into `out`
  // where they can; every frame is then checked once (frame checks, CRC, RECORD
  // opcode) and the run must end exactly at byte_count. Returns the last record's
  // offset (0 for an empty run). On error the stream is broken and `out` is as before.
  result<std::uint64_t> read_records(byte_buffer* out, std::uint32_t byte_count,
                                     std::uint32_t record_count, int timeout_ms = 10000);
  int fd() const noexcept { return fd_; }

 private:
  result<void> read_raw(std::span<std::byte> dst, int timeout_ms);
  explicit connection(int fd) : fd_(fd) {}
  result<owned_frame> expect(std::uint32_t correlation, codec::opcode op);
  result<fetched> fetch_impl(std::string_view topic, std::uint32_t partition, std::uint64_t offset,
                             std::uint32_t max_bytes, std::uint32_t max_wait_ms, std::uint16_t flags);
  std::uint32_t next_correlation() noexcept { return ++correlation_; }

  int fd_ = -1;
  std::uint32_t correlation_ = 0;
  codec::frame_decoder decoder_{codec::decoder_options{1u << 30, true}};
  std::vector<std::byte> inbuf_;
};

// The error of an ERROR frame body, or a description of an unexpected frame.
client_error error_from(const owned_frame& f);

}  // namespace mcp::client
