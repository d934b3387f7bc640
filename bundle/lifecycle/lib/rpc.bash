# shellcheck shell=bash
# lib/rpc.bash: the node's JSON-RPC backend (${ARCHY_SCHEME}://${ARCHY_HOST}/rpc/v1) for the
# lifecycle tests. Load it with `load ../lib/rpc`.
#
# rpc METHOD [PARAMS_JSON]   prints the call's result as compact JSON; logs in with
#                            $ARCHY_PASSWORD when there is no session. A JSON-RPC error:
#                            "rpc METHOD: error CODE: MESSAGE" on stderr, status 1. The node
#                            unreachable: status 5. `rpc auth.login` logs in explicitly.
#
# Why two clients: Archy nodes are not guaranteed to have curl (a bare node may lack it, or
# carry one without TLS), and the gate must not depend on what the node happens to have. The
# launcher that runs the gate carries a JSON-RPC client, `launcher rpc`, and tells the suite
# where it is in $ARCHY_GATE_LAUNCHER; its session lives in $ARCHY_GATE_RUN_DIR/.rpc-session.
# Without it (the suite run by hand), curl is used, with a cookie jar in the run dir.
#
# Environment: ARCHY_HOST (default 127.0.0.1, may include :port), ARCHY_SCHEME (https),
# ARCHY_PASSWORD, ARCHY_ALLOW_CLEARTEXT, ARCHY_GATE_RUN_DIR, ARCHY_GATE_LAUNCHER. The password
# never goes on a command line: jq reads it from the environment and curl reads the request
# from stdin.
#
# TLS, the launcher's rule (launcher rpc --help): the certificate is verified, except on a
# loopback host (127.0.0.0/8, ::1, localhost), where nodes serve a self-signed one and the
# password never leaves the machine. Cleartext http to any other host is refused unless
# ARCHY_ALLOW_CLEARTEXT=1 says the operator means it. A peer whose certificate the fleet
# pinned (lib/peers.bash) is trusted by that certificate alone: _RPC_PEER_CERT names a file
# holding it, and curl gets it as its only CA (--cacert), on loopback too.

rpc() {
  if (($# < 1 || $# > 2)); then
    echo "usage: rpc METHOD [PARAMS_JSON]" >&2
    return 2
  fi
  if [[ -n ${ARCHY_GATE_LAUNCHER:-} ]]; then
    "$ARCHY_GATE_LAUNCHER" rpc "$@"
  else
    _rpc_curl_tls >/dev/null || return 2
    _rpc_curl "$@"
  fi
}

# _rpc_host_is_loopback HOST: status 0 when HOST (host[:port]) is this machine.
_rpc_host_is_loopback() {
  local host=$1
  case $host in
    \[*\]:* | \[*\]) host=${host#[}; host=${host%%]*} ;;
    *:*:*) ;; # a bare IPv6 address
    *:*) host=${host%:*} ;;
  esac
  [[ $host == localhost || $host == ::1 || $host =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]]
}

# _rpc_curl_tls: curl's TLS flags for ARCHY_HOST and ARCHY_SCHEME (and _RPC_PEER_CERT), one a
# line; status 2 (and why on stderr) when the launcher's rule refuses the host or the scheme.
_rpc_curl_tls() {
  local host=${ARCHY_HOST:-127.0.0.1} scheme=${ARCHY_SCHEME:-https}
  # Anything but host[:port] (user info, a path) could make curl dial another host than the
  # one judged here.
  if [[ $host =~ [@/?#[:space:]] ]]; then
    echo "rpc: ARCHY_HOST=$host is not host[:port]" >&2
    return 2
  fi
  if [[ -n ${_RPC_PEER_CERT:-} ]]; then
    if [[ $scheme != https ]]; then
      echo "rpc: a pinned peer certificate needs https, not $scheme" >&2
      return 2
    fi
    printf '%s\n' --cacert "$_RPC_PEER_CERT"
  elif _rpc_host_is_loopback "$host"; then
    echo -k
  elif [[ $scheme == http && ${ARCHY_ALLOW_CLEARTEXT:-0} != 1 ]]; then
    echo "rpc: refusing to send the password in cleartext (http) to $host: use https, or set ARCHY_ALLOW_CLEARTEXT=1" >&2
    return 2
  fi
}

_rpc_run_dir() {
  printf '%s\n' "${ARCHY_GATE_RUN_DIR:-${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}}"
}

# _rpc_post BODY: POST BODY (from stdin), print the answer; curl's status (22: HTTP error).
# curl's complaint goes to .rpc-curl.err in the run dir, for _rpc_unreachable.
_rpc_post() {
  local dir flags
  local -a tls=()
  dir=$(_rpc_run_dir)
  flags=$(_rpc_curl_tls) || return 2
  [[ -z $flags ]] || mapfile -t tls <<<"$flags"
  curl -fsS "${tls[@]}" -b "$dir/.rpc-cookies" -c "$dir/.rpc-cookies" \
    -H 'Content-Type: application/json' --data-binary @- \
    "${ARCHY_SCHEME:-https}://${ARCHY_HOST:-127.0.0.1}/rpc/v1" <<<"$1" 2>"$dir/.rpc-curl.err"
}

# _rpc_unreachable METHOD RC: say so, with curl's own words; status 5.
_rpc_unreachable() {
  echo "rpc $1: the node did not answer (curl exit $2): $(cat "$(_rpc_run_dir)/.rpc-curl.err")" >&2
  return 5
}

# _rpc_answer METHOD ANSWER: print the result, or the error on stderr and return 1.
_rpc_answer() {
  local error
  error=$(jq -r 'if (.error // null) != null then "error \(.error.code): \(.error.message)" else empty end' <<<"$2") || {
    echo "rpc $1: not a JSON-RPC answer: $2" >&2
    return 1
  }
  if [[ -n $error ]]; then
    echo "rpc $1: $error" >&2
    return 1
  fi
  jq -c '.result' <<<"$2"
}

_rpc_login() {
  local answer rc=0
  if [[ -z ${ARCHY_PASSWORD:-} ]]; then
    echo "rpc auth.login: error 34: no password to log in with: set ARCHY_PASSWORD" >&2
    return 1
  fi
  answer=$(_rpc_post "$(jq -cn '{jsonrpc: "2.0", id: 1, method: "auth.login",
    params: {password: env.ARCHY_PASSWORD}}')") || rc=$?
  if ((rc != 0)); then
    _rpc_unreachable auth.login "$rc"
    return
  fi
  _rpc_answer auth.login "$answer" >/dev/null
}

_rpc_curl() {
  local method=$1 params=${2:-null} body answer rc=0
  if [[ $method == auth.login ]]; then
    _rpc_login || return
    echo null
    return 0
  fi
  body=$(jq -cn --arg m "$method" --argjson p "$params" \
    '{jsonrpc: "2.0", id: 1, method: $m, params: $p}') || {
    echo "rpc $method: PARAMS is not JSON: $params" >&2
    return 2
  }
  answer=$(_rpc_post "$body") || rc=$?
  # Log in lazily: health needs no session; a 401 means none or a stale one.
  if ((rc == 22)) && [[ -n ${ARCHY_PASSWORD:-} ]]; then
    _rpc_login || return
    rc=0
    answer=$(_rpc_post "$body") || rc=$?
  fi
  if ((rc == 22)); then
    echo "rpc $method: error 34: unauthorized (HTTP error)" >&2
    return 1
  elif ((rc != 0)); then
    _rpc_unreachable "$method" "$rc"
    return
  fi
  _rpc_answer "$method" "$answer"
}

# rpc_state: server.get-state's result.
rpc_state() {
  rpc server.get-state
}

# package_ids: every installed package's id, one a line.
package_ids() {
  local state
  state=$(rpc_state) || return
  jq -r '.packages[].id' <<<"$state"
}

# package_json ID: that package's entry in server.get-state (fails if it is not installed).
package_json() {
  local state
  state=$(rpc_state) || return
  jq -ce --arg id "$1" '.packages[] | select(.id == $id)' <<<"$state"
}

# rpc_params_id ID: '{"id": ID}', for package.start / package.stop.
rpc_params_id() {
  jq -cn --arg id "$1" '{id: $id}'
}
