#!/bin/sh
# Installs the build into a temp dir and compiles and runs a tiny program against
# the installed client library using only `pkg-config --cflags --libs mcp-client`:
# proves the headers, the generated FlatBuffers headers, both libraries and the
# .pc file are all installed and consistent.
#   install_check.sh BUILD_DIR PREFIX LIBDIR PROGRAM.cpp [SANITIZE]
# SANITIZE is the build's b_sanitize (e.g. address,undefined): a library built with
# sanitizers needs the program linked with them too, as any user of that build would.
set -eu
build=$1 prefix=$2 libdir=$3 program=$4 sanitize=${5:-none}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >/dev/null
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
export PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$dest$prefix" --cflags --libs mcp-client)
extra=
if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then extra="-fsanitize=$sanitize"; fi
# shellcheck disable=SC2086 # the flags are words on purpose
${CXX:-c++} $extra "$program" -o "$dest/installed_client" $flags
"$dest/installed_client"
