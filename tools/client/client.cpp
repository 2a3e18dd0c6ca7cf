#include "tools/client/client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "codec/frame_encoder.h"
#include "codec/record.h"
#include "codec/record_format.h"
#include "tools/client/record_frames.h"

namespace mcp::client {

using codec::error_code;
using codec::opcode;

namespace {

// Receive buffer for frames read one by one (replies, the small rest of a run).
constexpr std::size_t inbuf_size = 256 << 10;

unexpected<client_error> local(std::string msg) { return unexpected{client_error{error_code::internal, std::move(msg)}}; }
unexpected<client_error> gone(std::string msg) { return unexpected{client_error{local_error::disconnected, std::move(msg)}}; }

}  // namespace

client_error error_from(const owned_frame& f) {
  if (f.header.op == opcode::error) {
    if (const auto e = codec::verify_control<fb::Error>(f.body)) {
      return {static_cast<error_code>((*e)->code()), (*e)->message() ? (*e)->message()->str() : std::string{}};
    }
    return {error_code::malformed_body, "the broker sent an ERROR that does not verify"};
  }
  return {error_code::internal, fmt::format("unexpected {} frame", codec::opcode_name(f.header.op))};
}

result<connection> connection::connect(const std::string& host, std::uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return local(fmt::format("resolve {}: {}", host, gai_strerror(rc)));
  }
  std::string last = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return connection(fd);
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return gone(fmt::format("connect {}:{}: {}", host, port, last));
}

connection::connection(connection&& o) noexcept { *this = std::move(o); }

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    correlation_ = o.correlation_;
    decoder_ = std::move(o.decoder_);
    inbuf_ = std::move(o.inbuf_);
  }
  return *this;
}

connection::~connection() {
  if (fd_ >= 0) ::close(fd_);
}

result<void> connection::send_bytes(std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return gone(fmt::format("send: {}", std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

result<codec::frame_view> connection::next_frame(int timeout_ms) {
  auto f = try_next_frame(timeout_ms);
  if (!f) return unexpected{f.error()};
  if (!*f) {
    return unexpected{client_error{local_error::timeout, fmt::format("no answer from the broker within {} ms", timeout_ms)}};
  }
  return **f;
}

result<std::optional<codec::frame_view>> connection::try_next_frame(int timeout_ms) {
  // The clock is read only once the decoder runs dry: most calls find a whole
  // frame already received (the records after a RECORDS header), and reading
  // the clock for each of them was a visible share of a consumer's time.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  for (;;) {
    const auto r = decoder_.next();
    if (r.status == codec::errc::ok) return std::optional(r.frame);
    if (r.status != codec::errc::need_more) {
      return unexpected{client_error{local_error::protocol,
                                     fmt::format("the broker's stream is broken: {}", codec::errc_name(r.status))}};
    }
    if (!deadline) deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    if (pr == 0) return std::optional<codec::frame_view>{};
    if (pr < 0) {
      if (errno == EINTR) continue;
      return local(fmt::format("poll: {}", std::strerror(errno)));
    }
    // The decoder has used up the previous chunk (it stashes a split frame), so the
    // buffer can take the next one.
    inbuf_.resize(inbuf_size);
    const ssize_t n = ::recv(fd_, inbuf_.data(), inbuf_.size(), 0);
    if (n == 0) return gone("the broker closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      return gone(fmt::format("recv: {}", std::strerror(errno)));
    }
    decoder_.feed(std::span(inbuf_).first(static_cast<std::size_t>(n)));
  }
}

namespace {
// A rest of a run at least this long is received straight into the caller's
// buffer; a shorter one goes through inbuf_, so the frames behind it come in the
// same recv instead of one more system call each.
constexpr std::size_t direct_recv_min = 64 << 10;

unexpected<client_error> protocol(std::string msg) {
  return unexpected{client_error{local_error::protocol, std::move(msg)}};
}
}  // namespace

result<void> connection::read_raw(std::span<std::byte> dst, int timeout_ms) {
  std::size_t have = decoder_.take_raw(dst);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  while (have < dst.size()) {
    // Here the decoder holds nothing: take_raw emptied its stash and its chunk.
    const std::size_t want = dst.size() - have;
    const bool direct = want >= direct_recv_min;
    if (!direct) inbuf_.resize(inbuf_size);
    const ssize_t n = direct ? ::recv(fd_, dst.data() + have, want, MSG_DONTWAIT)
                             : ::recv(fd_, inbuf_.data(), inbuf_.size(), MSG_DONTWAIT);
    if (n > 0) {
      if (direct) {
        have += static_cast<std::size_t>(n);
      } else {
        decoder_.feed(std::span(inbuf_).first(static_cast<std::size_t>(n)));
        have += decoder_.take_raw(dst.subspan(have));
      }
      continue;
    }
    if (n == 0) return gone("the broker closed the connection");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return gone(fmt::format("recv: {}", std::strerror(errno)));
    if (!deadline) deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    if (pr == 0) {
      return unexpected{client_error{local_error::timeout,
                                     fmt::format("no answer from the broker within {} ms", timeout_ms)}};
    }
    if (pr < 0 && errno != EINTR) return local(fmt::format("poll: {}", std::strerror(errno)));
  }
  return {};
}

result<std::uint64_t> connection::read_records(byte_buffer* out, std::uint32_t byte_count,
                                               std::uint32_t record_count, int timeout_ms) {
  // Each record is a whole frame of at least a header and the fixed record fields.
  constexpr std::uint64_t min_record = codec::header_size + codec::record_layout::fixed_size;
  if (std::uint64_t{record_count} * min_record > byte_count || (record_count == 0) != (byte_count == 0)) {
    return protocol(fmt::format("a header announced {} records in {} bytes", record_count, byte_count));
  }
  byte_buffer dropped;
  byte_buffer& dst = out != nullptr ? *out : dropped;
  const std::size_t begin = dst.size();
  if (dst.capacity() < begin + byte_count) {
    dst.reserve(std::max<std::size_t>(begin + byte_count, 2 * dst.capacity()));  // geometric: once per few replies
  }
  dst.resize(begin + byte_count);
  const auto undo = [&] { dst.resize(begin); };
  if (auto r = read_raw(std::span(dst).subspan(begin), timeout_ms); !r) {
    undo();
    return unexpected{r.error()};
  }
  std::span<const std::byte> rest = std::span<const std::byte>(dst).subspan(begin);
  std::uint32_t seen = 0;
  std::uint64_t last_offset = 0;
  while (!rest.empty()) {
    const auto pf = codec::parse_frame(rest, decoder_.options());
    if (pf.status != codec::errc::ok) {
      undo();
      return protocol(pf.status == codec::errc::need_more
                          ? fmt::format("a record runs past the {} bytes its header announced", byte_count)
                          : fmt::format("a record frame is broken: {}", codec::errc_name(pf.status)));
    }
    if (pf.frame.header.op != opcode::record || pf.frame.body.size() < codec::record_layout::fixed_size) {
      undo();
      return protocol(fmt::format("expected a RECORD frame, got {} of {} bytes", codec::opcode_name(pf.frame.header.op),
                                  pf.frame.bytes.size()));
    }
    last_offset = codec::record_offset(pf.frame.bytes);
    ++seen;
    rest = rest.subspan(pf.frame.bytes.size());
  }
  if (seen != record_count) {
    undo();
    return protocol(fmt::format("a header announced {} records, {} arrived", record_count, seen));
  }
  if (out == nullptr) dst.clear();
  return last_offset;
}

result<owned_frame> connection::read_frame(int timeout_ms) {
  auto f = next_frame(timeout_ms);
  if (!f) return unexpected{f.error()};
  return owned_frame{f->header, std::vector<std::byte>(f->body.begin(), f->body.end())};
}

result<owned_frame> connection::expect(std::uint32_t correlation, opcode op) {
  auto f = read_frame();
  if (!f) return f;
  if (f->header.op == opcode::error) return unexpected{error_from(*f)};
  if (f->header.op != op || f->header.correlation != correlation) {
    return unexpected{client_error{local_error::protocol,
                                   fmt::format("expected {} for request {}, got {} for {}", codec::opcode_name(op),
                                               correlation, codec::opcode_name(f->header.op), f->header.correlation)}};
  }
  return f;
}

result<fb::HelloOkT> connection::hello(std::string_view client_name, std::uint8_t min_version, std::uint8_t max_version) {
  fb::HelloT h;
  h.min_version = min_version;
  h.max_version = max_version;
  h.client_name = std::string(client_name);
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_control(out, opcode::hello, corr, h);
  if (auto s = send_bytes(out); !s) return unexpected{s.error()};
  auto f = expect(corr, opcode::hello_ok);
  if (!f) return unexpected{f.error()};
  const auto ok = codec::verify_control<fb::HelloOk>(f->body);
  if (!ok) return local("HELLO_OK does not verify");
  fb::HelloOkT v;
  (*ok)->UnPackTo(&v);
  return v;
}

result<void> connection::create_topic(std::string_view name, std::uint32_t partitions, fb::DurabilityKind durability,
                                      std::uint32_t interval_ms, std::int64_t retention_bytes, std::int64_t retention_ms) {
  fb::TopicConfigT config;
  config.partitions = partitions;
  config.durability = durability;
  config.durability_interval_ms = interval_ms;
  config.retention_bytes = retention_bytes;
  config.retention_ms = retention_ms;
  return create_topic(name, config);
}

result<void> connection::create_topic(std::string_view name, const fb::TopicConfigT& config) {
  fb::CreateTopicT c;
  c.name = std::string(name);
  c.config = std::make_unique<fb::TopicConfigT>(config);
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_control(out, opcode::create_topic, corr, c);
  if (auto s = send_bytes(out); !s) return s;
  auto f = expect(corr, opcode::ok);
  if (!f) return unexpected{f.error()};
  return {};
}

result<void> connection::delete_topic(std::string_view name) {
  fb::DeleteTopicT d;
  d.name = std::string(name);
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_control(out, opcode::delete_topic, corr, d);
  if (auto s = send_bytes(out); !s) return s;
  auto f = expect(corr, opcode::ok);
  if (!f) return unexpected{f.error()};
  return {};
}

result<fb::MetadataReplyT> connection::metadata(const std::vector<std::string>& topics) {
  fb::MetadataRequestT q;
  q.topics = topics;
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_control(out, opcode::metadata, corr, q);
  if (auto s = send_bytes(out); !s) return unexpected{s.error()};
  auto f = expect(corr, opcode::metadata_ok);
  if (!f) return unexpected{f.error()};
  const auto m = codec::verify_control<fb::MetadataReply>(f->body);
  if (!m) return local("METADATA_OK does not verify");
  fb::MetadataReplyT v;
  (*m)->UnPackTo(&v);
  return v;
}

result<fb::GroupsReplyT> connection::groups(std::string_view group) {
  fb::GroupsRequestT q;
  q.group = std::string(group);
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_control(out, opcode::groups, corr, q);
  if (auto s = send_bytes(out); !s) return unexpected{s.error()};
  auto f = expect(corr, opcode::groups_ok);
  if (!f) return unexpected{f.error()};
  const auto g = codec::verify_control<fb::GroupsReply>(f->body);
  if (!g) return local("GROUPS_OK does not verify");
  fb::GroupsReplyT v;
  (*g)->UnPackTo(&v);
  return v;
}

result<std::uint32_t> connection::send_publish(std::string_view topic, std::uint32_t partition,
                                               std::span<const codec::record_input> records) {
  if (!codec::is_valid_topic_name(topic)) return local(fmt::format("invalid topic name '{}'", topic));
  const codec::publish_header ph{partition, static_cast<std::uint32_t>(records.size()), 0, topic};
  std::size_t size = codec::header_size + codec::publish_prefix_size(topic);
  for (const auto& r : records) size += codec::record_frame_size(r);
  std::vector<std::byte> frame(size);
  std::size_t at = codec::header_size;
  at += codec::encode_publish_prefix(std::span(frame).subspan(at), ph);
  for (const auto& r : records) at += codec::encode_record(std::span(frame).subspan(at), r);
  const auto corr = next_correlation();
  codec::seal_frame(frame, opcode::publish, corr);
  if (auto s = send_bytes(frame); !s) return unexpected{s.error()};
  return corr;
}

result<codec::ack_body> connection::read_ack(std::uint32_t correlation) {
  auto f = expect(correlation, opcode::ack);
  if (!f) return unexpected{f.error()};
  const auto a = codec::decode_ack(f->body);
  if (!a) return local("ACK is malformed");
  return *a;
}

result<codec::ack_body> connection::read_next_ack(std::uint32_t& corr) {
  auto f = read_frame();
  if (!f) return unexpected{f.error()};
  corr = f->header.correlation;
  if (f->header.op == opcode::error) return unexpected{error_from(*f)};
  if (f->header.op != opcode::ack) return local(fmt::format("expected an ACK, got {}", codec::opcode_name(f->header.op)));
  const auto a = codec::decode_ack(f->body);
  if (!a) return local("ACK is malformed");
  return *a;
}

result<codec::ack_body> connection::publish(std::string_view topic, std::uint32_t partition,
                                            std::span<const codec::record_input> records) {
  auto corr = send_publish(topic, partition, records);
  if (!corr) return unexpected{corr.error()};
  return read_ack(*corr);
}

result<fetched> connection::fetch(std::string_view topic, std::uint32_t partition, std::uint64_t offset,
                                  std::uint32_t max_bytes, std::uint32_t max_wait_ms) {
  return fetch_impl(topic, partition, offset, max_bytes, max_wait_ms, 0);
}

result<fetched> connection::fetch_from_time(std::string_view topic, std::uint32_t partition, std::int64_t timestamp_ms,
                                            std::uint32_t max_bytes, std::uint32_t max_wait_ms) {
  return fetch_impl(topic, partition, static_cast<std::uint64_t>(timestamp_ms), max_bytes, max_wait_ms,
                    codec::fetch_flag_by_timestamp);
}

result<fetched> connection::fetch_impl(std::string_view topic, std::uint32_t partition, std::uint64_t offset,
                                       std::uint32_t max_bytes, std::uint32_t max_wait_ms, std::uint16_t flags) {
  std::vector<std::byte> body;
  codec::append_fetch(body, {offset, partition, max_bytes, max_wait_ms, flags, topic});
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_frame(out, opcode::fetch, corr, body);
  if (auto s = send_bytes(out); !s) return unexpected{s.error()};
  auto f = expect(corr, opcode::records);
  if (!f) return unexpected{f.error()};
  const auto h = codec::decode_records(f->body);
  if (!h) return local("RECORDS header is malformed");
  fetched res;
  res.header = *h;
  // The records follow as frames of their own: read them into one buffer (which
  // checks every frame and CRC once), then view them in place.
  if (auto r = read_records(&res.bytes, h->byte_count, h->record_count); !r) return unexpected{r.error()};
  res.records.reserve(h->record_count);
  if (!for_each_record_frame(res.bytes, [&](const codec::record_view& rec) { res.records.push_back(rec); })) {
    return local("a fetched record is malformed");
  }
  return res;
}

result<std::uint64_t> connection::ping(std::uint64_t token) {
  std::array<std::byte, codec::ping_size> body{};
  codec::encode_ping(body, token);
  std::vector<std::byte> out;
  const auto corr = next_correlation();
  codec::append_frame(out, opcode::ping, corr, body);
  if (auto s = send_bytes(out); !s) return unexpected{s.error()};
  auto f = expect(corr, opcode::pong);
  if (!f) return unexpected{f.error()};
  const auto t = codec::decode_ping(f->body);
  if (!t) return local("PONG is malformed");
  return *t;
}

}  // namespace mcp::client
