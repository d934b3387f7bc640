#!/usr/bin/env bash
# run-gate.sh: entry of archy-gate's example lifecycle suite, shaped like Archy's
# tests/lifecycle (the real suite replaces this directory in use).
#
# Usage: run-gate.sh [BATS_ARGS…]        e.g. run-gate.sh --filter 'bitcoin'
#
# Runs tests/*.bats ARCHY_ITERATIONS times (default 1). Iteration i prints "# iteration i of N",
# then bats' TAP, which also goes to $ARCHY_GATE_RUN_DIR/iteration-i.tap, and bats writes its
# JUnit report to $ARCHY_GATE_RUN_DIR/iteration-i/report.xml. `--timing` makes each result line
# end in " # in N ms", the time the fleet's reports give each test. Every iteration runs; the exit
# status is 0 only if all of them passed, else 1 (2: bad ARCHY_ITERATIONS).
#
# `launcher run` starts it with the bundle's bash, cwd the unpacked bundle, the bundle's bin/
# first on PATH, and BATS_LIB_PATH, ARCHY_GATE_RUN_DIR and ARCHY_GATE_LAUNCHER set. Run by hand
# without ARCHY_GATE_RUN_DIR, the reports go to a new temporary dir, named on stderr.
# What the tests read (ARCHY_HOST, ARCHY_PASSWORD, ARCHY_ALLOW_DESTRUCTIVE, …): README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=$(cd "$here/.." && pwd)
if [[ -d $bundle/bin ]]; then
  export PATH="$bundle/bin:$PATH"
fi
export BATS_LIB_PATH="${BATS_LIB_PATH:-$bundle/lib}"

iterations=${ARCHY_ITERATIONS:-1}
if ! [[ $iterations =~ ^[1-9][0-9]*$ ]]; then
  echo "run-gate.sh: ARCHY_ITERATIONS must be a positive whole number, not '$iterations'" >&2
  exit 2
fi

if [[ -z ${ARCHY_GATE_RUN_DIR:-} ]]; then
  ARCHY_GATE_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/archy-gate-run.XXXXXX")
  echo "run-gate.sh: ARCHY_GATE_RUN_DIR is not set; the reports go to $ARCHY_GATE_RUN_DIR" >&2
fi
export ARCHY_GATE_RUN_DIR
mkdir -p "$ARCHY_GATE_RUN_DIR"

failed=0
for ((i = 1; i <= iterations; i++)); do
  out=$ARCHY_GATE_RUN_DIR/iteration-$i
  mkdir -p "$out"
  echo "# iteration $i of $iterations"
  set +e
  bats --tap --timing --report-formatter junit --output "$out" "$@" "$here/tests" | tee "$out.tap"
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc != 0)); then
    failed=$((failed + 1))
    echo "# iteration $i of $iterations failed (bats exit $rc)"
  fi
done

echo "# $((iterations - failed)) of $iterations iterations passed"
((failed == 0)) || exit 1
