#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every test
#  1. release build (the default options) with -Werror,
#  2. address + undefined sanitizer build with -Werror,
#  3. a bounded libFuzzer run of the frame decoder (clang builds only; skipped
#     with a message when clang++ is absent).
# Each build has its own directory; the script only wraps meson setup/compile/test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
summary=()

run_suite() {  # name, build dir, meson options...
  local name=$1 dir=$2
  shift 2
  if [[ ! -f "$dir/build.ninja" ]]; then
    meson setup "$dir" "$@"
  else
    meson configure "$dir" "$@" >/dev/null
  fi
  meson compile -C "$dir" -j "$jobs"
  meson test -C "$dir" --print-errorlogs --num-processes "$jobs"
  summary+=("$name: ok")
}

run_suite release build -Dwerror=true
# mimalloc replaces malloc, which would hide allocations from ASan: off here.
run_suite sanitize build-asan -Dwerror=true -Doptimization=1 -Db_sanitize=address,undefined \
  -Db_lundef=false -Dmimalloc=disabled -Dbenchmarks=disabled

if command -v clang++ >/dev/null 2>&1; then
  if [[ ! -f build-fuzz/build.ninja ]]; then
    CXX=clang++ meson setup build-fuzz -Dfuzz=enabled -Dtests=disabled -Dbenchmarks=disabled \
      -Dmimalloc=disabled -Doptimization=2
  fi
  meson compile -C build-fuzz -j "$jobs"
  meson test -C build-fuzz --print-errorlogs
  summary+=("fuzz: ok")
else
  echo "test.sh: clang++ not found: skipping the fuzz run" >&2
fi

printf '%s\n' "${summary[@]}"
# One closing line over every build: meson tests (executables) passed and failed.
python3 - build build-asan build-fuzz <<'PY'
import json, os, sys
passed = failed = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        continue
    for line in open(log):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r != "SKIP":
            failed += 1
print(f"{passed} passed, {failed} failed")
PY
