#include "storage/group_offsets.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "codec/byte_order.h"
#include "codec/crc32c.h"
#include "storage/atomic_file.h"
#include "storage/durable_dirs.h"

namespace mcp::storage {

namespace fs = std::filesystem;
using codec::load_le;
using codec::store_le;

result<void> validate_name(std::string_view kind, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 249 && name != "." && name != "..";
  for (const char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-');
  }
  if (!ok) {
    return fail(errc::invalid_argument,
                fmt::format("{} name '{}' must be 1..249 characters of A-Z a-z 0-9 . _ - (and not . or ..)", kind, name));
  }
  return {};
}

std::vector<std::byte> group_offsets_store::encode(const positions& m) {
  std::vector<std::byte> out(group_offsets_header);
  for (const auto& [key, offset] : m) {
    const auto& [topic, partition] = key;
    const std::size_t at = out.size();
    out.resize(at + 2 + topic.size() + 4 + 8);
    std::byte* p = out.data() + at;
    store_le<std::uint16_t>(p, static_cast<std::uint16_t>(topic.size()));
    std::memcpy(p + 2, topic.data(), topic.size());
    store_le<std::uint32_t>(p + 2 + topic.size(), partition);
    store_le<std::uint64_t>(p + 6 + topic.size(), offset);
  }
  store_le<std::uint32_t>(out.data(), group_offsets_magic);
  store_le<std::uint16_t>(out.data() + 4, group_offsets_format);
  store_le<std::uint16_t>(out.data() + 6, 0);
  store_le<std::uint32_t>(out.data() + 8, static_cast<std::uint32_t>(m.size()));
  store_le<std::uint32_t>(out.data() + 12, codec::crc32c(std::span(out).subspan(group_offsets_header)));
  return out;
}

result<group_offsets_store::positions> group_offsets_store::decode(std::span<const std::byte> f, const fs::path& name) {
  auto bad = [&name](std::string what) { return fail(errc::corrupt, fmt::format("{}: {}", name.string(), what)); };
  if (f.size() < group_offsets_header) return bad(fmt::format("{} bytes, shorter than the 16-byte header", f.size()));
  if (load_le<std::uint32_t>(f.data()) != group_offsets_magic) return bad("not a group offsets file (bad magic)");
  const auto version = load_le<std::uint16_t>(f.data() + 4);
  if (version != group_offsets_format) return bad(fmt::format("format version {} is not supported (1 is)", version));
  const auto count = load_le<std::uint32_t>(f.data() + 8);
  if (codec::crc32c(f.subspan(group_offsets_header)) != load_le<std::uint32_t>(f.data() + 12)) {
    return bad("checksum mismatch (torn or corrupt file)");
  }
  positions m;
  std::size_t pos = group_offsets_header;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (f.size() - pos < 2) return bad(fmt::format("entry {} is cut short", i));
    const auto len = load_le<std::uint16_t>(f.data() + pos);
    if (f.size() - pos < 2u + len + 12u) return bad(fmt::format("entry {} is cut short", i));
    std::string topic(reinterpret_cast<const char*>(f.data() + pos + 2), len);
    const auto partition = load_le<std::uint32_t>(f.data() + pos + 2 + len);
    const auto offset = load_le<std::uint64_t>(f.data() + pos + 6 + len);
    m[{std::move(topic), partition}] = offset;
    pos += 2u + len + 12u;
  }
  if (pos != f.size()) return bad("bytes after the last entry");
  return m;
}

result<group_offsets_store> group_offsets_store::open(const fs::path& data_dir) {
  group_offsets_store s;
  s.dir_ = data_dir / "groups";
  if (auto r = create_directories_durably(s.dir_); !r) return unexpected{r.error()};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(s.dir_, ec)) {
    if (!e.is_directory()) continue;
    const fs::path file = e.path() / "offsets";
    fs::remove(temp_path_for(file), ec);  // a crash between write and rename: the old file stands
    if (!fs::exists(file)) continue;
    std::ifstream in(file, std::ios::binary);
    const std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto m = decode({reinterpret_cast<const std::byte*>(raw.data()), raw.size()}, file);
    if (!m) return unexpected{m.error()};
    s.groups_[e.path().filename().string()] = std::move(*m);
  }
  return s;
}

result<void> group_offsets_store::set(std::string_view group, std::string_view topic, std::uint32_t partition,
                                      std::uint64_t offset) {
  if (auto v = validate_name("group", group); !v) return v;
  if (auto v = validate_name("topic", topic); !v) return v;
  auto it = groups_.find(group);
  if (it == groups_.end()) it = groups_.emplace(std::string(group), positions{}).first;
  it->second[{std::string(topic), partition}] = offset;
  return {};
}

result<void> group_offsets_store::flush(std::string_view group) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return fail(errc::not_found, fmt::format("no group '{}'", group));
  const fs::path gdir = dir_ / std::string(group);
  // The group's directory must outlive a crash with the file in it.
  if (auto r = create_directories_durably(gdir); !r) return r;
  return write_file_atomically(gdir / "offsets", encode(it->second));
}

std::optional<std::uint64_t> group_offsets_store::committed(std::string_view group, std::string_view topic,
                                                            std::uint32_t partition) const {
  const auto g = groups_.find(group);
  if (g == groups_.end()) return std::nullopt;
  const auto p = g->second.find({std::string(topic), partition});
  if (p == g->second.end()) return std::nullopt;
  return p->second;
}

std::vector<std::string> group_offsets_store::groups() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : groups_) out.push_back(name);
  return out;
}

result<void> group_offsets_store::remove_group(std::string_view group) {
  const auto it = groups_.find(group);
  if (it == groups_.end()) return fail(errc::not_found, fmt::format("no group '{}'", group));
  groups_.erase(it);
  std::error_code ec;
  fs::remove_all(dir_ / std::string(group), ec);
  if (ec) return fail(errc::io_error, fmt::format("remove group '{}': {}", group, ec.message()));
  return sync_directory(dir_);  // so the group does not come back after a power cut
}

}  // namespace mcp::storage
