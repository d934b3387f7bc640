# shellcheck shell=bash
# lib/node.bash: what the node's own tools say about its packages, for the lifecycle tests.
# Load it after lib/rpc.bash. Each *_problems function prints one line per problem, naming
# the package ("lnd: container lnd-tor is exited (Exited (0) 5 minutes ago)"), nothing when all
# is well; it fails only when it could not look. With IDs it looks at those packages, else at
# every installed one.

# package_problems [ID…]: packages not running and healthy.
package_problems() {
  local state
  state=$(rpc_state) || return
  jq -r '($ARGS.positional) as $ids
    | .packages[] | select(($ids | length) == 0 or (.id as $id | $ids | index($id)))
    | select(.state != "running" or .health != "healthy")
    | "\(.id): state \(.state), health \(.health)"' --args "$@" <<<"$state"
}

# podman_ps_json FILE: `podman ps -a --format json` into FILE.
podman_ps_json() {
  podman ps -a --format json >"$1"
}

# container_problems [ID…]: containers of packages that are missing or not running. A
# package's containers: those server.get-state lists, and those labelled io.archy.package=ID.
container_problems() {
  local state ps
  state=$(rpc_state) || return
  ps=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/podman-ps.XXXXXX")
  podman_ps_json "$ps" || return
  jq -r --slurpfile ps "$ps" '($ARGS.positional) as $ids | ($ps[0] // []) as $ps
    | .packages[] | select(($ids | length) == 0 or (.id as $id | $ids | index($id)))
    | .id as $id
    | ((.containers // [])
       + [$ps[] | select((.Labels // {})["io.archy.package"] == $id) | .Names[0]]
      | unique)[] as $c
    | ([$ps[] | select(.Names | index($c))] | first) as $x
    | if $x == null then "\($id): container \($c) does not exist"
      elif $x.State != "running" then "\($id): container \($c) is \($x.State) (\($x.Status))"
      else empty end' --args "$@" <<<"$state"
}

# containers_running_problems ID: containers of package ID still running (after a stop).
containers_running_problems() {
  local state ps
  state=$(rpc_state) || return
  ps=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/podman-ps.XXXXXX")
  podman_ps_json "$ps" || return
  jq -r --slurpfile ps "$ps" --arg id "$1" '($ps[0] // []) as $ps
    | .packages[] | select(.id == $id) | .containers[] as $c
    | $ps[] | select((.Names | index($c)) and .State == "running")
    | "\($id): container \($c) is still running (\(.Status))"' <<<"$state"
}

# orphan_container_problems: running containers that no installed package owns.
orphan_container_problems() {
  local state ps
  state=$(rpc_state) || return
  ps=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/podman-ps.XXXXXX")
  podman_ps_json "$ps" || return
  jq -r --slurpfile ps "$ps" '[.packages[].id] as $ids | [.packages[].containers[]] as $owned
    | $ps[0][] | select(.State == "running")
    | select((.Names[0] as $n | $owned | index($n)) | not)
    | select(((.Labels // {})["io.archy.package"] // "") as $p | $ids | index($p) | not)
    | "container \(.Names[0]) (\(.Image)) runs, but no installed package owns it"' <<<"$state"
}

# unit_problems [ID…]: quadlet units of packages that are not active.
unit_problems() {
  local state id unit status
  state=$(rpc_state) || return
  while IFS=$'\t' read -r id unit; do
    status=$(systemctl --user is-active "$unit" 2>&1) || echo "$id: unit $unit is ${status:-not active}"
  done < <(jq -r '($ARGS.positional) as $ids
    | .packages[] | select(($ids | length) == 0 or (.id as $id | $ids | index($id)))
    | .id as $id | (.units // [])[] | "\($id)\t\(.)"' --args "$@" <<<"$state")
}

# wait_until SECONDS CHECK [ARGS…]: run CHECK every ${ARCHY_WAIT_INTERVAL:-2}s until it prints
# nothing and succeeds; after SECONDS, print what it last said and fail.
wait_until() {
  local limit=$1 said start=$SECONDS
  shift
  while :; do
    if said=$("$@" 2>&1) && [[ -z $said ]]; then
      return 0
    fi
    if ((SECONDS - start >= limit)); then
      echo "still after ${limit}s: $said"
      return 1
    fi
    sleep "${ARCHY_WAIT_INTERVAL:-2}"
  done
}
