#!/bin/sh
# Builds a C rule with the Vigie C SDK: build.sh OUT.wasm rule.c [more.c...]
# Needs Debian's clang and lld (apt-get install clang lld).
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
exec "${CC:-clang}" --target=wasm32 -O2 -nostdlib -ffreestanding -mbulk-memory \
  -Wall -Wextra -Werror -I "$sdk" \
  -Wl,--no-entry -Wl,--strip-all -Wl,--initial-memory=131072 \
  -o "$out" "$@" "$sdk/vigie.c"
