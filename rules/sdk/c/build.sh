#!/bin/sh
# Builds a C rule with the Vigie C SDK: build.sh OUT.wasm rule.c [more.c...]
# Needs Debian's clang and lld (apt-get install clang lld); uses binaryen's
# wasm-opt when it is installed (apt-get install binaryen), which makes
# loops over columns faster (docs/rule-authors.md, "Speed").
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
set -- --target=wasm32 -O2 -nostdlib -ffreestanding -mbulk-memory \
  -Wall -Wextra -Werror -I "$sdk" \
  -Wl,--no-entry -Wl,--initial-memory=131072 "$@" "$sdk/vigie.c"
if ! command -v wasm-opt >/dev/null 2>&1 || [ "${VIGIE_WASM_OPT:-1}" = 0 ]; then
  exec "${CC:-clang}" -Wl,--strip-all -o "$out" "$@"
fi
# clang runs wasm-opt -O2 by itself after linking when it finds it, and
# wasm-opt reads the module's features from the target_features section:
# the module is stripped only afterwards. --low-memory-unused lets wasm-opt
# fold constant offsets into loads and stores (x + 16, then load: load
# offset=16), which lets the runtime check bounds once for several
# accesses; it holds because wasm-ld places data at 1024 and up.
trap 'rm -f "$out.tmp"' EXIT
"${CC:-clang}" -o "$out.tmp" "$@"
wasm-opt -O3 --low-memory-unused --strip-debug --strip-producers --strip-target-features \
  "$out.tmp" -o "$out"
