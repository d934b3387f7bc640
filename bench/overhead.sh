#!/usr/bin/env bash
# Benchmark: the launcher's overhead before the gate starts, cold (a new
# work dir: verify, probe, unpack) and warm (reuse after the re-check),
# against starting the same entry script directly with the bundle's bash.
#
#   bench/overhead.sh [ROUNDS] [BUNDLE]   (default 10 rounds; BUNDLE: target/test-bundle/archy-gate,
#                                          built with bundle/build.sh when missing)
#
# Preflight is skipped: what it costs depends on the node, not on the launcher.
# The gate only notes the time it started; each figure is that time minus the
# time the command was started, the median over ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

rounds=${1:-10}
real=${2:-target/test-bundle/archy-gate}
[[ -f $real ]] || bundle/build.sh "$(dirname "$real")" >/dev/null 2>&1
launcher=$(build_static_launcher)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The real bundle's tools, with a gate that notes when it started.
"$launcher" extract "$real" --to "$work/stage" >/dev/null
rm -rf "$work/stage/lifecycle"
mkdir "$work/stage/lifecycle"
# shellcheck disable=SC2016 # expanded by the gate, not here
printf 'date +%%s%%N > "$STAMP"\n' > "$work/stage/lifecycle/run-gate.sh"
"$launcher" pack "$work/stage" --launcher "$launcher" --out "$work/out" >/dev/null
bundle=$work/out/archy-gate
"$bundle" extract --to "$work/direct" >/dev/null
export STAMP=$work/stamp ARCHY_PASSWORD=bench

now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
since() { echo $((($(cat "$STAMP") - $1) / 1000)); }

cold=()
warm=()
direct=()
for i in $(seq 1 "$rounds"); do
  t=$(now)
  "$bundle" run --skip-preflight --workdir "$work/wd-$i" >/dev/null 2>&1
  cold+=("$(since "$t")")
  t=$(now)
  "$bundle" run --skip-preflight --workdir "$work/wd-$i" >/dev/null 2>&1
  warm+=("$(since "$t")")
  t=$(now)
  (cd "$work/direct" && bin/bash lifecycle/run-gate.sh)
  direct+=("$(since "$t")")
done
c=$(printf '%s\n' "${cold[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
d=$(printf '%s\n' "${direct[@]}" | median)
echo "bundle: $(stat -c %s "$bundle") bytes, $rounds rounds, medians until the gate starts"
awk -v c="$c" -v w="$w" -v d="$d" 'BEGIN {
  printf "%-40s %8.1f ms\n", "bin/bash lifecycle/run-gate.sh (direct)", d / 1000
  printf "%-40s %8.1f ms  (%.1fx direct, +%.1f ms)\n", "archy-gate run, warm (re-check, reuse)", w / 1000, w / d, (w - d) / 1000
  printf "%-40s %8.1f ms  (%.1fx direct, +%.1f ms)\n", "archy-gate run, cold (unpack)", c / 1000, c / d, (c - d) / 1000
}'
