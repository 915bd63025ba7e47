#!/usr/bin/env bash
# A profile-guided release build of the edge: build instrumented, run bench/pgo-workload.sh
# (proxying, a required route with a token, a limited route, TV challenges), merge the profile
# with llvm-profdata (rustup's llvm-tools), rebuild with it. Separate target dirs keep the
# normal build's cache. Result: target/release/edge-pgo.
set -euo pipefail
cd "$(dirname "$0")/.."
prof=$PWD/target/pgo
host=$(rustc -vV | awk '/^host/{print $2}')
tools=$(rustc --print sysroot)/lib/rustlib/$host/bin
[ -x "$tools/llvm-profdata" ] || rustup component add llvm-tools
rm -rf "$prof/raw"; mkdir -p "$prof"
RUSTFLAGS="-Cprofile-generate=$prof/raw" CARGO_TARGET_DIR=target/pgo-gen \
  cargo build --release -p edge -p demo-movies
EDGE_BIN=target/pgo-gen/release/edge bench/pgo-workload.sh 4
ls "$prof"/raw/*.profraw >/dev/null
"$tools/llvm-profdata" merge -o "$prof/merged.profdata" "$prof/raw"
RUSTFLAGS="-Cprofile-use=$prof/merged.profdata" CARGO_TARGET_DIR=target/pgo-use \
  cargo build --release -p edge
cp target/pgo-use/release/edge target/release/edge-pgo
echo "target/release/edge-pgo: profile-guided build"
