#!/usr/bin/env bats
# This node against its peers (ARCHY_PEERS): they answer, and they run what this node runs.

setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
  load ../../../lib/rpc
  load ../../../lib/peers
}

@test "ARCHY_PEERS names the suite's other nodes" {
  run peers_check
  assert_success
  [[ -n $(peer_names) ]] || fail "ARCHY_PEERS lists no peer: $ARCHY_PEERS"
}

@test "every peer's RPC answers health from this node" {
  local name answer problems=''
  for name in $(peer_names); do
    if ! answer=$(peer_rpc "$name" health 2>&1); then
      problems+="$name ($(peer_host "$name")): $answer"$'\n'
    elif [[ $(jq -r '.status // empty' <<<"$answer") != ok ]]; then
      problems+="$name ($(peer_host "$name")): health says $answer"$'\n'
    fi
  done
  [[ -z $problems ]] || fail "$problems"
}

@test "every peer runs the same package versions as this node" {
  local mine theirs diff name problems='' compared=0
  mine=$(own_packages) || fail "this node's package list: $mine"
  for name in $(peer_names); do
    theirs=$(peer_packages "$name") || continue
    compared=$((compared + 1))
    diff=$(version_differences "$name" "$mine" "$theirs")
    [[ -z $diff ]] || problems+="$diff"$'\n'
  done
  ((compared > 0)) || skip "no peer's package list in ARCHY_PEERS (the fleet fills it)"
  [[ -z $problems ]] || fail "$problems"
}
