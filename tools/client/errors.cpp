#include "tools/client/errors.h"

namespace mcp::client {

const char* error_name(codec::error_code code) noexcept {
  if (code == local_error::disconnected) return "DISCONNECTED";
  if (code == local_error::timeout) return "TIMEOUT";
  if (code == local_error::queue_full) return "QUEUE_FULL";
  if (code == local_error::closed) return "CLOSED";
  if (code == local_error::message_too_large) return "MESSAGE_TOO_LARGE";
  if (code == local_error::protocol) return "PROTOCOL";
  return codec::error_code_name(code);
}

}  // namespace mcp::client
