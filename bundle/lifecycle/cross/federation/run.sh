#!/usr/bin/env bash
# cross/federation/run.sh: an example cross-node suite. It runs on one node of a fleet (the
# roster's `[[cross]] suite = "federation"`), and checks that node against its peers: every
# peer's RPC answers from here, and every peer runs the same package versions as this node.
#
# Usage: run.sh [BATS_ARGS…] [FILE.bats…]
#
# FILEs (relative to this suite's dir, e.g. tests/federation.bats) are the tests to run, as a
# scenario step names them; with none, every file in tests/. Other arguments go to bats.
#
# What it does, and what it gets from the launcher: lib/cross-suite.bash.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../lib/cross-suite.bash
source "$here/../../lib/cross-suite.bash"
cross_suite_main "$here" "$@"
