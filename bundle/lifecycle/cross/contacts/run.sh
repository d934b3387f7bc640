#!/usr/bin/env bash
# cross/contacts/run.sh: an example scenario (scenario.toml beside it): contact federation
# between two nodes, A (role a) and B (role b). A asks B to be a contact; B sees the request
# from A's DID and accepts it; A lists B as a contact; a cleanup step forgets it on both.
# Every step runs on its node's stand-in (or Archy) RPC with that node's own password, and
# passes only if the request and the acceptance really travelled between the two nodes.
#
# Usage: run.sh [BATS_ARGS…] [FILE.bats…]
#
# FILEs (relative to this suite's dir, e.g. tests/10-request.bats) are the tests to run, as a
# scenario step names them; with none, every file in tests/. Other arguments go to bats.
#
# The launcher starts it as it starts the gate (the bundle's bash, cwd the unpacked bundle,
# bin/ first on PATH, ARCHY_* set), with ARCHY_PEERS, ARCHY_CROSS_* and the values published
# by earlier steps besides (lib/cross.bash; ../../AUTHORING.md). The TAP goes to
# $ARCHY_GATE_RUN_DIR/cross.tap, bats' JUnit to $ARCHY_GATE_RUN_DIR/cross/report.xml.
# Exit 0 when every test passed, else 1 (2: a FILE that is not there).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=$(cd "$here/../../.." && pwd)
if [[ -d $bundle/bin ]]; then
  export PATH="$bundle/bin:$PATH"
fi
export BATS_LIB_PATH="${BATS_LIB_PATH:-$bundle/lib}"

if [[ -z ${ARCHY_GATE_RUN_DIR:-} ]]; then
  ARCHY_GATE_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/archy-gate-cross.XXXXXX")
  echo "run.sh: ARCHY_GATE_RUN_DIR is not set; the reports go to $ARCHY_GATE_RUN_DIR" >&2
fi
export ARCHY_GATE_RUN_DIR
mkdir -p "$ARCHY_GATE_RUN_DIR/cross"

bats_args=() files=()
for arg in "$@"; do
  case $arg in
    *.bats)
      file=$arg
      [[ $file == /* ]] || file=$here/$arg
      [[ -f $file ]] || {
        echo "run.sh: no test file $arg in ${here##*/lifecycle/}" >&2
        exit 2
      }
      files+=("$file")
      ;;
    *) bats_args+=("$arg") ;;
  esac
done
((${#files[@]} > 0)) || files=("$here/tests")

echo "# cross suite ${ARCHY_CROSS_SUITE:-${here##*/}} on ${ARCHY_CROSS_NODE:-this node} (role ${ARCHY_CROSS_ROLE:-none})${ARCHY_CROSS_STEP:+, step $ARCHY_CROSS_STEP attempt ${ARCHY_CROSS_ATTEMPT:-1}}"
set +e
bats --tap --report-formatter junit --output "$ARCHY_GATE_RUN_DIR/cross" "${bats_args[@]}" "${files[@]}" |
  tee "$ARCHY_GATE_RUN_DIR/cross.tap"
rc=${PIPESTATUS[0]}
set -e
exit $((rc == 0 ? 0 : 1))
