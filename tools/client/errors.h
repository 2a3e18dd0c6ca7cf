#pragma once
// The one error type of the client library. A client_error carries either the
// broker's code (codec::error_code, the number an ERROR frame carried) or a
// local code for something that happened on this side of the wire; the two
// ranges never overlap (wire codes are small, local codes start at 1000), so a
// caller switches on one field. The message says what went wrong for people.

#include <cstdint>
#include <string>

#include "codec/errc.h"
#include "codec/result.h"

namespace mcp::client {

// Local codes: failures the broker did not report, because it could not (it was
// gone) or because they are the client's own (a full queue, a closed producer).
namespace local_error {
inline constexpr auto disconnected = static_cast<codec::error_code>(1000);       // connect refused, connection lost: the broker is gone
inline constexpr auto timeout = static_cast<codec::error_code>(1001);            // no answer, no ACK, or no flush within the time asked
inline constexpr auto queue_full = static_cast<codec::error_code>(1002);         // max_in_flight_bytes reached and publish was told not to block
inline constexpr auto closed = static_cast<codec::error_code>(1003);             // the producer or consumer was closed
inline constexpr auto message_too_large = static_cast<codec::error_code>(1004);  // a record that cannot fit in one frame
inline constexpr auto protocol = static_cast<codec::error_code>(1005);           // the broker sent something we did not expect
}  // namespace local_error

struct client_error {
  codec::error_code code = codec::error_code::internal;  // a wire code, or one of local_error
  std::string message;
};

template <class T>
using result = mcp::result<T, client_error>;

// "UNKNOWN_TOPIC", "DISCONNECTED", "TIMEOUT", ...: the wire name or the local one.
const char* error_name(codec::error_code code) noexcept;

}  // namespace mcp::client
