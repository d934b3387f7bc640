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

# The evidence judges (launcher/tests/evidence/check.py): CycloneDX's own JSON schemas and
# validator, in-toto-attestation's protobuf definitions (Statement v1, SLSA Provenance v1,
# test-result) and securesystemslib's DSSE verifier, pinned, in a venv of their own under
# ~/.cache/archy-gate keyed by the pins; prints its python. Installed through the machine's
# configured pip.
EVIDENCE_PINS=(
  "cyclonedx-python-lib[json-validation]==11.12.0"
  "in-toto-attestation==0.9.3"
  "securesystemslib==1.6.0"
  "protobuf==7.36.2"
  "jsonschema==4.26.0"
)
ensure_evidence_venv() {
  local key dir
  key=$(printf '%s\n' "${EVIDENCE_PINS[@]}" | sha256sum | cut -c1-12)
  dir=${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate/evidence-venv-$key
  if [[ ! -x $dir/bin/python || ! -f $dir/.complete ]]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check "${EVIDENCE_PINS[@]}" >&2
    touch "$dir/.complete"
  fi
  echo "$dir/bin/python"
}
