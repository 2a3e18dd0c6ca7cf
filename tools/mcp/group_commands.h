#pragma once
// mcp group list | describe GROUP: what the broker knows of consumer groups
// (docs/groups.md). Exit code 0, or 1 when the broker refused or the group is unknown.

#include <string>

#include "tools/mcp/broker_commands.h"

namespace mcp::cli {

int group_list(const broker_address& b);
int group_describe(const broker_address& b, const std::string& name);
// mcp sub TOPIC --group G: a member of the group that prints each record it is
// leased, then acks it; --from earliest|latest|@TIMESTAMP_MS is where a new group
// starts (an existing one resumes at its committed position).
int group_sub(const broker_address& b, const sub_args& a);

}  // namespace mcp::cli
