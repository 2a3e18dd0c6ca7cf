// Codec micro-benchmarks (Google Benchmark). What they measure:
//  - decode_frames: parse + CRC-verify 100-byte frames (16-byte header, 84-byte
//    body) back to back in a 64 KiB buffer that stays in cache, the way the broker
//    walks a receive buffer. Reported as frames/s (items_per_second).
//  - streaming_decode: the same through frame_decoder fed 4 KiB chunks, so ~1 in 41
//    frames is split and goes through the stash.
//  - crc32c_*: CRC32C over a 1 MiB buffer (bytes_per_second) and over 84 bytes.
//  - validate_and_stamp: what the broker does per PUBLISH batch of 64 records of
//    100-byte values: validate_records, then stamp each (offset, CRC patched).
// Run: build/perf/codec_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "codec/crc32c.h"
#include "codec/frame_decoder.h"
#include "codec/frame_encoder.h"
#include "codec/record.h"

using namespace mcp::codec;

namespace {

constexpr std::size_t frame_bytes = 100;

std::vector<std::byte> frames_buffer(std::size_t total) {
  std::mt19937_64 rng(1);
  std::vector<std::byte> body(frame_bytes - header_size);
  std::vector<std::byte> out;
  out.reserve(total);
  while (out.size() + frame_bytes <= total) {
    for (auto& b : body) b = static_cast<std::byte>(rng());
    append_frame(out, opcode::record, 0, body);
  }
  return out;
}

void decode_frames(benchmark::State& state) {
  const auto buf = frames_buffer(64 << 10);
  const decoder_options opts;
  std::size_t frames = 0;
  for (auto _ : state) {
    std::span<const std::byte> rest = buf;
    while (!rest.empty()) {
      const auto r = parse_frame(rest, opts);
      if (r.status != errc::ok) state.SkipWithError("decode failed");
      benchmark::DoNotOptimize(r.frame.body.data());
      rest = rest.subspan(r.frame.bytes.size());
      ++frames;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(frames * frame_bytes));
}
BENCHMARK(decode_frames);

void streaming_decode(benchmark::State& state) {
  const auto buf = frames_buffer(64 << 10);
  std::size_t frames = 0;
  frame_decoder d;
  for (auto _ : state) {
    for (std::size_t at = 0; at < buf.size(); at += 4096) {
      d.feed(std::span(buf).subspan(at, std::min<std::size_t>(4096, buf.size() - at)));
      for (;;) {
        const auto r = d.next();
        if (r.status != errc::ok) break;
        benchmark::DoNotOptimize(r.frame.body.data());
        ++frames;
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}
BENCHMARK(streaming_decode);

template <std::uint32_t (*Fn)(std::span<const std::byte>, std::uint32_t) noexcept>
void crc_bench(benchmark::State& state) {
  std::mt19937_64 rng(2);
  std::vector<std::byte> buf(static_cast<std::size_t>(state.range(0)));
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  for (auto _ : state) benchmark::DoNotOptimize(Fn(buf, 0));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK_TEMPLATE(crc_bench, crc32c)->Name("crc32c_dispatch")->Arg(84)->Arg(1 << 20);
BENCHMARK_TEMPLATE(crc_bench, crc32c_portable)->Name("crc32c_portable")->Arg(84)->Arg(1 << 20);

void validate_and_stamp(benchmark::State& state) {
  std::vector<std::byte> value(100, std::byte{'v'});
  record_input in;
  in.value = value;
  std::vector<std::byte> batch;
  for (int i = 0; i < 64; ++i) {
    const std::size_t at = batch.size();
    batch.resize(at + record_frame_size(in));
    encode_record(std::span(batch).subspan(at), in);
  }
  const std::size_t rec = record_frame_size(in);
  std::uint64_t offset = 0;
  for (auto _ : state) {
    const auto run = validate_records(batch);
    if (!run) state.SkipWithError("validate failed");
    crc32c_shifter shifter;  // one per batch, as partition_log::append does
    for (std::size_t at = 0; at < batch.size(); at += rec) {
      stamp_record(std::span(batch).subspan(at, rec), offset++, 1700000000000, shifter);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 64);
}
BENCHMARK(validate_and_stamp);

void report_implementation(benchmark::State& state) {
  state.SetLabel(crc32c_implementation());
  for (auto _ : state) benchmark::DoNotOptimize(crc32c_hw_available());
}
BENCHMARK(report_implementation)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
