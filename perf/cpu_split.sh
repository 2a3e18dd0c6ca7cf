#!/usr/bin/env bash
# Where the machine's CPU goes during a flat-out `none` run: the /proc/stat split
# (user, sys, iowait, softirq, steal) over the mcp-bench run alone, per data
# directory, alternately. On the test VM the disk costs CPU that is not ours
# (steal: the host emulating the block device) and leaves the pipeline waiting
# (iowait: shards waiting in io_uring_enter with writes in flight); compare a
# disk-backed directory with a tmpfs one. Each run: a fresh broker (--shards 2,
# durability none), mcp-bench --size 100 --duration SECS; bounded by SECS.
# Usage: [BROKER_ARGS=...] perf/cpu_split.sh [rounds=3] [secs=5] BUILD DIR...
#   e.g. perf/cpu_split.sh 3 5 build-rel /work/mb /dev/shm/mb
set -euo pipefail
rounds=${1:-3} secs=${2:-5} build=$3
shift 3
pid=
dir=
trap '[[ -n $pid ]] && kill -KILL $pid 2>/dev/null; [[ -n $dir ]] && rm -rf "$dir"; true' EXIT
one() {  # data-dir
  dir=$1
  local port=$((20000 + RANDOM % 30000))
  rm -rf "$dir" && mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$build/broker/mcp-broker" --data-dir "$dir" --listen "127.0.0.1:$port" --shards 2 --durability none \
    ${BROKER_ARGS:-} 2>/dev/null &
  pid=$!
  sleep 0.5
  local before after e2e
  before=$(head -1 /proc/stat)
  e2e=$("$build/tools/mcp-bench" --broker "127.0.0.1:$port" --size 100 --duration "$secs" --durability none --json \
          2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["e2e_msgs_per_s"])')
  after=$(head -1 /proc/stat)
  kill -TERM $pid && wait $pid || true
  pid=
  rm -rf "$dir"
  dir=
  python3 - "$before" "$after" "$1" "$e2e" <<'PY'
import sys
a = list(map(int, sys.argv[1].split()[1:9]))
b = list(map(int, sys.argv[2].split()[1:9]))
d = [y - x for x, y in zip(a, b)]
t = sum(d) or 1
names = ["user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal"]
print(f"{sys.argv[3]:<16} e2e {int(sys.argv[4]):>9} msgs/s  " +
      "  ".join(f"{n} {100 * v / t:4.1f}%" for n, v in zip(names, d) if n not in ("nice", "irq")))
PY
}
for ((r = 0; r < rounds; r++)); do
  for d in "$@"; do one "$d"; done
done
