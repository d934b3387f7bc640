#!/usr/bin/env bats
# Step `served`, on A (role a): A's log of the fetches it served shows B's, by B's DID and
# from B's address: the file really travelled between the two nodes.

setup() {
  load common
}

@test "A's served log shows B's fetch, by B's DID, from B's address" {
  local hash b_did addr served
  hash=$(cross_value file_hash)
  b_did=$(cross_value b_did)
  addr=$(address_of "$(peer_host "$(peer_of_role b)")")
  served=$(rpc file.served)
  jq -e --arg h "$hash" --arg d "$b_did" --arg a "$addr" \
    '.fetches | any(.hash == $h and .by_did == $d and .from_addr == $a)' <<<"$served" >/dev/null ||
    fail "no fetch of $hash by $b_did from $addr; served: $served"
}
