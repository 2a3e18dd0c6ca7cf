// PUBLISH: validate the whole batch, append it to the owning shard's partition log
// (forwarding it there if needed), and ACK once it is as durable as the topic asks.

#include "broker/shard.h"

#include <fmt/format.h>

#include "broker/log.h"
#include "broker/shard_group.h"
#include "broker/shard_router.h"
#include "codec/control.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

namespace mcp::broker {

using codec::error_code;
using codec::opcode;

void shard::handle_publish(connection& c, const codec::frame_view& f) {
  const auto p = codec::decode_publish(f.body);
  if (!p) return send_error(c, f.header.correlation, error_code::malformed_body, "PUBLISH body is malformed");
  topic_state* t = find_topic(p->header.topic);
  if (t == nullptr) {
    return send_error(c, f.header.correlation, error_code::unknown_topic,
                      fmt::format("no topic '{}'", p->header.topic));
  }
  if (p->header.partition >= t->config.partitions) {
    return send_error(c, f.header.correlation, error_code::unknown_partition,
                      fmt::format("topic '{}' has partitions 0..{}", p->header.topic, t->config.partitions - 1));
  }
  // Validate every record before anything touches a log.
  const auto run = codec::validate_records(p->records, decoder_opts_);
  if (!run || run->count != p->header.record_count) {
    return send_error(c, f.header.correlation, error_code::malformed_body,
                      run ? fmt::format("record_count says {} but {} records follow", p->header.record_count, run->count)
                          : fmt::format("a record in the batch is invalid: {}", codec::errc_name(run.error())));
  }
  if (run->producer_id != 0 && !run->one_producer_run) {
    return send_error(c, f.header.correlation, error_code::malformed_body,
                      "an idempotent batch must carry one producer id with consecutive sequences");
  }
  // One copy per batch (not per record): the receive buffer goes back to the
  // kernel now, and the batch's own buffer lives until its append completes.
  std::vector<std::byte> records(p->records.begin(), p->records.end());
  c.appends_in_flight += records.size();
  const unsigned owner = owner_shard(p->header.topic, p->header.partition, group_.size());
  if (owner == id_) {
    append_local({id_, c.id}, f.header.correlation, std::string(p->header.topic), p->header.partition,
                 p->header.record_count, std::move(records));
  } else {
    send_to(owner, forwarded_publish{{id_, c.id}, f.header.correlation, std::string(p->header.topic),
                                     p->header.partition, p->header.record_count, std::move(records)});
  }
}

// Completion of one append: owns the batch bytes until the log is done with them.
class shard::pending_append final : public storage::append_callback {
 public:
  pending_append(shard& s, conn_ref to, std::uint32_t corr, std::string topic, std::uint32_t partition,
              std::vector<std::byte>&& bytes)
      : s_(s), to_(to), corr_(corr), topic_(std::move(topic)), partition_(partition), bytes_(std::move(bytes)) {}
  std::vector<std::byte>& bytes() noexcept { return bytes_; }
  // The batch was stored before at `first` (`count` records): this completion is
  // a barrier's, and the ACK carries the original offsets and the duplicate flag.
  void mark_duplicate(std::uint64_t first, std::uint32_t count) noexcept {
    duplicate_ = true;
    dup_first_ = first;
    dup_count_ = count;
  }
  void append_done(std::uint64_t first, std::uint32_t count, const storage::error* err) noexcept override {
    forwarded_ack a;
    a.conn = to_.id;
    a.correlation = corr_;
    a.ack = duplicate_ ? codec::ack_body{dup_first_, dup_count_, partition_, 0, codec::ack_flag_duplicate}
                       : codec::ack_body{first, count, partition_, 0, 0};
    if (err != nullptr) {
      a.code = error_code::storage_error;
      a.message = err->message;
    }
    a.ack.error = static_cast<std::uint16_t>(a.code);
    a.bytes = bytes_.size();
    shard& s = s_;
    const conn_ref to = to_;
    const std::string topic = topic_;
    const std::uint32_t partition = partition_;
    delete this;  // the log is done with the bytes
    if (to.shard == s.id_) {
      s.deliver_ack(a);
    } else {
      s.send_to(to.shard, std::move(a));
    }
    auto t = s.topics_.find(topic);
    if (t == s.topics_.end()) return;
    auto p = t->second.partitions.find(partition);
    if (p == t->second.partitions.end()) return;
    if (err == nullptr) {
      s.wake_waiters(topic, p->second, partition);
    } else {
      s.report_log_failure(topic, partition, p->second);
    }
  }

 private:
  shard& s_;
  conn_ref to_;
  std::uint32_t corr_;
  std::string topic_;
  std::uint32_t partition_;
  std::vector<std::byte> bytes_;
  bool duplicate_ = false;
  std::uint64_t dup_first_ = 0;
  std::uint32_t dup_count_ = 0;
};

void shard::append_local(conn_ref from, std::uint32_t correlation, const std::string& topic, std::uint32_t partition,
                         std::uint32_t count, std::vector<std::byte>&& records) {
  const std::size_t batch_bytes = records.size();
  auto fail = [&](error_code code, std::string msg) {
    forwarded_ack a{from.id, correlation, {0, count, partition, static_cast<std::uint16_t>(code), 0}, code, std::move(msg),
                    batch_bytes};
    if (from.shard == id_) {
      deliver_ack(a);
    } else {
      send_to(from.shard, std::move(a));
    }
  };
  topic_state* t = find_topic(topic);
  if (t == nullptr) return fail(error_code::unknown_topic, fmt::format("no topic '{}'", topic));
  const auto p = t->partitions.find(partition);
  if (p == t->partitions.end()) return fail(error_code::unknown_partition, "partition not on this shard");
  storage::partition_log& log = *p->second.log;
  // Idempotent producers: a resent batch is answered, not stored again (docs/storage.md).
  const std::uint64_t producer = records.size() >= codec::header_size ? codec::record_producer_id(records) : 0;
  if (producer != 0) {
    const std::uint32_t seq = codec::record_sequence(records);
    const auto d = log.producers().check(producer, seq, count);
    using v = storage::producer_state::verdict;
    if (d.what == v::duplicate_unknown) {
      return fail(error_code::duplicate_sequence,
                  fmt::format("records {}..{} of producer {:#x} were stored before, further back than this partition "
                              "remembers",
                              seq, seq + count - 1, producer));
    }
    if (d.what == v::out_of_order) {
      return fail(error_code::out_of_order_sequence,
                  fmt::format("producer {:#x} sent sequence {} but the partition expects the one after its last "
                              "stored record",
                              producer, seq));
    }
    if (d.what == v::duplicate) {
      // Answer only once the original is as durable as the level asks: a barrier
      // behind every append in flight.
      auto* dup = new pending_append(*this, from, correlation, topic, partition, std::move(records));
      dup->mark_duplicate(d.first_offset, count);
      if (const auto r = log.append_barrier(dup); !r) {
        delete dup;
        return fail(error_code::storage_error, r.error().message);
      }
      return;
    }
  }
  auto* done = new pending_append(*this, from, correlation, topic, partition, std::move(records));
  const auto r = log.append(done->bytes(), count, now_ms(), done);
  if (!r) {
    delete done;
    report_log_failure(topic, partition, p->second);
    return fail(error_code::storage_error, r.error().message);
  }
}

// Once per partition: a failed log refuses every append until the broker restarts
// (reopening recovers it), so the operator must hear of it, not only the producers.
void shard::report_log_failure(const std::string& topic, std::uint32_t partition, partition_state& ps) {
  if (ps.failure_logged || !ps.log->failed()) return;
  ps.failure_logged = true;
  log(log_level::error, "partition {}/{}: {}; publishes to it get STORAGE_ERROR until the broker is restarted", topic,
      partition, ps.log->failure());
}

void shard::deliver_ack(const forwarded_ack& a) {
  connection* c = find(a.conn);
  if (c == nullptr) return;
  c->appends_in_flight -= std::min<std::uint64_t>(a.bytes, c->appends_in_flight);
  if (c->closing) return;
  apply_backpressure(*c);
  if (a.code != error_code::none) return send_error(*c, a.correlation, a.code, a.message);
  std::vector<std::byte> f(codec::frame_size(codec::ack_size));
  codec::encode_ack(std::span(f).subspan<codec::header_size, codec::ack_size>(), a.ack);
  codec::seal_frame(f, opcode::ack, a.correlation);
  send_frame(*c, std::move(f));
}

}  // namespace mcp::broker
