#!/usr/bin/env bats
# Step `accept`, on B (role b), retried until it passes (scenario.toml: eventually): the
# request from A's DID arrives some time after A made it; B accepts it, and tells the later
# steps who B is. Written so a later attempt picks up where an earlier one stopped.

setup() {
  load common
}

@test "B has received a contact request from A's DID" {
  local a_did list
  a_did=$(cross_value a_did)
  list=$(rpc contact.list)
  jq -e --arg d "$a_did" '(.incoming + .contacts) | any(.did == $d)' <<<"$list" >/dev/null ||
    fail "no contact request from $a_did (yet); incoming: $(jq -c .incoming <<<"$list")"
}

@test "B accepts A's request, and lists A as a contact" {
  local a_did
  a_did=$(cross_value a_did)
  if [[ -n $(contact_entry incoming "$a_did") ]]; then
    run rpc contact.accept "$(jq -cn --arg d "$a_did" '{did: $d}')"
    assert_success
  fi
  [[ -n $(contact_entry contacts "$a_did") ]] ||
    fail "$a_did is not among B's contacts: $(rpc contact.list)"
}

@test "B publishes its DID as b_did" {
  local did
  did=$(own_did)
  [[ $did == did:* ]] || fail "node.identity gave no DID: $did"
  cross_publish b_did "$did"
}
