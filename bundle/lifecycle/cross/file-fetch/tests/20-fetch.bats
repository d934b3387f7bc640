#!/usr/bin/env bats
# Step `fetch`, on B (role b): B fetches A's file by its hash from A, over the network, and
# checks the bytes against the sha256 A computed; then tells the later steps who B is.

setup() {
  load common
}

@test "B fetches A's file by its hash, from A, and gets A's bytes" {
  local host hash answer
  host=$(peer_host "$(peer_of_role a)")
  hash=$(cross_value file_hash)
  answer=$(rpc file.fetch "$(jq -cn --arg h "$host" --arg x "$hash" '{host: $h, hash: $x}')")
  assert_equal "$(jq -r .hash <<<"$answer")" "$hash"
  assert_equal "$(jq -r .name <<<"$answer")" "$(cross_value file_name)"
  assert_equal "$(jq -j .content <<<"$answer" | sha256_of)" "$(cross_value file_sha256)"
}

@test "a hash A never shared is refused, naming A" {
  local host
  host=$(peer_host "$(peer_of_role a)")
  run rpc file.fetch "$(jq -cn --arg h "$host" --arg x "$(printf '0%.0s' {1..64})" '{host: $h, hash: $x}')"
  assert_failure
  assert_output --partial "$host"
}

@test "B publishes its DID as b_did" {
  local did
  did=$(own_did)
  [[ $did == did:* ]] || fail "node.identity gave no DID: $did"
  cross_publish b_did "$did"
}
