# shellcheck shell=bash
# Loaded by every test file of this suite (`load common` in setup): the bats helpers, this
# node's RPC (lib/rpc.bash: its own host and password, never a peer's), its peers
# (lib/peers.bash) and the values earlier steps published (lib/cross.bash).
bats_load_library bats-support
bats_load_library bats-assert
load ../../../lib/rpc
load ../../../lib/peers
load ../../../lib/cross

# contact_entry LIST DID: the {"did", "host"} of DID in contact.list's LIST (contacts,
# incoming or outgoing) as compact JSON, or nothing.
contact_entry() {
  jq -c --arg l "$1" --arg d "$2" '.[$l][] | select(.did == $d)' <<<"$(rpc contact.list)"
}
