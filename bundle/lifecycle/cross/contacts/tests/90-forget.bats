#!/usr/bin/env bats
# Step `forget`, on A and B, a cleanup (scenario.toml: undoes = "request"): it also runs after
# a failure, so it removes whatever this node knows of the other, however far the scenario
# got: the DIDs earlier steps published, and any entry at a peer's address.

setup() {
  load common
}

@test "this node forgets the other node as a contact, request or acceptance" {
  local me list name dids=() did left
  me=$(own_did)
  for name in a_did b_did; do
    did=$(cross_value "$name" 2>/dev/null) || continue
    [[ $did == "$me" ]] || dids+=("$did")
  done
  list=$(rpc contact.list)
  while IFS= read -r did; do
    [[ -n $did ]] && dids+=("$did")
  done < <(jq -r --argjson peers "${ARCHY_PEERS:-[]}" \
    '($peers | map(.host)) as $hosts | (.contacts + .incoming + .outgoing)[]
     | select(.host as $h | $hosts | index($h)) | .did' <<<"$list")
  for did in "${dids[@]}"; do
    run rpc contact.remove "$(jq -cn --arg d "$did" '{did: $d}')"
    assert_success
  done
  list=$(rpc contact.list)
  for did in "${dids[@]}"; do
    left=$(jq -c --arg d "$did" '[(.contacts + .incoming + .outgoing)[] | select(.did == $d)]' <<<"$list")
    assert_equal "$left" "[]"
  done
}
