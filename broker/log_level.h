#pragma once

namespace mcp::broker {

enum class log_level { debug, info, warn, error };

const char* to_string(log_level l) noexcept;

}  // namespace mcp::broker
