#!/usr/bin/env bats
# Step `unshare`, on A (role a), a cleanup (scenario.toml: undoes = "share"): it also runs
# after a failure, and stops sharing the scenario's file.

setup() {
  load common
}

@test "A stops sharing the scenario's file" {
  local hash
  hash=$(cross_value file_hash 2>/dev/null) || skip "no file_hash was published: nothing was shared"
  run rpc file.unshare "$(jq -cn --arg x "$hash" '{hash: $x}')"
  assert_success
}
