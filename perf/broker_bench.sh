#!/usr/bin/env bash
# Starts mcp-broker (release build) on a temp data dir and loopback port, runs
# perf/broker_bench against it, stops it. Bounded: each phase runs for --seconds.
#   publish: sync and none topics (each on a fresh broker), 100-byte messages in batches of 64
#   fetch:   a ~1 GiB backlog read by one consumer, --delivery zero-copy and copy
# Usage: [BUILD=build-rel] perf/broker_bench.sh [seconds=5]   (BUILD: the build dir, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bin=${BUILD:-build}/broker/mcp-broker
bench=${BUILD:-build}/perf/broker_bench
port=$((20000 + RANDOM % 30000))
run_broker() {  # delivery
  dir=$(mktemp -d /tmp/mcp-bench-XXXXXX)
  "$bin" --data-dir "$dir" --listen 127.0.0.1:$port --shards 2 --delivery "$1" --log-level warn &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 2))) 2>/dev/null && break; sleep 0.05; done
}
stop_broker() {
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
}
trap 'kill -KILL $pid 2>/dev/null || true; rm -rf "${dir:-/nonexistent}"' EXIT

# Each publish phase on a fresh broker, after the page cache's dirty pages of the
# one before went to disk: a phase that followed another on the same broker ran
# 35-50 % slower whichever level it was (the virtual disk still writing the first
# phase's gigabytes; perf/results.md, 2026-12-03 evening).
for level in sync none; do
  sync
  run_broker zero-copy
  echo "+ $bench --port $port --topic $level --durability $level --partitions 2 --connections 4 --seconds $secs"
  $bench --port $port --topic "$level" --durability "$level" --partitions 2 --connections 4 --seconds "$secs"
  stop_broker
done
sync
run_broker zero-copy
echo "+ $bench --port $port --topic l --durability none --partitions 1 --latency"
$bench --port $port --topic l --durability none --partitions 1 --latency
stop_broker

for delivery in zero-copy copy; do
  run_broker $delivery
  # ~1 GiB backlog in partition 0 (64 x 4 KiB records per batch), then read it back.
  $bench --port $port --topic f --durability none --partitions 1 --connections 1 --size 4096 --batch 64 \
    --inflight 8 --seconds "$secs" > /dev/null
  echo "+ delivery $delivery: $bench --port $port --topic f --partitions 1 --fetch --broker-pid $pid"
  $bench --port $port --topic f --partitions 1 --fetch --broker-pid "$pid"
  if [[ $delivery == copy ]]; then
    seg=$(ls "$dir"/topics/f/0/*.log | head -1)
    echo "+ $bench --ceiling-file $seg"
    $bench --ceiling-file "$seg"
  fi
  stop_broker
done
