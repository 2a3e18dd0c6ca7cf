#pragma once
// Walks RECORD frames laid back to back in a buffer the client received (the
// bytes of a RECORDS reply or of DELIVERY runs), yielding each record as a view
// into that buffer. Shared by consumer and group_consumer.

#include <span>

#include "codec/frame_decoder.h"
#include "codec/record.h"

namespace mcp::client {

// Calls on_record(const codec::record_view&) for each record of `bytes`, in order.
// CRCs are not checked again (they were checked as the frames arrived). False at
// the first frame that does not parse as a record.
template <class F>
bool for_each_record_frame(std::span<const std::byte> bytes, F&& on_record) {
  const codec::decoder_options no_recheck{1u << 30, false};
  while (!bytes.empty()) {
    const auto pf = codec::parse_frame(bytes, no_recheck);
    if (pf.status != codec::errc::ok) return false;
    const auto rec = codec::decode_record(pf.frame.body);
    if (!rec) return false;
    on_record(*rec);
    bytes = bytes.subspan(pf.frame.bytes.size());
  }
  return true;
}

}  // namespace mcp::client
