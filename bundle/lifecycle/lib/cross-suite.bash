# shellcheck shell=bash
# lib/cross-suite.bash: what every cross suite's run.sh does, once. A suite's run.sh is
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$here/../../lib/cross-suite.bash"
#   cross_suite_main "$here" "$@"
#
# cross_suite_main DIR [BATS_ARGS…] [FILE.bats…]
#   Runs the suite in DIR with the bundle's bats: the FILEs given (absolute, as the launcher
#   passes a scenario step's files, or relative to DIR, as a person types them), or every
#   file of DIR/tests when none is; other arguments go to bats. The TAP goes to stdout and
#   $ARCHY_GATE_RUN_DIR/cross.tap, bats' JUnit to $ARCHY_GATE_RUN_DIR/cross/report.xml (a
#   temporary run dir when the launcher gave none). Exits 0 when every test passed, else 1;
#   2 for a FILE that is not there.
#
# The launcher starts run.sh as it starts the gate (the bundle's bash, cwd the unpacked bundle,
# bin/ first on PATH, ARCHY_* set), with ARCHY_PEERS, ARCHY_CROSS_* and the values published by
# earlier steps besides (lib/peers.bash, lib/cross.bash; ../AUTHORING.md).

cross_suite_main() {
  local here=$1 bundle arg file rc
  shift
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

  local bats_args=() files=()
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
}
