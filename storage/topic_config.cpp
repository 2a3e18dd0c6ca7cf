#include "storage/topic_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>

#include "storage/atomic_file.h"

namespace mcp::storage {

namespace fs = std::filesystem;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view s, std::int64_t& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

}  // namespace

result<void> validate(const topic_config& c) {
  auto bad = [](std::string m) { return fail(errc::invalid_argument, std::move(m)); };
  if (c.partitions < 1 || c.partitions > 10000) return bad(fmt::format("partitions {} is not in 1..10000", c.partitions));
  if (c.retention_bytes < -1) return bad("retention_bytes must be -1 (unlimited) or >= 0");
  if (c.retention_ms < -1) return bad("retention_ms must be -1 (unlimited) or >= 0");
  if (c.segment_bytes < 4096 || c.segment_bytes > (1LL << 30)) {
    return bad(fmt::format("segment_bytes {} is not in 4096..1073741824", c.segment_bytes));
  }
  if (c.segment_ms < 1000) return bad(fmt::format("segment_ms {} is under 1000", c.segment_ms));
  return {};
}

std::string format_topic_config(const topic_config& c) {
  return fmt::format(
      "format = 1\npartitions = {}\ndurability = {}\nretention_bytes = {}\nretention_ms = {}\n"
      "segment_bytes = {}\nsegment_ms = {}\n",
      c.partitions, to_string(c.level), c.retention_bytes, c.retention_ms, c.segment_bytes, c.segment_ms);
}

result<topic_config> parse_topic_config(std::string_view text, const std::string& name) {
  static const std::vector<std::string_view> keys{"format", "partitions", "durability", "retention_bytes",
                                                  "retention_ms", "segment_bytes", "segment_ms"};
  std::map<std::string, std::pair<std::string, int>, std::less<>> seen;  // key -> (value, line)
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return fail(errc::corrupt, fmt::format("{}:{}: expected 'key = value', got '{}'", name, line_no, line));
    }
    const std::string_view key = trim(line.substr(0, eq));
    const std::string_view value = trim(line.substr(eq + 1));
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return fail(errc::corrupt, fmt::format("{}:{}: unknown key '{}'", name, line_no, key));
    }
    if (seen.count(key) != 0) {
      return fail(errc::corrupt, fmt::format("{}:{}: '{}' is set twice (first on line {})", name, line_no, key,
                                             seen.find(key)->second.second));
    }
    seen.emplace(std::string(key), std::make_pair(std::string(value), line_no));
  }
  for (const auto k : keys) {
    if (seen.count(k) == 0) return fail(errc::corrupt, fmt::format("{}: missing key '{}'", name, k));
  }
  topic_config c;
  auto number = [&](std::string_view key, std::int64_t& out) -> result<void> {
    const auto& [value, line] = seen.find(key)->second;
    if (!parse_int(value, out)) {
      return fail(errc::corrupt, fmt::format("{}:{}: {} = '{}' is not a whole number", name, line, key, value));
    }
    return {};
  };
  std::int64_t format = 0, partitions = 0;
  if (auto r = number("format", format); !r) return unexpected{r.error()};
  if (format != 1) {
    return fail(errc::corrupt, fmt::format("{}:{}: format {} is not supported (1 is)", name,
                                           seen.find("format")->second.second, format));
  }
  for (auto [key, field] : {std::pair<std::string_view, std::int64_t*>{"partitions", &partitions},
                            {"retention_bytes", &c.retention_bytes}, {"retention_ms", &c.retention_ms},
                            {"segment_bytes", &c.segment_bytes}, {"segment_ms", &c.segment_ms}}) {
    if (auto r = number(key, *field); !r) return unexpected{r.error()};
  }
  if (partitions < 1 || partitions > 10000) {
    return fail(errc::corrupt, fmt::format("{}:{}: partitions {} is not in 1..10000", name,
                                           seen.find("partitions")->second.second, partitions));
  }
  c.partitions = static_cast<std::uint32_t>(partitions);
  const auto& [dur, dur_line] = seen.find("durability")->second;
  auto d = parse_durability(dur);
  if (!d) return fail(errc::corrupt, fmt::format("{}:{}: {}", name, dur_line, d.error().message));
  c.level = *d;
  if (auto v = validate(c); !v) return fail(errc::corrupt, fmt::format("{}: {}", name, v.error().message));
  return c;
}

result<topic_config> load_topic_config(const fs::path& meta_file) {
  std::ifstream in(meta_file, std::ios::binary);
  if (!in) return fail(errc::not_found, fmt::format("{}: cannot open", meta_file.string()));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_topic_config(text, meta_file.string());
}

result<void> store_topic_config(const fs::path& meta_file, const topic_config& c) {
  if (auto v = validate(c); !v) return v;
  const std::string text = format_topic_config(c);
  return write_file_atomically(meta_file, std::as_bytes(std::span(text.data(), text.size())));
}

std::vector<std::string> list_topics(const fs::path& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir / "topics", ec)) {
    if (e.is_directory() && fs::exists(e.path() / "meta")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mcp::storage
