#!/usr/bin/env bash
# Does a consumer reading a backlog that is not in the page cache stall the
# shard's other clients? For each BUILD, alternately: a broker with one shard
# (--durability none), a ~1 GiB backlog of 100-byte records in topic f (written,
# fdatasync'ed, then dropped from the page cache with POSIX_FADV_DONTNEED), then
# perf/latency_probe (one record at a time on its own topic, same shard) while
# broker_bench --fetch reads the cold backlog. Prints the probe's figures and the
# fetch GB/s. Bounded: the fill runs SECS seconds, the probe COUNT records.
# Usage: perf/cold_fetch.sh [rounds=2] [secs=6] BUILD...  e.g. perf/cold_fetch.sh 2 6 /work/wtA/build build-rel
set -euo pipefail
rounds=${1:-2} secs=${2:-6}
shift 2
pid=
dir=
trap '[[ -n $pid ]] && kill -KILL $pid 2>/dev/null; [[ -n $dir ]] && rm -rf "$dir"; true' EXIT
one() {  # build
  local build=$1 port=$((20000 + RANDOM % 30000))
  dir=$(mktemp -d /tmp/mcp-cold-XXXXXX)
  "$build/broker/mcp-broker" --data-dir "$dir" --listen 127.0.0.1:$port --shards 1 --durability none \
    --log-level warn &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null && break; sleep 0.05; done
  "$build/perf/broker_bench" --port $port --shards 1 --topic f --durability none --partitions 1 --connections 1 \
    --seconds "$secs" > /dev/null
  python3 - "$dir" <<'PY'
import glob, os, sys
for f in glob.glob(os.path.join(sys.argv[1], "topics", "f", "*", "*.log")):
    fd = os.open(f, os.O_RDONLY)
    os.fdatasync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
  "$build/perf/broker_bench" --port $port --shards 1 --topic f --partitions 1 --fetch > "$dir.fetch" &
  local fetcher=$!
  local probe
  probe=$(timeout 60 "$build/perf/latency_probe" --broker 127.0.0.1:$port --count 4000 --gap-us 300 \
    --durability none | grep 'publish -> consumer' || true)
  wait $fetcher || true
  echo "$build: $probe | fetch $(grep -o '[0-9.]* GB/s' "$dir.fetch" | head -1)"
  rm -f "$dir.fetch"
  kill -TERM $pid; wait $pid || true
  pid=
  rm -rf "$dir"
  dir=
}
for _ in $(seq "$rounds"); do
  for b in "$@"; do one "$b"; done
done
