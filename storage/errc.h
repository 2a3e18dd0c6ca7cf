#pragma once
// Errors of the storage layer: a code to branch on and a message for people that
// names the file and, for corruption, the byte position.

#include <string>

#include "codec/result.h"

namespace mcp::storage {

enum class errc {
  io_error,          // a system call failed (the message has errno's text)
  corrupt,           // bytes on disk that cannot be what we wrote
  invalid_argument,  // a caller's or a config file's value is out of range
  not_found,
  exists,
  out_of_range,      // an offset outside [log start, log end]
  failed,            // the log refused work after an earlier write error
};

struct error {
  errc code;
  std::string message;
};

template <class T>
using result = mcp::result<T, error>;

inline unexpected<error> fail(errc code, std::string message) { return unexpected{error{code, std::move(message)}}; }

const char* errc_name(errc e) noexcept;

}  // namespace mcp::storage
