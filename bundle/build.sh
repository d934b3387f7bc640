#!/usr/bin/env bash
# bundle/build.sh: build the archy-gate bundle without Nix, from any directory.
#
#   bundle/build.sh OUT_DIR                 the bundle: OUT_DIR/archy-gate, manifest.json, SHA256SUMS
#   bundle/build.sh --stage-only DIR        only the stage tree
#   bundle/build.sh --inputs-only DIR       only the stage's inputs (the Nix test's stand-in)
#   bundle/build.sh --check-jq [JQ]         jq's upstream test suite against JQ
#   bundle/build.sh --help                  all of it: inputs, stage, environment, host needs
#
# The build is `cargo xtask bundle` (xtask/src/bundle/), which runs bundle/stage.sh and
# `launcher pack`; this is its entry from outside the checkout's directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v cargo >/dev/null || {
  echo "build.sh: error: cargo not found: install Rust with rustup" >&2
  exit 1
}
# The alias `cargo xtask`, spelled out: cargo reads an alias only from the directory it is
# run in, and OUT_DIR is relative to the caller's.
exec cargo run --quiet --locked --manifest-path "$repo/Cargo.toml" --package xtask -- bundle "$@"
