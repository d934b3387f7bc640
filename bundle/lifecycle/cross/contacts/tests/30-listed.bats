#!/usr/bin/env bats
# Step `listed`, on A (role a), retried until it passes (scenario.toml: eventually): B's
# acceptance reaches A some time after B accepted; then A lists B as a contact.

setup() {
  load common
}

@test "A lists B's DID as a contact, at B's address" {
  local b_did host entry
  b_did=$(cross_value b_did)
  host=$(peer_host "$(peer_of_role b)")
  entry=$(contact_entry contacts "$b_did")
  [[ -n $entry ]] || fail "B ($b_did) is not among A's contacts (yet): $(rpc contact.list)"
  assert_equal "$(jq -r .host <<<"$entry")" "$host"
}

@test "A's request to B is no longer outgoing" {
  local b_did
  b_did=$(cross_value b_did)
  [[ -z $(contact_entry outgoing "$b_did") ]] ||
    fail "the request to $b_did is still outgoing: $(rpc contact.list)"
}
