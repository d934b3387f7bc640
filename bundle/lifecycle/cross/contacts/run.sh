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
# What it does, and what it gets from the launcher: lib/cross-suite.bash.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../lib/cross-suite.bash
source "$here/../../lib/cross-suite.bash"
cross_suite_main "$here" "$@"
