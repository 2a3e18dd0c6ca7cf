#!/usr/bin/env bash
# A/B of broker PUBLISH throughput between two builds, run alternately in one
# session (the machine is shared and noisy: compare ratios, quote medians).
# Each round starts a fresh broker (--shards 2) of build A, then of build B, and
# runs the issue-4 publish load against it: 4 connections to the owning shard
# ports, batches of 64 x 100 B, 16 in flight, `sync` then `none`, SECS each.
# Usage: perf/publish_ab.sh BUILD_A BUILD_B [rounds=3] [secs=5]
#   e.g. perf/publish_ab.sh /tmp/before/build build-perf 5 5
set -euo pipefail
a=$1 b=$2 rounds=${3:-3} secs=${4:-5}
pid=
dir=
trap '[[ -n $pid ]] && kill -KILL $pid 2>/dev/null; [[ -n $dir ]] && rm -rf "$dir"; true' EXIT
one() {  # build label
  local build=$1 label=$2 port=$((20000 + RANDOM % 30000))
  dir=$(mktemp -d /tmp/mcp-ab-XXXXXX)
  "$build/broker/mcp-broker" --data-dir "$dir" --listen 127.0.0.1:$port --shards 2 --log-level warn &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 2))) 2>/dev/null && break; sleep 0.05; done
  for d in sync none; do
    local out
    out=$(timeout $((secs * 4 + 20)) "$build/perf/broker_bench" --port $port --topic "${d:0:1}" --durability $d \
      --partitions 2 --connections 4 --seconds "$secs")
    echo "$label $d $(sed -n 's/.*: \([0-9.]*\) M msgs\/s.*/\1/p' <<<"$out")"
  done
  kill -TERM $pid; wait $pid || true
  pid=
  rm -rf "$dir"
  dir=
}
results=$(mktemp)
for r in $(seq "$rounds"); do
  one "$a" A | tee -a "$results"
  one "$b" B | tee -a "$results"
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for d in sync none; do
  ma=$(awk -v d=$d '$1=="A" && $2==d {print $3}' "$results" | median)
  mb=$(awk -v d=$d '$1=="B" && $2==d {print $3}' "$results" | median)
  echo "median $d: A $ma M msgs/s, B $mb M msgs/s, B/A $(awk -v x="$ma" -v y="$mb" 'BEGIN {printf "%.3f", y/x}')"
done
rm -f "$results"
