# shellcheck shell=bash
# Loaded by every test file of this suite (`load common` in setup): the bats helpers, this
# node's RPC (lib/rpc.bash: its own host and password, never a peer's), its peers
# (lib/peers.bash) and the values earlier steps published (lib/cross.bash).
bats_load_library bats-support
bats_load_library bats-assert
load ../../../lib/rpc
load ../../../lib/peers
load ../../../lib/cross

# peer_of_role ROLE: the name of the peer that holds ROLE in this scenario (ARCHY_PEERS);
# status 2, and why, when none does.
peer_of_role() {
  local name
  name=$(jq -r --arg r "$1" '[.[] | select(.role == $r) | .name][0] // empty' <<<"${ARCHY_PEERS:-[]}")
  if [[ -z $name ]]; then
    echo "no peer with role $1 in ARCHY_PEERS: ${ARCHY_PEERS:-(unset)}" >&2
    return 2
  fi
  printf '%s\n' "$name"
}

# own_did: this node's DID (node.identity).
own_did() {
  local answer
  answer=$(rpc node.identity) || return
  jq -er '.did' <<<"$answer"
}

# contact_entry LIST DID: the {"did", "host"} of DID in contact.list's LIST (contacts,
# incoming or outgoing) as compact JSON, or nothing.
contact_entry() {
  jq -c --arg l "$1" --arg d "$2" '.[$l][] | select(.did == $d)' <<<"$(rpc contact.list)"
}
