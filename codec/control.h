#pragma once
// Control messages: FlatBuffers bodies (schemas in codec/schema/*.fbs). Every body
// from the network goes through verify_control() — the FlatBuffers Verifier —
// before a single field is read.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "codec/errc.h"
#include "codec/frame_format.h"
#include "codec/result.h"
#include "error_generated.h"
#include "group_generated.h"
#include "hello_generated.h"
#include "metadata_generated.h"
#include "subscribe_generated.h"
#include "topic_generated.h"

namespace mcp::codec {

// Limits for the verifier: deep or wide buffers from a hostile peer are refused.
inline constexpr flatbuffers::uoffset_t control_max_depth = 16;
inline constexpr flatbuffers::uoffset_t control_max_tables = 100000;

// A verified control body. FlatBuffers reads scalars in place and needs its buffer
// aligned; a body inside a receive buffer sits wherever the frame happened to
// start, so a misaligned body is copied into owned, aligned storage first.
// Lifetime: without a copy, the view borrows the body's bytes.
template <class T>
class control_view {
 public:
  control_view(const T* root, std::vector<std::uint64_t> storage) : storage_(std::move(storage)), root_(root) {}
  const T* get() const noexcept { return root_; }
  const T* operator->() const noexcept { return root_; }
  const T& operator*() const noexcept { return *root_; }

 private:
  std::vector<std::uint64_t> storage_;  // the aligned copy, if one was needed (heap: moves keep root_ valid)
  const T* root_;
};

// The verified root table of type T in `body`, or malformed_body.
template <class T>
result<control_view<T>, errc> verify_control(std::span<const std::byte> body) {
  if (body.size() < sizeof(flatbuffers::uoffset_t) || body.size() > FLATBUFFERS_MAX_BUFFER_SIZE) {
    return unexpected{errc::malformed_body};
  }
  std::vector<std::uint64_t> storage;
  const auto* data = reinterpret_cast<const std::uint8_t*>(body.data());
  if (reinterpret_cast<std::uintptr_t>(data) % alignof(std::uint64_t) != 0) {
    storage.resize((body.size() + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
    std::memcpy(storage.data(), body.data(), body.size());
    data = reinterpret_cast<const std::uint8_t*>(storage.data());
  }
  flatbuffers::Verifier verifier(data, body.size(), control_max_depth, control_max_tables);
  if (!verifier.VerifyBuffer<T>(nullptr)) return unexpected{errc::malformed_body};
  return control_view<T>(flatbuffers::GetRoot<T>(data), std::move(storage));
}

// Appends one control frame whose body is the finished buffer of `fbb`.
void append_control_frame(std::vector<std::byte>& out, opcode op, std::uint32_t correlation,
                          const flatbuffers::FlatBufferBuilder& fbb);

// Packs an object-API value (fb::HelloT, fb::ErrorT, ...) and appends it as a frame.
template <class NativeT>
void append_control(std::vector<std::byte>& out, opcode op, std::uint32_t correlation,
                    const NativeT& value) {
  flatbuffers::FlatBufferBuilder fbb(256);
  fbb.Finish(NativeT::TableType::Pack(fbb, &value));
  append_control_frame(out, op, correlation, fbb);
}

// Appends an ERROR frame: `code` and a text for people. With UNSUPPORTED_VERSION
// it also names the versions this build speaks.
void append_error(std::vector<std::byte>& out, std::uint32_t correlation, error_code code,
                  std::string_view message);

}  // namespace mcp::codec
