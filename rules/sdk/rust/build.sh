#!/bin/sh
# Builds a Rust rule with the Vigie Rust SDK: build.sh OUT.wasm rule.rs
# Needs Debian's rustc and its wasm32 standard library
# (apt-get install rustc libstd-rust-dev-wasm32); no cargo, no crates.
set -eu
exec "${RUSTC:-/usr/bin/rustc}" --edition 2021 --target wasm32-unknown-unknown \
  --crate-type cdylib -O -C panic=abort -C strip=symbols -o "$1" "$2"
