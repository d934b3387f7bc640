# shellcheck shell=bash
# lib/peers.bash: a cross-node suite's peers, for suites under cross/. Load it after
# lib/rpc.bash.
#
# ARCHY_PEERS is a JSON array, one object per other node of the suite:
#   {"name": "n198", "host": "192.168.1.198", "role": "client",
#    "packages": [{"id": "lnd", "version": "0.18.0"}, …],
#    "cert": "-----BEGIN CERTIFICATE-----…", "cert_sha256": "3f9a…"}
# `host` is the peer's RPC as this node reaches it; `packages` is what the fleet read from the
# peer with the peer's own password just before the suite started (absent when run by hand);
# `cert` is the certificate the peer's RPC serves, as the fleet read it on the peer itself over
# its own SSH connection, and `cert_sha256` the sha256 of its DER (both absent when run by
# hand). No peer's password is ever here: a peer's RPC is called anonymously (health needs none).
#
# peers_check              status 0 when ARCHY_PEERS is an array of peers; else why, status 2
# peer_names               every peer's name, one a line
# peer_host NAME           that peer's RPC host
# peer_packages NAME       that peer's packages, [{"id", "version"}…]; status 3 when the fleet
#                          gave none
# peer_rpc NAME METHOD     call METHOD on that peer's RPC without any password or session of
#                          this node's (launcher rpc --anonymous, or curl with a fresh jar);
#                          with a cert in ARCHY_PEERS, trusting that certificate and no other
#                          (launcher rpc --pin-sha256; curl --cacert of that PEM alone), so a
#                          peer serving another one is refused, with both fingerprints said
# peer_cert_sha256 NAME    that peer's pinned certificate's sha256; status 3 when none
# peer_of_role ROLE        the name of the peer that holds ROLE (a scenario's roles); status 2,
#                          and why, when none does
# own_packages             this node's packages, [{"id", "version"}…] (its own RPC, password)
# own_did                  this node's DID (node.identity on its own RPC, password)
# version_differences PEER MINE THEIRS
#                          one line per package whose version differs between two such lists,
#                          naming it ("n198: lnd 0.18.0 here, 0.17.5 there"); nothing if none

peers_check() {
  jq -e 'type == "array" and all(.[]; type == "object" and (.name | type) == "string"
    and (.host | type) == "string")' <<<"${ARCHY_PEERS:-null}" >/dev/null 2>&1 || {
    echo "ARCHY_PEERS is not a JSON array of peers with a name and a host: ${ARCHY_PEERS:-(unset)}" >&2
    return 2
  }
}

peer_names() {
  jq -r '.[].name' <<<"$ARCHY_PEERS"
}

peer_host() {
  jq -er --arg n "$1" '.[] | select(.name == $n) | .host' <<<"$ARCHY_PEERS"
}

peer_packages() {
  local list
  list=$(jq -c --arg n "$1" '.[] | select(.name == $n) | .packages // null' <<<"$ARCHY_PEERS")
  [[ $list != null && -n $list ]] || return 3
  printf '%s\n' "$list"
}

peer_cert_sha256() {
  local sha
  sha=$(jq -r --arg n "$1" '.[] | select(.name == $n) | .cert_sha256 // empty' <<<"$ARCHY_PEERS")
  [[ -n $sha ]] || return 3
  printf '%s\n' "$sha"
}

peer_rpc() {
  local host pin=''
  host=$(peer_host "$1") || {
    echo "peer_rpc: no peer $1 in ARCHY_PEERS" >&2
    return 2
  }
  pin=$(peer_cert_sha256 "$1") || pin=''
  if [[ -n ${ARCHY_GATE_LAUNCHER:-} ]]; then
    local -a trust=()
    [[ -z $pin ]] || trust=(--pin-sha256 "$pin")
    "$ARCHY_GATE_LAUNCHER" rpc --anonymous --host "$host" "${trust[@]}" "$2"
  else
    (
      unset ARCHY_PASSWORD
      ARCHY_HOST=$host
      ARCHY_GATE_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/peer-rpc.XXXXXX")
      export ARCHY_HOST ARCHY_GATE_RUN_DIR
      trap 'rm -rf "$ARCHY_GATE_RUN_DIR"' EXIT
      if [[ -n $pin ]]; then
        # The peer's own certificate as curl's only CA: a server without its key cannot
        # pass. (curl's --pinnedpubkey would want the key's hash, which jq and bash cannot
        # derive from the PEM.)
        _RPC_PEER_CERT=$ARCHY_GATE_RUN_DIR/peer.pem
        jq -r --arg n "$1" '.[] | select(.name == $n) | .cert' <<<"$ARCHY_PEERS" >"$_RPC_PEER_CERT"
      fi
      _rpc_curl_tls >/dev/null || exit 2
      _rpc_curl "$2"
    )
  fi
}

peer_of_role() {
  local name
  name=$(jq -r --arg r "$1" '[.[] | select(.role == $r) | .name][0] // empty' <<<"${ARCHY_PEERS:-[]}")
  if [[ -z $name ]]; then
    echo "no peer with role $1 in ARCHY_PEERS: ${ARCHY_PEERS:-(unset)}" >&2
    return 2
  fi
  printf '%s\n' "$name"
}

own_did() {
  local answer
  answer=$(rpc node.identity) || return
  jq -er '.did' <<<"$answer"
}

own_packages() {
  local state
  state=$(rpc_state) || return
  jq -c '[.packages[] | {id, version}]' <<<"$state"
}

version_differences() {
  jq -rn --arg peer "$1" --argjson mine "$2" --argjson theirs "$3" '
    ($mine | map({(.id): .version}) | add // {}) as $m
    | ($theirs | map({(.id): .version}) | add // {}) as $t
    | (($m + $t) | keys[]) as $id
    | select($m[$id] != $t[$id])
    | if $m[$id] == null then "\($peer): \($id) \($t[$id]) there, not installed here"
      elif $t[$id] == null then "\($peer): \($id) \($m[$id]) here, not installed there"
      else "\($peer): \($id) \($m[$id]) here, \($t[$id]) there" end'
}
