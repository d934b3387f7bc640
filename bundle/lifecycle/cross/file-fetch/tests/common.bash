# shellcheck shell=bash
# Loaded by every test file of this suite (`load common` in setup): the bats helpers, this
# node's RPC (lib/rpc.bash: its own host and password, never a peer's), its peers
# (lib/peers.bash) and the values earlier steps published (lib/cross.bash).
bats_load_library bats-support
bats_load_library bats-assert
load ../../../lib/rpc
load ../../../lib/peers
load ../../../lib/cross

# address_of HOST: the address part of a host[:port] (an IPv6 address without its brackets).
address_of() {
  local host=$1
  case $host in
    \[*\]:* | \[*\]) host=${host#[}; host=${host%%]*} ;;
    *:*:*) ;; # a bare IPv6 address
    *:*) host=${host%:*} ;;
  esac
  printf '%s\n' "$host"
}

# sha256_of: the sha256 (hex) of standard input.
sha256_of() {
  local sum
  sum=$(sha256sum) || return
  printf '%s\n' "${sum%% *}"
}
