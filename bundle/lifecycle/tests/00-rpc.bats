#!/usr/bin/env bats
# The node's JSON-RPC backend answers and guards itself with the password.

setup() {
  load common
}

@test "the RPC answers health" {
  run rpc health
  assert_success
  assert_equal "$(jq -r .status <<<"$output")" ok
}

@test "login with the node's password works" {
  run rpc auth.login
  assert_success
  assert_output null
  run rpc_state
  assert_success
  jq -e '.packages | type == "array"' <<<"$output" >/dev/null || fail "server.get-state has no package list: $output"
}

# With a wrong password, in a fresh session: the run dir's session must not log it in.
wrong_password_login() {
  export ARCHY_PASSWORD=wrong ARCHY_GATE_RUN_DIR="$BATS_TEST_TMPDIR/fresh-session"
  mkdir -p "$ARCHY_GATE_RUN_DIR"
  rpc auth.login
}

@test "a wrong password is refused" {
  run wrong_password_login
  assert_failure 1
  assert_output --partial "rpc auth.login: error 34"
  refute_output --partial null
}
