#!/usr/bin/env bats
# Placeholder smoke test: proves the bundle's jq, bash and bats helper libraries work.

setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
}

@test "jq from the bundle parses JSON" {
  run jq -cn '{gate: "archy", ok: true} | [.gate, .ok]'
  assert_success
  assert_output '["archy",true]'
}

@test "bash from the bundle runs the tests" {
  run bash -c 'echo "${BASH_VERSINFO[0]}"'
  assert_success
  assert [ "$output" -ge 4 ]
}
