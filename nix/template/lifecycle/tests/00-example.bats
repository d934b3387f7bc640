#!/usr/bin/env bats
# One file a lifecycle phase; bats runs them in name order. Replace these with your checks.

setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
}

@test "the bundle's bash runs the suite" {
  run bash -c 'echo "${BASH_VERSINFO[0]}"'
  assert_success
  assert_output 5
}

@test "the bundle's jq reads JSON" {
  run jq -r '.state' <<<'{"state": "running"}'
  assert_success
  assert_output running
}
