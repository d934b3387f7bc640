#!/usr/bin/env bash
# Runs every test of archy-gate on a fresh Debian 12 machine (as root), after
# installing what the tests need. CI calls this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# jq: Debian's dynamic one, which the bare-node test shows failing; busybox-static:
# the bare node; binutils: readelf, an independent judge of static linking;
# chromium: the browser the fleet's report.html is rendered in, headless;
# strace: sees every exec, however short-lived, for the password checks;
# python3-venv: the venv of the JUnit judges (ensure_python_venv).
ensure_debian_packages musl-tools jq shellcheck busybox-static binutils openssh-server openssh-client bash-static minisign chromium strace python3-venv
ensure_rust_target x86_64-unknown-linux-musl

step "ansible-core for the Ansible tests (pinned, in a venv)"
# ARCHY_GATE_ANSIBLE_VENV: the venv launcher/tests/it/ansible.rs runs
# ansible-inventory, ansible-playbook and ansible-test from. If it cannot be
# installed, say so and fail: those tests never pass by skipping.
ansible_venv=$(ensure_ansible_venv) || { echo "ansible-core could not be installed: the Ansible tests cannot run" >&2; exit 1; }
ensure_ansible_test_pip_shim "$ansible_venv"
export ARCHY_GATE_ANSIBLE_VENV=$ansible_venv

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
shellcheck -x scripts/*.sh bench/*.sh bundle/*.sh bundle/lifecycle/*.sh bundle/lifecycle/cross/*/*.sh .ci/run \
  nix/template/lifecycle/*.sh
shellcheck -s bash bundle/lifecycle/lib/*.bash bundle/lifecycle/tests/*.bash bundle/lifecycle/tests/*.bats \
  bundle/lifecycle/cross/*/tests/*.bats bundle/lifecycle/cross/*/tests/*.bash \
  nix/template/lifecycle/tests/*.bats
# The stand-in node's shims run under busybox sh.
shellcheck -s sh launcher/tests/standin/shims/*

step "the evidence judges (CycloneDX, in-toto, DSSE; a pinned venv)"
ensure_debian_packages python3-venv
ARCHY_GATE_EVIDENCE_PYTHON=$(ensure_evidence_venv)
export ARCHY_GATE_EVIDENCE_PYTHON
echo "$ARCHY_GATE_EVIDENCE_PYTHON"

step "static launcher (musl)"
static_launcher=$(build_static_launcher)
echo "$static_launcher"

step "the bundle (bundle/build.sh)"
bundle/build.sh target/test-bundle
bundle_dir=$(pwd)/target/test-bundle

step "the flake (nix/), against the offline stand-in for nixpkgs"
bash scripts/test-nix.sh "$static_launcher"

step "the JUnit judges: a python venv and the JUnit schema"
# The fleet's junit.xml is validated against the schema CI tools use and read
# by a JUnit consumer from PyPI (launcher/tests/it/fleet_flaky.rs).
ARCHY_GATE_TEST_VENV=$(ensure_python_venv "${TEST_VENV_REQUIREMENTS[@]}")
ARCHY_GATE_JUNIT_XSD=$(ensure_junit_xsd "$ARCHY_GATE_TEST_VENV")
export ARCHY_GATE_TEST_VENV ARCHY_GATE_JUNIT_XSD

step "tests: the default tier and the slow tier"
# Both tiers (launcher/tests/it/main.rs): --include-ignored runs the slow tier,
# the tests a plain `cargo test` reports as ignored. Under pipefail a failing
# test would end the script here, before the summary line: keep cargo's
# status, print the line, then exit with it.
status=0
ARCHY_GATE_STATIC_LAUNCHER=$static_launcher ARCHY_GATE_BUNDLE_DIR=$bundle_dir \
  cargo test --locked --workspace --no-fail-fast -- --include-ignored 2>&1 | tee target/test.log || status=$?
# cargo test's own summary lines, folded into one line a CI reader can trust;
# with --include-ignored nothing should be ignored, and a number here says otherwise.
summary=$(awk '/^test result:/ { p += $4; f += $6; i += $8 }
  END { printf "tests: %d passed, %d failed, %d ignored\n", p, f, i }' target/test.log)
echo "$summary"
# Fewer passed than the suite holds means tests dropped out unseen (a module
# left out of tests/it/main.rs, a feature turned off, a binary not built):
# the floor beside the tests is the count the last addition brought.
floor_file=launcher/tests/test-count-floor
floor=$(tr -d '[:space:]' <"$floor_file")
[[ $floor =~ ^[0-9]+$ ]] || { echo "$floor_file holds no count: ${floor@Q}" >&2; exit 1; }
passed=$(echo "$summary" | awk '{ print $2 }')
if [ "$passed" -lt "$floor" ]; then
  echo "tests: $passed passed, below the floor of $floor in $floor_file: tests dropped out of the run" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
