#!/usr/bin/env bash
# bundle/stage.sh: lay out the bundle's stage tree from inputs already at hand. Shared by
# `cargo xtask bundle` (inputs fetched from Debian and the registries) and nix/bundle.nix
# (inputs from nixpkgs), so both builds stage the same tree from the same inputs. Fetches
# nothing.
#
# Usage:
#   bundle/stage.sh --out DIR --version V --lifecycle DIR
#       --jq FILE --jq-source TEXT --bash FILE --bash-source TEXT
#       --bats-core DIR --bats-core-source TEXT
#       [--libs JSON] [--sources JSON] [--name NAME] [--entry PATH]
#
#   --out DIR          the stage to make; must not exist yet, or be an empty dir
#   --jq, --bash       the static binaries, installed as bin/jq and bin/bash
#   --bats-core DIR    a bats-core source tree (bin/, lib/, libexec/, man/, install.sh,
#                      LICENSE.md); laid out under lib/bats-core by its own install.sh, run with
#                      the staged bash, so no shebang or path names where it came from
#   --libs JSON        the bats helper libraries, a JSON array (default []) of objects with
#                      the strings name, version, dir, license and source: the contents of dir
#                      (load.bash, src/) go to lib/NAME/, the license file beside them under
#                      its own file name; when license is a dir, its LICENSE, LICENSE.md,
#                      LICENSE.txt, COPYING or copyright
#   --lifecycle DIR    the suite, copied to lifecycle/
#   --sources JSON     stage.json's "sources" object (default {})
#   *-source TEXT      where each tool came from, for stage.json
#
# stage.json lists name, version, entry, the tools (jq, bash and bats-core with the version
# each reports itself, then the libraries in the order given) and the sources. The tree's
# modes are normalised by `launcher pack`; inputs may be read-only (a Nix store).
#
# Needs bash, coreutils; runs the staged jq (1.7 or later) and bash, so the host needs neither.
set -euo pipefail
umask 022
export LC_ALL=C TZ=UTC

die() {
  printf 'stage.sh: error: %s\n' "$*" >&2
  exit 1
}

out='' version='' lifecycle='' jq='' jq_src='' bash_bin='' bash_src='' bats='' bats_src=''
name=archy-gate entry=lifecycle/run-gate.sh sources='{}' libs='[]'
while (($#)); do
  case $1 in
    --out | --version | --lifecycle | --jq | --jq-source | --bash | --bash-source | \
      --bats-core | --bats-core-source | --libs | --sources | --name | --entry)
      (($# >= 2)) || die "$1 needs a value"
      ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  case $1 in
    --out) out=$2 ;;
    --version) version=$2 ;;
    --lifecycle) lifecycle=$2 ;;
    --jq) jq=$2 ;;
    --jq-source) jq_src=$2 ;;
    --bash) bash_bin=$2 ;;
    --bash-source) bash_src=$2 ;;
    --bats-core) bats=$2 ;;
    --bats-core-source) bats_src=$2 ;;
    --libs) libs=$2 ;;
    --sources) sources=$2 ;;
    --name) name=$2 ;;
    --entry) entry=$2 ;;
  esac
  shift 2
done

for v in out version lifecycle jq jq_src bash_bin bash_src bats bats_src; do
  [[ -n ${!v} ]] || die "missing --${v//_/-} (see --help)"
done
[[ -f $jq && -f $bash_bin ]] || die "--jq and --bash must be files"
[[ -f $bats/install.sh ]] || die "$bats has no install.sh (not a bats-core source tree)"
[[ -f $lifecycle/${entry#lifecycle/} ]] || die "missing $lifecycle/${entry#lifecycle/} (the entry)"
if [[ -e $out ]]; then
  [[ -d $out && -z $(ls -A "$out") ]] || die "$out exists and is not an empty dir"
fi

st=$out
mkdir -p "$st/bin" "$st/lib"

install -m 0755 "$jq" "$st/bin/jq"
install -m 0755 "$bash_bin" "$st/bin/bash"
J=$st/bin/jq

# The libraries' descriptions, checked whole before any is used.
# shellcheck disable=SC2016 # a jq program
printf '%s' "$libs" | "$J" -e 'type == "array" and all(.[]; type == "object" and
    ([.name, .version, .dir, .license, .source] | all(type == "string")))' >/dev/null 2>&1 ||
  die "--libs must be a JSON array of objects with the strings name, version, dir, license and source; got: $libs"
lib_fields=()
while IFS= read -r -d '' field; do lib_fields+=("$field"); done < <(
  printf '%s' "$libs" | "$J" --raw-output0 '.[] | .name, .dir, .license'
)
# --raw-output0 stops at a string that holds a NUL byte: count what came out.
(("${#lib_fields[@]}" == 3 * $(printf '%s' "$libs" | "$J" length))) ||
  die "--libs: a name, dir or license holds a NUL byte"

# bats-core by its own install.sh (bin, lib, libexec), without the man pages; its sourced
# libraries are not programs.
"$st/bin/bash" "$bats/install.sh" "$st/lib/bats-core" >/dev/null
chmod -R u+w "$st/lib/bats-core"
rm -rf -- "$st/lib/bats-core/share"
chmod 0644 "$st/lib/bats-core/lib/bats-core/"*
install -m 0644 "$bats/LICENSE.md" "$st/lib/bats-core/LICENSE.md"
ln -s ../lib/bats-core/bin/bats "$st/bin/bats"

# The helper libraries.
for ((i = 0; i < ${#lib_fields[@]}; i += 3)); do
  lib=${lib_fields[i]} dir=${lib_fields[i + 1]} license=${lib_fields[i + 2]}
  [[ $lib =~ ^[A-Za-z0-9._-]+$ ]] || die "bad library name '$lib'"
  [[ -f $dir/load.bash ]] || die "$dir has no load.bash (library $lib)"
  if [[ -d $license ]]; then # a source tree: its license file
    for f in LICENSE LICENSE.md LICENSE.txt COPYING copyright; do
      [[ -f $license/$f ]] && license=$license/$f && break
    done
  fi
  [[ -f $license ]] || die "no license file at $license (library $lib)"
  mkdir -p "$st/lib/$lib"
  cp -R "$dir/." "$st/lib/$lib/"
  chmod -R u+w "$st/lib/$lib"
  install -m 0644 "$license" "$st/lib/$lib/${license##*/}"
done

# The suite.
cp -R "$lifecycle" "$st/lifecycle"
chmod -R u+w "$st/lifecycle"

chmod -R go-w "$st"

# stage.json, versions asked of the staged tools themselves. bats is asked through its libexec
# entry (what bin/bats execs), run by the staged bash: no /usr/bin/env needed (a build sandbox
# has none).
jq_v=$("$st/bin/jq" --version)
# shellcheck disable=SC2016 # expanded by the staged bash
bash_v=$("$st/bin/bash" -c 'printf %s "$BASH_VERSION"')
# What bin/bats sets up before it execs libexec's bats through env, with the bash named.
# shellcheck disable=SC2016 # expanded by the staged bash
bats_v=$("$st/bin/bash" -c 'bats_readlinkf() { readlink -f "$1"; }
  export -f bats_readlinkf
  export BATS_ROOT=$1 BATS_LIBDIR=lib
  exec "$2" "$1/libexec/bats-core/bats" --version' _ "$st/lib/bats-core" "$st/bin/bash")
bats_v=${bats_v#Bats }
[[ -n $jq_v && -n $bash_v && -n $bats_v ]] || die "could not read the tools' versions"

# shellcheck disable=SC2016 # a jq program
"$J" -n --arg name "$name" --arg version "$version" --arg entry "$entry" \
  --arg jq_v "$jq_v" --arg jq_src "$jq_src" \
  --arg bash_v "$bash_v" --arg bash_src "$bash_src" \
  --arg bats_v "$bats_v" --arg bats_src "$bats_src" \
  --argjson libs "$libs" --argjson sources "$sources" \
  '{name: $name, version: $version, entry: $entry,
    tools: ([
      {name: "jq", version: $jq_v, path: "bin/jq", source: $jq_src},
      {name: "bash", version: $bash_v, path: "bin/bash", source: $bash_src},
      {name: "bats-core", version: $bats_v, path: "lib/bats-core/bin/bats", source: $bats_src}
    ] + [$libs[] | {name, version, path: "lib/\(.name)/load.bash", source}]),
    sources: $sources}' \
  >"$st/stage.json"
chmod 0644 "$st/stage.json"
