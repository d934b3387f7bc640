#!/usr/bin/env bash
# Benchmark: what `run` does to a bundle (`launcher extract --sha256 PIN`: the
# pin, the payload digest, every file's sha256, in one pass over one
# descriptor) against `sha256sum` + `tar xzf` of the same payload, side by
# side in one run. Goal: a median ratio of at most 0.5.
#
#   bench/unpack.sh [ROUNDS]        (default 10 rounds; prints medians and the ratio)
#   TMPDIR=/dev/shm bench/unpack.sh (on a tmpfs instead of /tmp's file system)
#
# The payload is at least 8 MiB of incompressible data plus a few hundred
# small files, so both hashing and unpacking count. The launcher does more
# than the baseline (the payload digest, the whole-file pin, every file's
# sha256 against the manifest, safe-path checks) and still should take half
# its time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

rounds=${1:-10}
launcher=$(build_static_launcher)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stage=$work/stage
mkdir -p "$stage/lifecycle" "$stage/lib/many"
printf '#!/usr/bin/env bash\necho gate\n' > "$stage/lifecycle/run-gate.sh"
for i in 1 2 3 4 5 6 7 8 9; do
  head -c 1000000 /dev/urandom > "$stage/lib/blob-$i.bin"
done
for i in $(seq 1 300); do
  printf 'line %s of a small suite file\n' $(seq 1 40) > "$stage/lib/many/file-$i.bash"
done
"$launcher" pack "$stage" --launcher "$launcher" --out "$work/out" >/dev/null
bundle=$work/out/archy-gate
pin=$(awk '$2 == "archy-gate" { print $1 }' "$work/out/SHA256SUMS")

# The baseline gets the very payload bytes, as a plain .tar.gz.
size=$(stat -c %s "$bundle")
offset=$(od -An -t u8 -j $((size - 56)) -N 8 "$bundle" | tr -d ' ')
length=$(od -An -t u8 -j $((size - 48)) -N 8 "$bundle" | tr -d ' ')
tail -c +$((offset + 1)) "$bundle" | head -c "$length" > "$work/payload.tar.gz"
echo "payload: $length bytes ($(du -sh "$stage" | cut -f1) unpacked), $rounds rounds, in $work ($(stat -f -c %T "$work"))"

now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ours=()
base=()
# Each round unpacks into new dirs, all removed at the end: on ext4, creating
# inodes right after deleting the last round's makes the kernel search among
# the just-deleted ones, which then dominates both sides' time.
for r in $(seq 1 "$rounds"); do
  mkdir "$work/x2-$r"
  t0=$(now)
  "$launcher" extract "$bundle" --sha256 "$pin" --to "$work/x1-$r" >/dev/null
  t1=$(now)
  sha256sum "$work/payload.tar.gz" >/dev/null
  tar xzf "$work/payload.tar.gz" -C "$work/x2-$r"
  t2=$(now)
  ours+=("$(((t1 - t0) / 1000))")
  base+=("$(((t2 - t1) / 1000))")
done
m_ours=$(printf '%s\n' "${ours[@]}" | median)
m_base=$(printf '%s\n' "${base[@]}" | median)
awk -v a="$m_ours" -v b="$m_base" 'BEGIN {
  printf "%-44s %8.1f ms\n", "launcher extract --sha256 (median)", a / 1000
  printf "%-44s %8.1f ms\n", "sha256sum + tar xzf (median)", b / 1000
  printf "%-44s %8.2f\n", "ratio (launcher / baseline)", a / b
}'
