#!/usr/bin/env bash
# The single file's size, and what each tool contributes to it.
#
#   bench/size.sh [BUNDLE_DIR]     (default: builds one with bundle/build.sh into target/size-bundle)
#
# Per part: unpacked bytes, and bytes after `gzip -9` on its own (the payload
# is one gzip stream, so the shares are estimates; the total is exact).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-}
if [[ -z $dir ]]; then
  dir=target/size-bundle
  bundle/build.sh "$dir" >/dev/null 2>&1
fi
bundle=$dir/archy-gate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bundle" extract --to "$work/x" >/dev/null

size=$(stat -c %s "$bundle")
offset=$(od -An -t u8 -j $((size - 56)) -N 8 "$bundle" | tr -d ' ')
length=$(od -An -t u8 -j $((size - 48)) -N 8 "$bundle" | tr -d ' ')

part() { # part NAME PATH...: unpacked and gzip -9 bytes of PATHs (files or dirs)
  local name=$1 raw gz
  shift
  raw=$(cd "$work/x" && find "$@" -type f -exec cat {} + | wc -c)
  gz=$(cd "$work/x" && find "$@" -type f -exec cat {} + | gzip -9n | wc -c)
  printf '%-28s %10d %10d\n' "$name" "$raw" "$gz"
}

printf '%-28s %10s %10s\n' part unpacked gzipped
printf '%-28s %10d %10s\n' "launcher (head, static)" "$offset" "-"
part "bash (bin/bash)" bin/bash
part "jq (bin/jq)" bin/jq
part "bats-core" lib/bats-core
part "bats-support/assert/file" lib/bats-support lib/bats-assert lib/bats-file
part "lifecycle suite" lifecycle
printf '%-28s %10s %10d\n' "payload (gzip'd tar)" "-" "$length"
printf '%-28s %10d\n' "trailer" 64
printf '%-28s %10d  (%s)\n' "archy-gate, total" "$size" "$(numfmt --to=iec-i --suffix=B "$size")"
