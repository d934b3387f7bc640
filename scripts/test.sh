#!/usr/bin/env bash
# Runs every test of archy-gate on a fresh Debian 12 machine (as root), after
# installing what the tests need. CI calls this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_debian_packages musl-tools jq shellcheck bash-static busybox-static file
ensure_rust_target x86_64-unknown-linux-musl

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
shellcheck -x scripts/*.sh bench/*.sh .ci/run

step "static launcher (musl)"
static_launcher=$(build_static_launcher)
echo "$static_launcher"

step "tests"
ARCHY_GATE_STATIC_LAUNCHER=$static_launcher cargo test --locked --workspace 2>&1 | tee target/test.log
# cargo test's own summary lines, folded into one line a CI reader can trust.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log
