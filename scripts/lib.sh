#!/usr/bin/env bash
# Shared by the project's scripts: install steps for a fresh Debian machine
# and the static launcher build. Sourced, not run.

step() { printf '\n== %s\n' "$*" >&2; }

# Installs the Debian packages not yet installed (apt-get update first, once).
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  step "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}

# Builds the launcher static for musl, with build paths remapped so that any
# checkout gives the same bytes; prints the binary's path. The flags go through
# CARGO_ENCODED_RUSTFLAGS (0x1f-separated): it survives paths with spaces and
# overrides a caller's RUSTFLAGS, which would change the output. The C parts
# (ring, through cc) rebuild when SOURCE_DATE_EPOCH changes, so it is fixed
# here: the bundle's epoch must not force a new launcher.
build_static_launcher() {
  local root cargo_home flags
  root=$(pwd)
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  flags="--remap-path-prefix=$root=/archy-gate"$'\x1f'"--remap-path-prefix=$cargo_home=/cargo"
  env -u RUSTFLAGS CARGO_ENCODED_RUSTFLAGS="$flags" CC_x86_64_unknown_linux_musl=musl-gcc \
    SOURCE_DATE_EPOCH=315532800 \
    cargo build --quiet --locked --release --target x86_64-unknown-linux-musl -p launcher >&2
  echo "${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-musl/release/launcher"
}

# The cache every script and `cargo xtask bundle` share.
archy_gate_cache() {
  echo "${ARCHY_GATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate}"
}

# A Python venv in the cache holding exactly the pinned requirements given
# (NAME==VERSION …), from pip's configured index; prints its dir. One venv per
# set of requirements, so a script that needs more packages (or other pins)
# gets a venv of its own and never changes one another script uses. A venv
# names its own dir in its scripts, so it is made in place; `.complete`,
# written last, says it is whole, and one without it is made again.
ensure_python_venv() {
  local key dir
  key=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
  dir=$(archy_gate_cache)/venv/$key
  if [ ! -f "$dir/.complete" ]; then
    step "python venv: $*"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input "$@" >&2
    printf '%s\n' "$@" >"$dir/.complete"
  fi
  echo "$dir"
}

# The judges of junit.xml: xmlschema validates it against the JUnit schema CI
# tools use (Jenkins xunit's junit-10.xsd, below), junitparser reads it as a
# CI consumer does (its xunit2 module knows flakyFailure and rerunFailure).
# shellcheck disable=SC2034 # read by the scripts that source this file
TEST_VENV_REQUIREMENTS=(xmlschema==4.3.2 elementpath==5.1.4 junitparser==5.0.3)

# junit-10.xsd, the JUnit schema of Jenkins' xunit plugin, as pytest ships it
# in its sdist (testing/example_scripts/): fetched from pip's index with the
# venv's pip, both the sdist and the schema checked against their sha256,
# kept in the cache (we ship only what we wrote); prints its path.
JUNIT_XSD_SDIST=pytest==8.3.4
JUNIT_XSD_SDIST_SHA256=965370d062bce11e73868e0335abac31b4d3de0e82f4007408d242b4f8610761
JUNIT_XSD_SHA256=a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6
ensure_junit_xsd() {
  local venv=$1 dir xsd scratch sdist
  dir=$(archy_gate_cache)/junit-xsd
  xsd=$dir/junit-10.xsd
  if ! echo "$JUNIT_XSD_SHA256  $xsd" | sha256sum -c --quiet >/dev/null 2>&1; then
    step "junit-10.xsd, from the $JUNIT_XSD_SDIST sdist"
    mkdir -p "$dir"
    scratch=$(mktemp -d "$dir/fetch.XXXXXX")
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-input --no-deps \
      --no-binary :all: -d "$scratch" "$JUNIT_XSD_SDIST" >&2
    sdist=$(find "$scratch" -maxdepth 1 -name 'pytest-*.tar.gz' | head -n 1)
    echo "$JUNIT_XSD_SDIST_SHA256  $sdist" | sha256sum -c --quiet >&2
    tar -xzf "$sdist" -O --wildcards '*/testing/example_scripts/junit-10.xsd' >"$scratch/junit-10.xsd"
    echo "$JUNIT_XSD_SHA256  $scratch/junit-10.xsd" | sha256sum -c --quiet >&2
    mv "$scratch/junit-10.xsd" "$xsd"
    rm -rf "$scratch"
  fi
  echo "$xsd"
}

# The pinned ansible-core the Ansible tests run (ansible-inventory,
# ansible-playbook, ansible-test): installed from the package index by pip into
# a venv of its own under ~/.cache/archy-gate, reused while the pin holds.
# Prints the venv's path. Fails, saying so, when it cannot be installed: the
# tests that need it then fail too (never skip).
ANSIBLE_CORE_VERSION=2.17.7
ensure_ansible_venv() {
  local venv="$HOME/.cache/archy-gate/ansible-core-$ANSIBLE_CORE_VERSION"
  # The marker is written last: a venv an interrupted install left is made again.
  # (A venv cannot be moved into place: its scripts name their own path.)
  if [ -f "$venv/.complete-with-sanity" ] && "$venv/bin/ansible-inventory" --version 2>/dev/null | grep -q "core $ANSIBLE_CORE_VERSION"; then
    echo "$venv"
    return 0
  fi
  # Debian's python3 needs python3-venv for `python3 -m venv` to give a pip.
  ensure_debian_packages python3 python3-venv >&2 || true
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" >&2 &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$ANSIBLE_CORE_VERSION" >&2; }; then
    rm -rf "$venv"
    echo "error: cannot install ansible-core $ANSIBLE_CORE_VERSION into a venv (python3 -m venv, pip): the Ansible tests need it" >&2
    return 1
  fi
  # ansible-test sanity: the pinned requirements of the tests we run, from the
  # files ansible-test ships, into this venv (for --local runs)...
  local reqs r
  reqs=$(echo "$venv"/lib/python3*/site-packages/ansible_test/_data/requirements)
  for r in validate-modules pep8 yamllint import runtime-metadata; do
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs/sanity.$r.txt" >&2 || {
      rm -rf "$venv"
      echo "error: cannot install ansible-test's sanity.$r requirements" >&2
      return 1
    }
  done
  touch "$venv/.complete-with-sanity"
  echo "$venv"
}

# ansible-test makes a venv per sanity test and bootstraps pip into it with a
# script it downloads from a host of its own, outside the package index. This
# places ansible/tools/get_pip_shim.py (ensurepip, then pip from the index) where
# ansible-test looks for its cached copy, with the pip settings of this
# environment (ansible-test passes few variables on to pip).
ensure_ansible_test_pip_shim() {
  local cache="$HOME/.ansible/test/cache" pip_version
  pip_version=$(grep -hoE "pip='[0-9.]+'" "$1"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | grep -oE '[0-9.]+' | head -1)
  [ -n "$pip_version" ] || { echo "error: cannot tell which pip ansible-test bootstraps" >&2; return 1; }
  mkdir -p "$cache"
  {
    echo "import os"
    env | grep -E '^(PIP_[A-Z_]+|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE)=' | while IFS='=' read -r k v; do
      printf 'os.environ.setdefault(%s, %s)\n' "'$k'" "$(printf '%s' "$v" | python3 -c 'import sys; print(repr(sys.stdin.read()))')"
    done
    cat ansible/tools/get_pip_shim.py
  } >"$cache/get_pip_${pip_version//./_}.py"
}

# The evidence judges (launcher/tests/evidence/check.py): CycloneDX's own JSON schemas and
# validator, in-toto-attestation's protobuf definitions (Statement v1, SLSA Provenance v1,
# test-result) and securesystemslib's DSSE verifier, pinned, in a venv of their own
# (ensure_python_venv); prints its python.
EVIDENCE_PINS=(
  "cyclonedx-python-lib[json-validation]==11.12.0"
  "in-toto-attestation==0.9.3"
  "securesystemslib==1.6.0"
  "protobuf==7.36.2"
  "jsonschema==4.26.0"
)
ensure_evidence_venv() {
  echo "$(ensure_python_venv "${EVIDENCE_PINS[@]}")/bin/python"
}
