#!/usr/bin/env bats
# Step `share`, on A (role a): A shares a file of its own making, and tells the later steps
# the hash its node gave it, the name, and the content's sha256 as computed here.

setup() {
  load common
}

@test "A shares a file and publishes its hash, name and content's sha256" {
  local name content answer hash
  name=file-fetch-${ARCHY_GATE_RUN_ID:-by-hand}.txt
  content="archy-gate file-fetch scenario: shared by ${ARCHY_CROSS_NODE:-A}, run ${ARCHY_GATE_RUN_ID:-by hand}, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  answer=$(rpc file.share "$(jq -cn --arg n "$name" --arg c "$content" '{name: $n, content: $c}')")
  hash=$(jq -er '.hash' <<<"$answer") || fail "file.share gave no hash: $answer"
  cross_publish file_hash "$hash"
  cross_publish file_name "$name"
  cross_publish file_sha256 "$(printf '%s' "$content" | sha256_of)"
}
