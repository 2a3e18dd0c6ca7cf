#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need,
# only those missing (no apt-get call at all when everything is there).
set -euo pipefail

packages=(
  build-essential g++ pkg-config cmake meson ninja-build
  liburing-dev libflatbuffers-dev flatbuffers-compiler libmimalloc-dev libfmt-dev doctest-dev
  libcli11-dev libbenchmark-dev
  clang libclang-rt-14-dev  # libFuzzer and the fuzz run
  python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
