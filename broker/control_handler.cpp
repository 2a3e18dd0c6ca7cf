// Requests that are not data: frame dispatch, HELLO (version negotiation and the
// shard map), METADATA, and topic admin (handed to the controller).

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

namespace {

std::vector<std::byte> control_frame_bytes(opcode op, std::uint32_t corr, const flatbuffers::FlatBufferBuilder& fbb) {
  std::vector<std::byte> out;
  codec::append_control_frame(out, op, corr, fbb);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- requests

void shard::handle_frame(connection& c, const codec::frame_view& f) {
  const auto op = f.header.op;
  if (!c.hello_done && op != opcode::hello && op != opcode::ping) {
    send_error(c, f.header.correlation, error_code::not_ready, "send HELLO first");
    return;
  }
  switch (op) {
    case opcode::hello: return handle_hello(c, f);
    case opcode::ping: {
      std::vector<std::byte> out;
      codec::append_frame(out, opcode::pong, f.header.correlation, f.body);
      return send_frame(c, std::move(out));
    }
    case opcode::metadata: return handle_metadata(c, f);
    case opcode::create_topic:
    case opcode::delete_topic: return handle_admin(c, f);
    case opcode::publish: return handle_publish(c, f);
    case opcode::fetch: return handle_fetch(c, f);
    case opcode::window: return handle_window(c, f);
    case opcode::subscribe: return handle_subscribe(c, f);
    case opcode::credit: return handle_credit(c, f);
    case opcode::commit: return handle_commit(c, f);
    case opcode::nack: return handle_nack(c, f);
    case opcode::groups: return handle_groups(c, f);
    case opcode::pong: return;
    default:
      return send_error(c, f.header.correlation, error_code::unknown_opcode,
                        fmt::format("{} is not a request this broker serves", codec::opcode_name(op)));
  }
}

void shard::handle_hello(connection& c, const codec::frame_view& f) {
  const auto h = codec::verify_control<fb::Hello>(f.body);
  if (!h) return send_error(c, f.header.correlation, error_code::malformed_body, "HELLO body does not verify");
  const std::uint8_t lo = (*h)->min_version(), hi = (*h)->max_version();
  if (hi < codec::min_version || lo > codec::max_version || lo > hi) {
    send_error(c, f.header.correlation, error_code::unsupported_version,
               fmt::format("this broker speaks protocol versions {}..{}; the client offered {}..{}", codec::min_version,
                           codec::max_version, lo, hi));
    return close_connection(c, "unsupported version");
  }
  c.hello_done = true;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::ShardEndpoint>> eps;
  for (unsigned i = 0; i < group_.size(); ++i) {
    eps.push_back(fb::CreateShardEndpoint(fbb, i, fbb.CreateString(cfg_.listen_host), group_.port_of(i)));
  }
  const auto shards = fbb.CreateVector(eps);
  const auto name = fbb.CreateString("mcp-broker");
  fb::HelloOkBuilder b(fbb);
  b.add_version(std::min<std::uint8_t>(hi, codec::max_version));
  b.add_broker_name(name);
  b.add_max_frame(cfg_.max_frame);
  b.add_shard_count(group_.size());
  b.add_shards(shards);
  fbb.Finish(b.Finish());
  send_frame(c, control_frame_bytes(opcode::hello_ok, f.header.correlation, fbb));
}

void shard::handle_admin(connection& c, const codec::frame_view& f) {
  admin_request r;
  r.from = {id_, c.id};
  r.correlation = f.header.correlation;
  if (f.header.op == opcode::create_topic) {
    const auto ct = codec::verify_control<fb::CreateTopic>(f.body);
    if (!ct || (*ct)->name() == nullptr) {
      return send_error(c, f.header.correlation, error_code::malformed_body, "CREATE_TOPIC body does not verify");
    }
    r.what = admin_request::kind::create;
    r.name = (*ct)->name()->str();
    if (const auto* tc = (*ct)->config()) {
      r.config.partitions = tc->partitions();
      r.config.retention_bytes = tc->retention_bytes();
      r.config.retention_ms = tc->retention_ms();
      if (tc->segment_bytes() != 0) r.config.segment_bytes = tc->segment_bytes();
      if (tc->segment_ms() != 0) r.config.segment_ms = tc->segment_ms();
      switch (tc->durability()) {
        case fb::DurabilityKind::None: r.config.level = {storage::durability::kind::none, 0}; break;
        case fb::DurabilityKind::Sync: r.config.level = {storage::durability::kind::sync, 0}; break;
        case fb::DurabilityKind::Interval:
          r.config.level = {storage::durability::kind::interval, tc->durability_interval_ms()};
          break;
        case fb::DurabilityKind::Default: r.config.level.interval_ms = 0xFFFFFFFF; break;  // marker: broker default
      }
    } else {
      r.config.level.interval_ms = 0xFFFFFFFF;
    }
  } else {
    const auto dt = codec::verify_control<fb::DeleteTopic>(f.body);
    if (!dt || (*dt)->name() == nullptr) {
      return send_error(c, f.header.correlation, error_code::malformed_body, "DELETE_TOPIC body does not verify");
    }
    r.what = admin_request::kind::remove;
    r.name = (*dt)->name()->str();
  }
  if (!group_.post_to_controller(id_, std::move(r))) {
    send_error(c, f.header.correlation, error_code::resource_exhausted, "the broker is busy; retry");
  }
}

}  // namespace mcp::broker
