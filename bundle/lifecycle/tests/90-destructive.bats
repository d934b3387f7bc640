#!/usr/bin/env bats
# Stops and starts packages. Every test skips unless ARCHY_ALLOW_DESTRUCTIVE=1.
# ARCHY_WAIT_TIMEOUT: seconds to wait for a package to settle (default 300).

setup() {
  load common
  [[ ${ARCHY_ALLOW_DESTRUCTIVE:-0} == 1 ]] || skip "destructive: set ARCHY_ALLOW_DESTRUCTIVE=1 to run"
  state=$(rpc_state) || fail "cannot read the node's state"
  jq -e '.packages[] | select(.id == "lnd")' <<<"$state" >/dev/null || skip "package lnd is not installed"
  timeout=${ARCHY_WAIT_TIMEOUT:-300}
}

# lnd_is_stopped: prints what is not yet stopped about lnd.
lnd_is_stopped() {
  local p
  p=$(package_json lnd) || return
  jq -r 'select(.state != "stopped") | "lnd: state \(.state), health \(.health)"' <<<"$p"
  containers_running_problems lnd
}

lnd_is_up() {
  package_problems lnd
  container_problems lnd
  unit_problems lnd
}

everything_is_up() {
  package_problems
  container_problems
  unit_problems
}

@test "stopping package lnd stops it and its containers" {
  run rpc package.stop "$(rpc_params_id lnd)"
  assert_success
  problems=$(wait_until "$timeout" lnd_is_stopped) || fail "lnd did not stop: $problems"
}

@test "starting package lnd brings it back running and healthy" {
  run rpc package.start "$(rpc_params_id lnd)"
  assert_success
  problems=$(wait_until "$timeout" lnd_is_up) || fail "lnd did not come back: $problems"
}

@test "a restart survives: after stopping and starting lnd every package is healthy" {
  rpc package.stop "$(rpc_params_id lnd)" >/dev/null
  problems=$(wait_until "$timeout" lnd_is_stopped) || fail "lnd did not stop: $problems"
  rpc package.start "$(rpc_params_id lnd)" >/dev/null
  problems=$(wait_until "$timeout" everything_is_up) || fail "not every package came back: $problems"
}
