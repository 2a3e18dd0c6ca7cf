// Compiled against the installed tree by install_check.sh: includes the public
// headers the way a user of `pkg-config mcp-client` does, and links.
#include <cstdio>

#include "tools/client/consumer.h"
#include "tools/client/producer.h"

int main() {
  mcp::client::producer_options o;
  o.topic = "t";
  o.port = 1;  // nothing listens there: create() must fail with a typed error
  o.connect_timeout_ms = 500;
  auto p = mcp::client::producer::create(o);
  if (p) return 1;
  std::printf("installed client library works: %s\n", mcp::client::error_name(p.error().code));
  return p.error().code == mcp::client::local_error::disconnected ? 0 : 1;
}
