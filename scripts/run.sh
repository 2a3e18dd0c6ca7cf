#!/usr/bin/env bash
# The main job: installs what is missing, builds the release build, then runs the
# load generator with an embedded broker (a temp data dir on loopback, removed
# after): 100-byte messages, flat out, for about 10 seconds, every message
# verified and timed end to end. Extra arguments go to mcp-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [[ ! -f build/build.ninja ]]; then meson setup build; fi
meson compile -C build
exec build/tools/mcp-bench --embedded --size 100 --duration 10 "$@"  # defaults: 2 producers, 2 consumers, 4 partitions
