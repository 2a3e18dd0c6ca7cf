#!/usr/bin/env bash
# The main job: installs what is missing, builds the release build, and runs the
# codec benchmark (until the broker exists; then it will start a broker and run
# mcp-bench against it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build; fi
meson compile -C build
exec build/perf/codec_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true "$@"
