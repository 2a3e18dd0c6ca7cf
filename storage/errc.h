#pragma once
// Errors of the storage layer: a code to branch on and a message for people that
// names the file and, for corruption, the byte position.

#include <cstdint>
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
  would_block,       // a read_mode::nowait read found the bytes not in the page cache
};

struct error {
  errc code;
  std::string message;
  // would_block: the file range to read (asynchronously, e.g. through a ring)
  // before trying again.
  int fd = -1;
  std::uint64_t position = 0;
  std::uint64_t length = 0;
};

// How a read path may read segment files: blocking (pread: offline tools, tests,
// rare paths), or nowait (preadv2 with RWF_NOWAIT: only what the page cache
// holds; anything else fails with would_block instead of waiting for the disk,
// which a shard thread must never do).
enum class read_mode { blocking, nowait };

template <class T>
using result = mcp::result<T, error>;

inline unexpected<error> fail(errc code, std::string message) { return unexpected{error{code, std::move(message)}}; }

const char* errc_name(errc e) noexcept;

}  // namespace mcp::storage
