#pragma once
// mcp group list | describe GROUP: what the broker knows of consumer groups
// (docs/groups.md). Exit code 0, or 1 when the broker refused or the group is unknown.

#include <string>

#include "tools/mcp/broker_commands.h"

namespace mcp::cli {

int group_list(const broker_address& b);
int group_describe(const broker_address& b, const std::string& name);

}  // namespace mcp::cli
