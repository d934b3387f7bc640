#!/usr/bin/env bash
# Placeholder lifecycle gate (to be replaced by the real suite, shaped like Archy's
# tests/lifecycle). Runs every lifecycle/*.bats with the bundle's own tools first on PATH
# and prints TAP on stdout. Extra arguments go to bats before the test files.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=$(cd "$here/.." && pwd)
export PATH="$bundle/bin:$PATH"
export BATS_LIB_PATH="${BATS_LIB_PATH:-$bundle/lib}"

shopt -s nullglob
files=("$here"/*.bats)
if ((${#files[@]} == 0)); then
  echo "run-gate.sh: no .bats files in $here" >&2
  exit 2
fi
exec bats --tap "$@" "${files[@]}"
