# shellcheck shell=bash
# Loaded by every test file's setup: the bats helper libraries and the suite's own.
bats_load_library bats-support
bats_load_library bats-assert
load ../lib/rpc
load ../lib/node

# fail_on PROBLEMS: fail the test with PROBLEMS (one a line, naming the culprits) unless empty.
fail_on() {
  [[ -z $1 ]] || fail "$1"
}
