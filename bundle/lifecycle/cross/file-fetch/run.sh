#!/usr/bin/env bash
# cross/file-fetch/run.sh: an example scenario (scenario.toml beside it): peer file fetch
# between two nodes, A (role a) and B (role b). A shares a file and publishes its hash and
# its content's sha256; B fetches that hash from A over the network and checks the bytes; A's
# log of served fetches shows B's DID and B's address; a cleanup step unshares the file.
#
# Usage: run.sh [BATS_ARGS…] [FILE.bats…]
#
# FILEs (relative to this suite's dir, e.g. tests/10-share.bats) are the tests to run, as a
# scenario step names them; with none, every file in tests/. Other arguments go to bats.
#
# What it does, and what it gets from the launcher: lib/cross-suite.bash.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../lib/cross-suite.bash
source "$here/../../lib/cross-suite.bash"
cross_suite_main "$here" "$@"
