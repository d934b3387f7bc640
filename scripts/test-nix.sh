#!/usr/bin/env bash
# The flake's tests, on a machine without nixpkgs (scripts/test.sh runs this; as root on a fresh
# Debian 12 it installs what it needs: Debian's nix-bin, and nixfmt from crates.io).
#
#   1. every .nix file parses (nix-instantiate --parse) and is nixfmt-clean;
#   2. `nix flake metadata --offline --no-update-lock-file` accepts flake.lock as it stands
#      (a lock that does not match flake.nix fails: it would need the network) and shows the
#      pinned nixpkgs;
#   3. `nix build .#bundle` runs flake.nix and nix/bundle.nix for real, with nixpkgs overridden by
#      the offline stand-in (nix/standin/, test infrastructure) serving the inputs
#      `bundle/build.sh --inputs-only` gathers and the static launcher scripts/lib.sh builds;
#   4. that result is byte-identical to what bundle/build.sh makes from the same inputs
#      (archy-gate, manifest.json, SHA256SUMS), verifies against its own pin, and
#   5. passes the bare-node test (launcher/tests/bare_node.rs, pointed at the Nix result);
#   6. `nix build --rebuild` builds it again and finds no difference;
#   7. `nix flake check --no-build` evaluates every output for both systems;
#   8. allowedReferences = [ ] is really enforced: a bundle naming a store path fails to build.
#
# Usage: scripts/test-nix.sh [STATIC_LAUNCHER]   (default: built with scripts/lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

readonly NIXFMT_VERSION=0.5.3

fails=0 passes=0
pass() {
  passes=$((passes + 1))
  printf 'ok   %s\n' "$*"
}
fail() {
  fails=$((fails + 1))
  printf 'FAIL %s\n' "$*"
}

ensure_debian_packages nix-bin busybox-static jq
if [[ $(nixfmt --numeric-version 2>/dev/null || true) != "$NIXFMT_VERSION" ]]; then
  step "installing nixfmt $NIXFMT_VERSION (nixfmt_rs, from crates.io)"
  cargo install --quiet --locked nixfmt_rs --version "$NIXFMT_VERSION"
fi

# Single-user Nix as root, no daemon, no binary cache (offline). The sandbox is relaxed: what
# the flake builds runs in it (no /usr, builder uid 1000, as on any Nix machine), while the
# stand-in's own packages, made from prebuilt files with the host's tools, opt out with
# __noChroot (see nix/standin/flake.nix).
export NIX_CONFIG=$'build-users-group =\nsandbox = relaxed\nexperimental-features = nix-command flakes\nsubstituters =\nwarn-dirty = false'
nix --version

launcher=${1:-}
if [[ -z $launcher ]]; then
  launcher=$(build_static_launcher)
fi
[[ -x $launcher ]] || {
  echo "test-nix.sh: no static launcher at $launcher" >&2
  exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/archy-gate-nix.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# The checkout as git sees it (tracked and new files, not ignored ones), as a path: flake, so that
# files not yet committed are part of it.
copy_checkout() {
  local dest=$1 f
  mkdir -p "$dest"
  while IFS= read -r -d '' f; do
    [[ -e $f || -L $f ]] || continue # deleted in the working tree
    mkdir -p "$dest/$(dirname "$f")"
    cp -P -- "$f" "$dest/$f"
  done < <(git ls-files -z --cached --others --exclude-standard)
}

# Runs nix, keeping its output in a log; prints the log's tail on failure.
nix_logged() {
  local log=$1
  shift
  if nix "$@" >"$log" 2>&1; then
    return 0
  fi
  tail -n 30 "$log" >&2
  return 1
}

step "nix: parse and format"
mapfile -d '' nixfiles < <(git ls-files -z --cached --others --exclude-standard -- '*.nix')
((${#nixfiles[@]} >= 4)) || fail "expected flake.nix, nix/launcher.nix, nix/bundle.nix, nix/standin/flake.nix; found ${nixfiles[*]}"
for f in "${nixfiles[@]}"; do
  if nix-instantiate --parse "$f" >/dev/null; then pass "parses: $f"; else fail "does not parse: $f"; fi
done
if nixfmt --check "${nixfiles[@]}"; then pass "nixfmt-clean: ${#nixfiles[@]} files"; else fail "not nixfmt-clean (run: nixfmt ${nixfiles[*]})"; fi

step "nix: the checkout and the stand-in for nixpkgs"
copy_checkout "$work/src"
standin=$work/standin
mkdir -p "$standin"
cp nix/standin/flake.nix "$standin/flake.nix"
bundle/build.sh --inputs-only "$standin/inputs"
install -m 0755 "$launcher" "$standin/launcher"
# The stand-in's stdenv tools in the sandbox, and what its one compiling step needs: the host's
# cargo with the crates of Cargo.lock already fetched (the build runs --frozen).
install -m 0755 "$(command -v busybox)" "$standin/inputs/busybox"
install -m 0755 /usr/bin/jq "$standin/inputs/jq-dynamic" # dynamically linked, as nixpkgs' jq
cargo fetch --locked --quiet
cargo_bin=$(dirname "$(command -v cargo)")
"$standin/inputs/jq" -n --arg path "$cargo_bin:/usr/local/bin:/usr/bin:/bin" \
  --arg cargoHome "${CARGO_HOME:-$HOME/.cargo}" --arg rustupHome "${RUSTUP_HOME:-$HOME/.rustup}" \
  '{path: $path, cargoHome: $cargoHome, rustupHome: $rustupHome}' >"$standin/host.json"
src="path:$work/src"
override=(--override-input nixpkgs "path:$standin")

step "nix: flake metadata --offline"
lock_rev=$(sed -n 's/^ *"rev": "\([0-9a-f]\{40\}\)",$/\1/p' flake.lock)
if nix_logged "$work/metadata.log" flake metadata --offline --no-update-lock-file "$src" &&
  grep -q "nixpkgs.*github:NixOS/nixpkgs/$lock_rev" "$work/metadata.log"; then
  pass "flake metadata --offline accepts flake.lock (nixpkgs $lock_rev)"
else
  fail "flake metadata --offline: $(tail -n 3 "$work/metadata.log")"
fi

step "nix: build .#bundle against the stand-in"
result=$work/result
if nix_logged "$work/build.log" build "$src#bundle" "${override[@]}" -o "$result" -L; then
  pass "nix build .#bundle ran nix/bundle.nix"
else
  fail "nix build .#bundle"
fi
for f in archy-gate manifest.json SHA256SUMS; do
  [[ -f $result/$f ]] || fail "the Nix result has no $f"
done

if [[ -f $result/manifest.json ]]; then
  step "nix: the same bundle as bundle/build.sh from the same inputs"
  epoch=$(sed -n 's/^ *"source_date_epoch": \([0-9]*\),$/\1/p' "$result/manifest.json")
  [[ -n $epoch ]] || fail "no source_date_epoch in the Nix result's manifest.json"
  ARCHY_GATE_LAUNCHER=$launcher SOURCE_DATE_EPOCH=$epoch bundle/build.sh "$work/script-built"
  for f in archy-gate manifest.json SHA256SUMS; do
    if cmp -- "$result/$f" "$work/script-built/$f"; then
      pass "byte-identical to bundle/build.sh's: $f"
    else
      fail "differs from bundle/build.sh's: $f"
    fi
  done

  pin=$(sed -n 's/^\([0-9a-f]\{64\}\)  archy-gate$/\1/p' "$result/SHA256SUMS")
  if "$result/archy-gate" verify "$result/archy-gate" --sha256 "$pin" >"$work/verify.log" 2>&1; then
    pass "the Nix-built archy-gate verifies against its SHA256SUMS pin"
  else
    fail "verify: $(cat "$work/verify.log")"
  fi

  step "nix: the bare-node test on the Nix-built bundle"
  if ARCHY_GATE_STATIC_LAUNCHER=$launcher ARCHY_GATE_BUNDLE_DIR=$result \
    cargo test --quiet --locked --test bare_node 2>&1 | tee "$work/bare_node.log"; then
    if grep -qE '^test result: ok\. [1-9][0-9]* passed; 0 failed; 0 ignored' "$work/bare_node.log"; then
      pass "launcher/tests/bare_node.rs passes on the Nix result"
    else
      fail "bare_node.rs ran no tests, or ignored some"
    fi
  else
    fail "launcher/tests/bare_node.rs on the Nix result"
  fi
fi

step "nix: build --rebuild"
if nix_logged "$work/rebuild.log" build "$src#bundle" "${override[@]}" --rebuild --no-link; then
  pass "nix build --rebuild: no difference"
else
  fail "nix build --rebuild reports a difference or failed"
fi

step "nix: flake check --no-build (both systems)"
if nix_logged "$work/check.log" flake check --no-build "$src" "${override[@]}"; then
  pass "nix flake check --no-build evaluates every output"
else
  fail "nix flake check --no-build"
fi

step "nix: allowedReferences = [ ] fails a bundle that names a store path"
# A suite file named after the launcher's store path: pack accepts it (no '/nix/store/' in
# it), but manifest.json then carries the store hash, and Nix itself must refuse the output.
launcher_out=$(nix eval --raw "$src#packages.x86_64-linux.launcher.outPath" "${override[@]}" 2>"$work/eval.log")
cp -a "$work/src" "$work/leak"
echo "a file whose name is a store path's" >"$work/leak/bundle/lifecycle/${launcher_out##*/}.txt"
if nix build "path:$work/leak#bundle" "${override[@]}" --no-link >"$work/leak.log" 2>&1; then
  fail "a bundle naming ${launcher_out##*/} was built"
elif grep -q 'is not allowed to refer to' "$work/leak.log"; then
  pass "Nix refused the output that refers to ${launcher_out##*/}"
else
  fail "the leaking build failed for another reason: $(tail -n 3 "$work/leak.log")"
fi

printf '\nnix tests: %d passed, %d failed\n' "$passes" "$fails"
((fails == 0))
