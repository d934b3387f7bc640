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
