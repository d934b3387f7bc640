# shellcheck shell=bash
# lib/cross.bash: values passed between the steps of a cross-node scenario. Load it with
# `load ../../../lib/cross` from a test under cross/<suite>/tests/.
#
# A step publishes named values; the fleet collects them when the step ends and hands every
# value published so far to the later steps, on whichever node they run.
#
# cross_publish NAME VALUE   record VALUE (a string) under NAME for the later steps. NAME is
#                            [a-z][a-z0-9_]{0,62}. The file $ARCHY_CROSS_PUBLISH is one JSON
#                            object name -> value, rewritten (jq) on each call; publishing a
#                            NAME again replaces its value. Refused (status 2, and why on
#                            stderr): a bad NAME, no file to write to, a VALUE holding this
#                            node's password (the fleet refuses any node's password too).
# cross_value NAME           print the value an earlier step published as NAME (from
#                            $ARCHY_CROSS_VALUES, a JSON object name -> string); status 3,
#                            and says so on stderr, when none was; status 2 when
#                            ARCHY_CROSS_VALUES is not a JSON object.
#
# Values are data, for names, identities, hashes: the fleet bounds their total size (16 KiB)
# and writes them into its reports. Never publish a secret.

cross_publish() {
  if (($# != 2)); then
    echo "usage: cross_publish NAME VALUE" >&2
    return 2
  fi
  local name=$1 file=${ARCHY_CROSS_PUBLISH:-} current
  if ! [[ $name =~ ^[a-z][a-z0-9_]{0,62}$ ]]; then
    echo "cross_publish: '$name' is not a value name ([a-z][a-z0-9_]{0,62})" >&2
    return 2
  fi
  if [[ -z $file && -n ${ARCHY_GATE_RUN_DIR:-} ]]; then
    file=$ARCHY_GATE_RUN_DIR/published.json
  fi
  if [[ -z $file ]]; then
    echo "cross_publish $name: ARCHY_CROSS_PUBLISH is not set (nor ARCHY_GATE_RUN_DIR): nowhere to publish" >&2
    return 2
  fi
  # Said without the value: it would put the password in the log.
  if [[ -n ${ARCHY_PASSWORD:-} && $2 == *"$ARCHY_PASSWORD"* ]]; then
    echo "cross_publish $name: refused: the value holds this node's password" >&2
    return 2
  fi
  current='{}'
  if [[ -s $file ]]; then
    current=$(jq -ce 'if type == "object" then . else error("not an object") end' "$file") || {
      echo "cross_publish $name: $file is not a JSON object of values" >&2
      return 2
    }
  fi
  # The value goes to jq through its environment, not its command line.
  CROSS_VALUE=$2 jq -c --arg n "$name" '. + {($n): env.CROSS_VALUE}' <<<"$current" >"$file.tmp" &&
    mv -f "$file.tmp" "$file"
}

cross_value() {
  if (($# != 1)); then
    echo "usage: cross_value NAME" >&2
    return 2
  fi
  local values=${ARCHY_CROSS_VALUES:-'{}'} found
  if ! jq -e 'type == "object"' <<<"$values" >/dev/null 2>&1; then
    echo "cross_value $1: ARCHY_CROSS_VALUES is not a JSON object: $values" >&2
    return 2
  fi
  found=$(jq -c --arg n "$1" 'if has($n) then .[$n] else empty end' <<<"$values")
  if [[ -z $found ]]; then
    echo "cross_value $1: no earlier step published '$1' (published: $(jq -r 'if length == 0 then "none" else keys | join(", ") end' <<<"$values"))" >&2
    return 3
  fi
  jq -r 'if type == "string" then . else tojson end' <<<"$found"
}
