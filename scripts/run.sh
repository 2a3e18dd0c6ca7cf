#!/usr/bin/env bash
# The main job: installs what is missing, builds the release build, then starts
# mcp-broker on a temp data dir and drives it with the load benchmark
# (perf/broker_bench.sh: publish with sync and none, fetch zero-copy and copy),
# then the codec micro-benchmark. Bounded: about 30 s of load in all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build; fi
meson compile -C build
perf/broker_bench.sh "${1:-5}"
build/perf/codec_bench --benchmark_filter='decode_frames|crc32c_dispatch/1048576|validate_and_stamp' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
