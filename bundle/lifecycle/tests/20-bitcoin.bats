#!/usr/bin/env bats
# Bitcoin is fully synced and archival (not pruned). Skipped on a node without bitcoin-cli.
# ARCHY_BITCOIN_CLI: the command to ask (default bitcoin-cli; e.g. "podman exec bitcoind
# bitcoin-cli"); words are split on spaces.

setup() {
  load common
  read -r -a bitcoin_cli <<<"${ARCHY_BITCOIN_CLI:-bitcoin-cli}"
  command -v "${bitcoin_cli[0]}" >/dev/null || skip "no ${bitcoin_cli[0]} on this node: bitcoin is not installed"
  info=$("${bitcoin_cli[@]}" getblockchaininfo) || fail "${bitcoin_cli[*]} getblockchaininfo failed: $info"
}

@test "bitcoin is synced" {
  summary=$(jq -r '"blocks \(.blocks) of \(.headers) headers, verification progress \(.verificationprogress)"' <<<"$info")
  [[ $(jq -r .initialblockdownload <<<"$info") == false ]] ||
    fail "bitcoin is still in initial block download: $summary"
  jq -e '.headers - .blocks <= 1' <<<"$info" >/dev/null ||
    fail "bitcoin is behind its headers: $summary"
}

@test "bitcoin is not pruned" {
  [[ $(jq -r .pruned <<<"$info") == false ]] ||
    fail "bitcoin is pruned (prune height $(jq -r '.pruneheight // "unknown"' <<<"$info")): the gate needs an archival node"
}
