#pragma once
// One client connection on a shard: its socket, frame decoder, and the ordered
// queue of what to send back. Everything that targets the socket goes through
// that queue with at most one send (or splice) in flight, because io_uring does
// not order independent requests on one socket.
//
// Lifetime: owned by its shard. A connection is destroyed only when no recv and
// no send of its own is in flight; appends in the storage layer refer to it by
// id, so one that closed meanwhile is simply not answered.

#include <cstdint>
#include <deque>
#include <vector>

#include "broker/io/ring.h"
#include "broker/messages.h"
#include "broker/owned_fd.h"
#include "codec/frame_decoder.h"

namespace mcp::broker {

class shard;

// A FETCH with the follow flag that this connection keeps open: the broker asks
// the partition's owner again with `next` (moved on to where each answer ended,
// broker/fetch_handler.cpp). At most one request of it is in flight. A windowed
// follow (codec::fetch_flag_windowed) also asks only while its window has bytes
// left: answers use the window up, WINDOW frames add to it. An answer's first
// record goes whole (as with max_bytes), so the window can go below zero by less
// than one record, a debt the next WINDOW pays.
struct follow {
  forwarded_fetch next;
  bool in_flight = false;  // its request is at the owner (or its answer on the way back)
  bool windowed = false;
  std::uint32_t max_bytes = 0;  // the FETCH's: no answer is larger (a windowed one may be smaller)
  std::int64_t window = 0;      // windowed: record bytes it may still send
};

struct out_chunk {
  enum class kind { bytes, file_copy, file_splice };
  kind k = kind::bytes;
  std::vector<std::byte> bytes;  // kind::bytes
  int fd = -1;                   // file kinds: the segment and the byte range to send
  owned_fd hold;                 // file kinds: `fd`, owned by this chunk (broker/owned_fd.h)
  std::uint64_t pos = 0;
  std::uint64_t len = 0;
  std::uint64_t sent = 0;
  bool read_done = false;
};

class connection {
 public:
  connection(shard& s, std::uint64_t conn_id, int sock, const codec::decoder_options& opts, std::int64_t now_ms)
      : recv_op(this), send_op(this), read_op(this), owner(s), id(conn_id), fd(sock), decoder(opts), last_activity_ms(now_ms) {}
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  struct op final : io::io_completion {
    explicit op(connection* c) : conn(c) {}
    connection* conn;
    void complete(int res, std::uint32_t flags) noexcept override;
  };
  op recv_op, send_op, read_op;

  shard& owner;
  const std::uint64_t id;
  const int fd;
  codec::frame_decoder decoder;
  std::int64_t last_activity_ms;
  bool hello_done = false;
  bool closing = false;
  bool draining = false;  // reads nothing more; still answers what is in flight
  bool paused = false;    // not read from: too much in flight (backpressure)
  bool broken = false;    // the peer is gone or stuck: queued output is dropped
  std::int64_t closing_since_ms = 0;
  bool recv_armed = false;
  bool send_in_flight = false;
  bool read_in_flight = false;
  std::deque<out_chunk> out;
  std::uint64_t out_bytes = 0;        // queued and not yet sent
  std::uint64_t appends_in_flight = 0;  // bytes of PUBLISH batches not yet acked
  // Zero-copy path: a pipe between the file and the socket, and what sits in it.
  int pipe_r = -1, pipe_w = -1;
  std::uint64_t in_pipe = 0;
  bool splice_to_pipe = false;  // which half of a file -> pipe -> socket step is in flight
  // Copy path: the shard's registered buffer this connection holds (-1: none),
  // how much the READ put in it and how much of that is sent.
  int copy_buf = -1;
  std::size_t copy_len = 0, copy_off = 0;
  bool waiting_copy_buf = false;  // in the shard's queue for a free buffer
  std::vector<follow> follows;
  // Correlations of follows ended (by a newer FETCH of their partition) while a
  // request of theirs was in flight: its answer is dropped when it comes back.
  std::vector<std::uint32_t> ended_follows;

  bool idle_io() const noexcept { return !recv_armed && !send_in_flight && !read_in_flight; }
};

}  // namespace mcp::broker
