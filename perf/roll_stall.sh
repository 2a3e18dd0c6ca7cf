#!/usr/bin/env bash
# What rolls and retention cost the latency of a fixed-rate run, for one or more
# broker builds, alternately. Each run starts a fresh broker (--shards 2,
# durability none) and runs mcp-bench against it: 300,000 msgs/s of 100 B into
# one partition (~47 MB/s), 64 MiB segments (a roll every ~1.4 s), SECS seconds,
# once without retention and once keeping 128 MiB (a segment deleted every
# ~1.4 s once full). Prints each run's e2e latency line; bounded by SECS.
# Usage: [BROKER_ARGS=...] perf/roll_stall.sh [rounds=2] [secs=15] BUILD...   (mcp-bench from the last BUILD)
#   BROKER_ARGS: extra broker flags for every run, e.g. "--writeback-bytes 0"; RETENTION=0 skips
#   the runs with retention
#   e.g. perf/roll_stall.sh 2 15 /work/wtA/build build-rel
set -euo pipefail
rounds=${1:-2} secs=${2:-15}
shift 2
bench=${!#}/tools/mcp-bench  # the last build's: it needs --segment-bytes
pid=
dir=
trap '[[ -n $pid ]] && kill -KILL $pid 2>/dev/null; [[ -n $dir ]] && rm -rf "$dir"; true' EXIT
one() {  # build retention-args...
  local build=$1 port=$((20000 + RANDOM % 30000))
  shift
  dir=$(mktemp -d /tmp/mcp-roll-XXXXXX)
  "$build/broker/mcp-broker" --data-dir "$dir" --listen 127.0.0.1:$port --shards 2 --durability none \
    --log-level warn ${BROKER_ARGS:-} &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 2))) 2>/dev/null && break; sleep 0.05; done
  local line
  line=$(timeout $((secs * 3 + 30)) "$bench" --broker 127.0.0.1:$port --size 100 --durability none \
    --rate 300000 --linger-us 200 --duration "$secs" --partitions 1 --producers 1 --consumers 1 \
    --segment-bytes 67108864 "$@" | grep 'e2e latency')
  echo "$build ${*:-no-retention}: $line"
  kill -TERM $pid; wait $pid || true
  pid=
  rm -rf "$dir"
  dir=
}
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    one "$b"
    [[ ${RETENTION:-1} == 0 ]] || one "$b" --retention-bytes 134217728
  done
done
