#!/usr/bin/env bash
# bundle/build.sh: build the archy-gate bundle without Nix, from Debian and registry sources.
#
# Usage:
#   bundle/build.sh OUT_DIR           Stage the bundle tree, build the static launcher and run
#                                     `launcher pack STAGE --launcher BIN --out OUT_DIR`, which
#                                     writes OUT_DIR/archy-gate, OUT_DIR/manifest.json and
#                                     OUT_DIR/SHA256SUMS.
#   bundle/build.sh --stage-only DIR  Only stage the bundle tree into DIR (absent or empty); no
#                                     launcher is built or needed.
#   bundle/build.sh --inputs-only DIR Only gather the stage's inputs into DIR (absent or empty),
#                                     as bundle/stage.sh takes them, with DIR/inputs.json naming
#                                     their versions and sources; the Nix test feeds them to
#                                     nix/bundle.nix through its stand-in for nixpkgs.
#   bundle/build.sh --check-jq [JQ]   Run jq's own upstream test suite (the tests/*test drivers of
#                                     the pinned jq release: mantest, jqtest, shtest, utf8test,
#                                     base64test, uritest, optionaltest, onigtest, manonigtest)
#                                     against the executable JQ (default: the static jq this
#                                     script builds). Prints per-driver and total counts.
#   bundle/build.sh --help
#
# Inputs: every downloaded artifact is pinned by version and sha256 in bundle/inputs.lock (the
# columns are described there) and checked after each download and each cache hit; a mismatch
# stops the build. Downloads go through the machine's own configured pip (in a throwaway venv),
# npm and apt; no registry address is written here.
#
# The stage (see docs/ARCHITECTURE.md for the bundle layout), laid out by bundle/stage.sh, the
# step nix/bundle.nix shares:
#   stage.json                 description read by `launcher pack`
#   bin/bash                   Debian's bash-static, the binary only
#   bin/jq                     jq built all-static against musl from the upstream release tarball
#                              that ships inside the PyPI `jq` sdist (deps/), oniguruma builtin
#   bin/bats -> ../lib/bats-core/bin/bats
#   lib/bats-core/             bats-core from npm, laid out by its own install.sh (bin, lib, libexec)
#   lib/bats-support/ lib/bats-assert/ lib/bats-file/   each with load.bash at the top
#   lifecycle/                 a copy of bundle/lifecycle/
#
# Environment:
#   ARCHY_GATE_CACHE       cache for downloads and builds, keyed by sha256 / version
#                          (default: ${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate)
#   ARCHY_GATE_LAUNCHER    use this (static) launcher binary instead of building launcher/
#   ARCHY_GATE_NO_INSTALL  1: never run apt-get install or rustup target add; fail instead
#   SOURCE_DATE_EPOCH      passed on to the build and to `launcher pack`; when unset, the time
#                          of the repository's last git commit is used if there is one
#
# Host needs: Debian 12 (or alike) with apt; missing packages (build-essential, musl-tools,
# python3-venv, npm) are installed with apt-get when first needed (root or sudo). The launcher
# needs Rust (rustup); the x86_64-unknown-linux-musl target is added when missing.
set -euo pipefail
umask 022
export LC_ALL=C TZ=UTC

readonly MUSL_TARGET=x86_64-unknown-linux-musl

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
LOCK=$HERE/inputs.lock
CACHE=${ARCHY_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate}

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
  printf 'build.sh: error: %s\n' "$*" >&2
  exit 1
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# Temporary dirs removed on exit.
TMPS=()
cleanup() {
  local d
  for d in "${TMPS[@]}"; do
    [[ -n $d && -d $d ]] && rm -rf -- "$d"
  done
  return 0
}
trap cleanup EXIT
mktmp() { # mktmp VAR PARENT PREFIX: make a temporary dir, remember it, store its path in VAR
  local -n _out=$1
  mkdir -p "$2"
  _out=$(mktemp -d "$2/$3.XXXXXX")
  TMPS+=("$_out")
}

sha256_of() {
  local s
  s=$(sha256sum <"$1")
  printf '%s\n' "${s%% *}"
}

in_dir() { # in_dir DIR CMD...: run CMD in DIR
  (cd "$1" && shift && "$@")
}

# run_logged NAME CMD...: run CMD with its output in the cache's log dir; on failure show the
# end of the log and stop.
run_logged() {
  local name=$1 logf
  shift
  mkdir -p "$CACHE/logs"
  logf=$CACHE/logs/$name.log
  if ! "$@" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2 || true
    die "$name failed: $* (full log: $logf)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Host packages

apt_install() {
  [[ ${ARCHY_GATE_NO_INSTALL:-0} != 1 ]] ||
    die "missing Debian packages: $* (ARCHY_GATE_NO_INSTALL=1, so install them yourself)"
  local -a sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root or sudo to install Debian packages: $*"
    sudo=(sudo)
  fi
  log "installing Debian packages: $*"
  local -a install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@")
  if ! "${install[@]}" >"$CACHE/logs/apt-install.log" 2>&1; then
    log "apt-get install failed; running apt-get update and trying again"
    run_logged apt-update "${sudo[@]}" apt-get update -q
    run_logged apt-install "${install[@]}"
  fi
}

# need CMD=PACKAGE...: install the Debian packages whose commands are missing.
need() {
  local pair
  local -a pkgs=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || pkgs+=("${pair#*=}")
  done
  ((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
}

need_python_venv() {
  need python3=python3
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
}

# ---------------------------------------------------------------------------------------------
# Pinned inputs

declare -A L_VER=() L_FETCH=() L_SHA=()
read_lock() {
  [[ -f $LOCK ]] || die "missing $LOCK"
  local name ver fetch sha extra n=0
  while read -r name ver fetch sha extra; do
    n=$((n + 1))
    [[ -z $name || $name == \#* ]] && continue
    [[ -n $sha && -z $extra ]] || die "inputs.lock line $n: expected NAME VERSION FETCH SHA256"
    [[ $sha =~ ^[0-9a-f]{64}$ ]] || die "inputs.lock line $n: '$sha' is not a sha256"
    L_VER[$name]=$ver L_FETCH[$name]=$fetch L_SHA[$name]=$sha
  done <"$LOCK"
}

# fetch_input NAME: make sure the pinned artifact of NAME is in the cache and matches its
# sha256; sets FETCHED to its path.
FETCHED=
fetch_input() {
  local name=$1
  [[ -n ${L_SHA[$name]-} ]] || die "input '$name' is not in inputs.lock"
  local ver=${L_VER[$name]} how=${L_FETCH[$name]} want=${L_SHA[$name]}
  local dir=$CACHE/dl/$want f
  for f in "$dir"/*; do
    [[ -f $f ]] || continue
    if [[ $(sha256_of "$f") == "$want" ]]; then
      FETCHED=$f
      return 0
    fi
    log "cached $f does not match its sha256; fetching it again"
    rm -f -- "$f"
  done

  local tmp
  mktmp tmp "$CACHE/tmp" "fetch-$name"
  log "fetching $name $ver ($how)"
  case $how in
    pypi-sdist:*)
      local project=${how#pypi-sdist:} venv
      need_python_venv
      mktmp venv "$CACHE/tmp" venv
      run_logged "pip-venv" python3 -m venv "$venv"
      run_logged "pip-upgrade" env PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install -U pip
      run_logged "pip-download-$name" env PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv/bin/pip" download --no-deps --no-binary "$project" -d "$tmp" "$project==$ver"
      ;;
    npm:*)
      need npm=npm
      run_logged "npm-pack-$name" in_dir "$tmp" npm pack "${how#npm:}@$ver"
      ;;
    apt:*)
      # apt's _apt sandbox user cannot write into a private temp dir: apt then downloads as the
      # calling user and warns; harmless.
      run_logged "apt-download-$name" in_dir "$tmp" apt-get download -q "${how#apt:}=$ver"
      ;;
    member:*:*)
      local rest=${how#member:} src path
      src=${rest%%:*} path=${rest#*:}
      fetch_input "$src"
      tar -xzf "$FETCHED" -C "$tmp" -- "$path" || die "$path not found inside $FETCHED"
      mv -- "$tmp/$path" "$tmp/.member"
      rm -rf -- "${tmp:?}/${path%%/*}"
      mv -- "$tmp/.member" "$tmp/${path##*/}"
      ;;
    *) die "inputs.lock: unknown fetch method '$how' for $name" ;;
  esac

  local -a got=()
  for f in "$tmp"/*; do [[ -f $f ]] && got+=("$f"); done
  ((${#got[@]} == 1)) || die "fetching $name gave ${#got[@]} files instead of one (in $tmp)"
  f=${got[0]}
  local have
  have=$(sha256_of "$f")
  if [[ $have != "$want" ]]; then
    mkdir -p "$CACHE/rejected"
    mv -- "$f" "$CACHE/rejected/"
    die "sha256 mismatch for $name $ver ($how): inputs.lock pins $want, the download is $have (kept in $CACHE/rejected/${f##*/})"
  fi
  mkdir -p "$dir"
  mv -- "$f" "$dir/"
  FETCHED=$dir/${f##*/}
}

# ---------------------------------------------------------------------------------------------
# Static checks

assert_static() { # assert_static FILE: an ELF without PT_INTERP and without DT_NEEDED
  need readelf=binutils
  local f=$1 out
  out=$(readelf -lW "$f" 2>&1) || die "$f is not an ELF file: $out"
  if grep -q 'INTERP' <<<"$out"; then die "$f is dynamically linked (has PT_INTERP)"; fi
  out=$(readelf -dW "$f" 2>&1) || true
  if grep -q '(NEEDED)' <<<"$out"; then die "$f is dynamically linked (has DT_NEEDED)"; fi
}

# ---------------------------------------------------------------------------------------------
# jq: upstream release tarball (from inside the PyPI sdist), built all-static against musl.

JQ_CONFIGURE=(CC=musl-gcc CFLAGS=-O2 LDFLAGS=-s --enable-all-static --disable-shared
  --enable-static --disable-docs --disable-maintainer-mode --with-oniguruma=builtin)
# Upstream test drivers (jq's Makefile.am TESTS with oniguruma enabled).
JQ_TESTS=(mantest jqtest shtest utf8test base64test uritest optionaltest onigtest manonigtest)
JQ_DIR= # set by build_jq: the cached build tree, the binary is $JQ_DIR/jq

build_jq() {
  fetch_input jq
  local tarball=$FETCHED key
  # The cache key covers the source and the recipe; bump "r1" when the steps below change.
  key=$(printf '%s\n' r1 "${L_SHA[jq]}" "${JQ_CONFIGURE[@]}" | sha256sum)
  JQ_DIR=$CACHE/build/jq-${L_VER[jq]}-${key:0:16}
  if [[ -f $JQ_DIR/.archy-gate-ok && -x $JQ_DIR/jq ]]; then
    return 0
  fi
  need gcc=build-essential make=build-essential strip=binutils musl-gcc=musl-tools
  local src
  mktmp src "$CACHE/build" ".jq-${L_VER[jq]}"
  [[ $src != *[[:space:]]* ]] || die "the cache path must not contain whitespace: $src"
  tar -xzf "$tarball" -C "$src" --strip-components=1
  log "building jq ${L_VER[jq]} (static, musl)"
  # No -g and in-tree relative sources: the build directory does not reach the binary; the
  # prefix map is a second guard. Path-dependent flags go to make, not configure, because
  # configure's arguments are embedded in the binary (jq --build-configuration).
  run_logged jq-configure in_dir "$src" ./configure "${JQ_CONFIGURE[@]}"
  run_logged jq-make make -C "$src" -j"$(nproc)" CFLAGS="-O2 -ffile-prefix-map=$src=."
  assert_static "$src/jq"
  if grep -qF -- "$src" "$src/jq"; then die "the build directory leaks into $src/jq"; fi
  log "running jq's upstream test suite against the new jq"
  check_jq "$src/jq" "$src"
  touch "$src/.archy-gate-ok"
  rm -rf -- "$JQ_DIR"
  mv -- "$src" "$JQ_DIR"
}

# check_jq JQ SRC: run jq's upstream test drivers from the source tree SRC against JQ.
check_jq() {
  local jq=$1 src=$2 t logf line status total_ok=0 total=0 failed=0 ok n
  [[ -x $jq ]] || die "not an executable: $jq"
  jq=$(cd "$(dirname "$jq")" && pwd)/${jq##*/}
  mkdir -p "$CACHE/logs"
  for t in "${JQ_TESTS[@]}"; do
    logf=$CACHE/logs/jq-test-$t.log
    status=PASS
    (cd "$src" && JQ=$jq "./tests/$t") >"$logf" 2>&1 || status=FAIL
    # --run-tests drivers end with "N of M tests passed (...)"; shtest and utf8test do not.
    line=$(grep -E '^[0-9]+ of [0-9]+ tests passed' "$logf" | tail -n 1 || true)
    if [[ -n $line ]]; then
      read -r ok _ n _ <<<"$line"
      total_ok=$((total_ok + ok)) total=$((total + n))
    fi
    if [[ $status == FAIL ]]; then
      failed=$((failed + 1))
      tail -n 20 "$logf" >&2 || true
      log "  FAIL tests/$t${line:+: $line} (log: $logf)"
    else
      log "  PASS tests/$t${line:+: $line}"
    fi
  done
  log "jq upstream tests: $((${#JQ_TESTS[@]} - failed)) of ${#JQ_TESTS[@]} drivers passed;" \
    "$total_ok of $total --run-tests cases passed"
  ((failed == 0)) || die "jq's upstream tests failed against $jq"
}

# ---------------------------------------------------------------------------------------------
# The launcher

launcher_version() { # the crate version from launcher/Cargo.toml (or the workspace), else 0.1.0
  local f v=
  for f in "$REPO/launcher/Cargo.toml" "$REPO/Cargo.toml"; do
    [[ -f $f ]] || continue
    v=$(awk '
      /^\[/ { sec = $0; next }
      (sec == "[package]" || sec == "[workspace.package]") && /^version[ \t]*=[ \t]*"/ {
        sub(/^version[ \t]*=[ \t]*"/, ""); sub(/".*/, ""); print; exit }' "$f")
    [[ -z $v ]] || break
  done
  printf '%s\n' "${v:-0.1.0}"
}

LAUNCHER=
build_launcher() {
  if [[ -n ${ARCHY_GATE_LAUNCHER:-} ]]; then
    [[ -x $ARCHY_GATE_LAUNCHER ]] || die "ARCHY_GATE_LAUNCHER=$ARCHY_GATE_LAUNCHER is not executable"
    LAUNCHER=$(cd "$(dirname "$ARCHY_GATE_LAUNCHER")" && pwd)/${ARCHY_GATE_LAUNCHER##*/}
    log "using the launcher $LAUNCHER (ARCHY_GATE_LAUNCHER)"
    assert_static "$LAUNCHER"
    return 0
  fi
  [[ -f $REPO/launcher/Cargo.toml ]] || die "no launcher crate at $REPO/launcher (set ARCHY_GATE_LAUNCHER)"
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup"
  need musl-gcc=musl-tools
  if command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx "$MUSL_TARGET"; then
      [[ ${ARCHY_GATE_NO_INSTALL:-0} != 1 ]] || die "the Rust target $MUSL_TARGET is missing"
      run_logged rustup-target rustup target add "$MUSL_TARGET"
    fi
  fi
  log "building the launcher (cargo, $MUSL_TARGET)"
  # shellcheck source=scripts/lib.sh
  . "$REPO/scripts/lib.sh"
  LAUNCHER=$(cd "$REPO" && build_static_launcher) || die "cargo build of the launcher failed"
  assert_static "$LAUNCHER"
}

# ---------------------------------------------------------------------------------------------
# The stage

# unpack_tgz TARBALL DIR: unpack an npm tarball's package/ into DIR
unpack_tgz() {
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1 --no-same-owner --no-same-permissions
}

# gather DIR: every input of the stage, fetched, checked and unpacked into DIR (absent or
# empty) as bundle/stage.sh takes them; the Nix test serves the same dir to nix/bundle.nix
# through its stand-in for nixpkgs (nix/standin/):
#   jq, bash            the static binaries
#   bats-core/          bats-core's source tree (install.sh, bin, lib, libexec, man, LICENSE.md)
#   lib/NAME/           load.bash and src/ of bats-support, bats-assert and bats-file
#   license/NAME/FILE   each library's license file
#   inputs.json         the libraries' versions, every source string and stage.json's sources
declare -A G_VER=() G_SRC=()
G_SOURCES=
gather() {
  local dir=$1 t
  local -A sha=() src=()
  for t in jq bash-static bats-core bats-support bats-assert bats-file; do
    fetch_input "$t"
    sha[$t]=${L_SHA[$t]} src[$t]=$FETCHED
  done
  build_jq
  local tmp
  mktmp tmp "$CACHE/tmp" gather
  mkdir -p "$dir/lib" "$dir/license"

  install -m 0755 "$JQ_DIR/jq" "$dir/jq"
  G_SRC[jq]="upstream jq ${L_VER[jq]} release tarball sha256:${sha[jq]}, from PyPI jq ${L_VER[jq-sdist]} sdist sha256:${L_SHA[jq-sdist]}, built all-static with musl-gcc"

  # bash: only the binary of Debian's bash-static
  dpkg-deb -x "${src[bash-static]}" "$tmp/bash-static"
  install -m 0755 "$tmp/bash-static/bin/bash-static" "$dir/bash"
  G_SRC[bash]="Debian bash-static ${L_VER[bash-static]} sha256:${sha[bash-static]}"

  # bats-core (npm): the source tree with its install.sh
  unpack_tgz "${src[bats-core]}" "$dir/bats-core"
  G_SRC[bats-core]="npm bats ${L_VER[bats-core]} sha256:${sha[bats-core]}"

  # bats-support, bats-assert (npm): load.bash, src/ and the LICENSE
  for t in bats-support bats-assert; do
    unpack_tgz "${src[$t]}" "$tmp/$t"
    mkdir -p "$dir/lib/$t" "$dir/license/$t"
    cp -R "$tmp/$t/load.bash" "$tmp/$t/src" "$dir/lib/$t/"
    install -m 0644 "$tmp/$t/LICENSE" "$dir/license/$t/LICENSE"
    G_VER[$t]=${L_VER[$t]}
    G_SRC[$t]="npm $t ${L_VER[$t]} sha256:${sha[$t]}"
  done

  # bats-file (Debian): usr/lib/bats/bats-file/{load.bash,src} and the copyright file
  dpkg-deb -x "${src[bats-file]}" "$tmp/bats-file"
  cp -R "$tmp/bats-file/usr/lib/bats/bats-file" "$dir/lib/bats-file"
  mkdir -p "$dir/license/bats-file"
  install -m 0644 "$tmp/bats-file/usr/share/doc/bats-file/copyright" "$dir/license/bats-file/copyright"
  G_VER[bats-file]=${L_VER[bats-file]}
  G_SRC[bats-file]="Debian bats-file ${L_VER[bats-file]} sha256:${sha[bats-file]}"

  local lock_sha
  lock_sha=$(sha256_of "$LOCK")
  G_SOURCES="{\"builder\": \"bundle/build.sh\", \"inputs\": \"bundle/inputs.lock sha256:$lock_sha\"}"

  # shellcheck disable=SC2016 # a jq program
  "$dir/jq" -n --argjson sources "$G_SOURCES" \
    --arg jq "${G_SRC[jq]}" --arg bash "${G_SRC[bash]}" --arg bats "${G_SRC[bats-core]}" \
    --arg sup_v "${G_VER[bats-support]}" --arg sup "${G_SRC[bats-support]}" \
    --arg ass_v "${G_VER[bats-assert]}" --arg ass "${G_SRC[bats-assert]}" \
    --arg file_v "${G_VER[bats-file]}" --arg file "${G_SRC[bats-file]}" \
    '{
      tools: {
        jq: {source: $jq}, bash: {source: $bash}, "bats-core": {source: $bats},
        "bats-support": {version: $sup_v, source: $sup},
        "bats-assert": {version: $ass_v, source: $ass},
        "bats-file": {version: $file_v, source: $file}
      },
      sources: $sources
    }' >"$dir/inputs.json"
}

# stage DIR: gather the inputs and hand them to bundle/stage.sh (shared with nix/bundle.nix),
# which lays out the tree and writes stage.json.
stage() {
  local st=$1 t in
  [[ -d $HERE/lifecycle ]] || die "missing $HERE/lifecycle (the suite to bundle)"
  [[ -f $HERE/lifecycle/run-gate.sh ]] || die "missing $HERE/lifecycle/run-gate.sh"
  mktmp in "$CACHE/tmp" inputs
  gather "$in"

  local libs='[]'
  for t in bats-support bats-assert bats-file; do
    # shellcheck disable=SC2016 # a jq program
    libs=$("$in/jq" -cn --argjson libs "$libs" --arg name "$t" --arg version "${G_VER[$t]}" \
      --arg dir "$in/lib/$t" --arg license "$in/license/$t" --arg source "${G_SRC[$t]}" \
      '$libs + [{$name, $version, $dir, $license, $source}]')
  done
  run_logged stage "$HERE/stage.sh" --out "$st" --version "$(launcher_version)" \
    --lifecycle "$HERE/lifecycle" \
    --jq "$in/jq" --jq-source "${G_SRC[jq]}" \
    --bash "$in/bash" --bash-source "${G_SRC[bash]}" \
    --bats-core "$in/bats-core" --bats-core-source "${G_SRC[bats-core]}" \
    --libs "$libs" --sources "$G_SOURCES"

  # What may not go into a bundle (special files, links leaving the tree, store paths,
  # dynamic ELFs) is refused by `launcher pack` itself, naming the file; readelf is a second,
  # independent opinion on the two binaries.
  assert_static "$st/bin/jq"
  assert_static "$st/bin/bash"
}

# ---------------------------------------------------------------------------------------------

main() {
  local mode=build arg=
  case ${1-} in
    -h | --help)
      usage
      return 0
      ;;
    --inputs-only)
      mode=inputs
      arg=${2-}
      [[ -n $arg && $# -eq 2 ]] || die "usage: $0 --inputs-only DIR"
      ;;
    --stage-only)
      mode=stage
      arg=${2-}
      [[ -n $arg && $# -eq 2 ]] || die "usage: $0 --stage-only DIR"
      ;;
    --check-jq)
      mode=check-jq
      arg=${2-}
      (($# <= 2)) || die "usage: $0 --check-jq [JQ]"
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      arg=${1-}
      [[ -n $arg && $# -eq 1 ]] || die "usage: $0 OUT_DIR (see --help)"
      ;;
  esac

  mkdir -p "$CACHE/tmp" "$CACHE/logs"
  CACHE=$(cd "$CACHE" && pwd)
  read_lock

  if [[ -z ${SOURCE_DATE_EPOCH:-} ]] && command -v git >/dev/null &&
    git -C "$REPO" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct)
  fi
  [[ -z ${SOURCE_DATE_EPOCH:-} ]] || export SOURCE_DATE_EPOCH

  case $mode in
    check-jq)
      build_jq
      check_jq "${arg:-$JQ_DIR/jq}" "$JQ_DIR"
      ;;
    stage | inputs)
      if [[ -e $arg ]]; then
        [[ -d $arg && -z $(ls -A "$arg") ]] || die "$arg exists and is not an empty dir"
      fi
      # Stage beside DIR and rename at the end: a failed run leaves no half-made tree.
      local parent partial
      parent=$(dirname "$arg")
      mkdir -p "$parent"
      mktmp partial "$parent" ".${arg##*/}.partial"
      "${mode/inputs/gather}" "$(cd "$partial" && pwd)"
      [[ ! -d $arg ]] || rmdir -- "$arg"
      mv -T -- "$partial" "$arg"
      log "$([[ $mode == stage ]] && echo "staged the bundle tree" || echo "gathered the inputs") in $arg"
      ;;
    build)
      local st out
      mktmp st "$CACHE/tmp" stage-tree
      stage "$st"
      build_launcher
      mkdir -p "$arg"
      out=$(cd "$arg" && pwd)
      "$LAUNCHER" pack "$st" --launcher "$LAUNCHER" --out "$out" ||
        die "launcher pack failed"
      log "wrote $out/archy-gate, $out/manifest.json, $out/SHA256SUMS"
      ;;
  esac
}

main "$@"
