#!/usr/bin/env bats
# Step `request`, on A (role a): A asks B to be a contact, and tells the later steps who A is.

setup() {
  load common
}

@test "A publishes its DID as a_did" {
  local did
  did=$(own_did)
  [[ $did == did:* ]] || fail "node.identity gave no DID: $did"
  cross_publish a_did "$did"
}

@test "A asks B to be a contact" {
  local host
  host=$(peer_host "$(peer_of_role b)")
  run rpc contact.request "$(jq -cn --arg h "$host" '{host: $h}')"
  assert_success
}

@test "A lists its request to B as outgoing" {
  local host list
  host=$(peer_host "$(peer_of_role b)")
  list=$(rpc contact.list)
  jq -e --arg h "$host" '(.outgoing + .contacts) | any(.host == $h)' <<<"$list" >/dev/null ||
    fail "no request to $host in contact.list: $list"
}
