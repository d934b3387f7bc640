#!/usr/bin/env bash
# The suite's entry (mkBundle's `entry`, lifecycle/run-gate.sh by default). `launcher run`
# starts it with the bundle's bash, cwd the unpacked bundle, the bundle's bin/ (bash, jq, bats)
# first on PATH, and BATS_LIB_PATH (bats-support, bats-assert, bats-file) and
# ARCHY_GATE_RUN_DIR set. Exit 0 only if every test passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_dir=${ARCHY_GATE_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/my-suite-run.XXXXXX")}
mkdir -p "$run_dir"
exec bats --tap --report-formatter junit --output "$run_dir" "$here/tests"
