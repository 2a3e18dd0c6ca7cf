#pragma once
// A small slice of a segment is copied into the reply instead of spliced.
//
// Why: io_uring runs every splice on an io-wq worker (never inline), so a slice
// sent by splice costs two worker hand-offs (file -> pipe -> socket), a send of
// its header before them and a duplicate of the segment's descriptor. For the
// few KiB a consumer fetches when it keeps up with the producers, that costs far
// more than copying the bytes: one read straight from the page cache and one send
// of header and records together (perf/results.md, "Small slices are copied").
// Large slices (a consumer catching up) still go zero-copy.
//
// The read never blocks the shard: it is a preadv2 with RWF_NOWAIT, which takes
// only what the page cache holds and fails otherwise; the caller then sends the
// slice the usual way (splice or READ through the ring).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mcp::broker {

// [pos, pos + len) of `fd` after `front` bytes left for the caller's header, or
// an empty vector when any of it is not in the page cache (or the read fails).
std::vector<std::byte> copy_if_cached(int fd, std::uint64_t pos, std::size_t len, std::size_t front);

}  // namespace mcp::broker
