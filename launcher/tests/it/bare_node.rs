//! The real bundle (bundle/build.sh) on a bare node: a busybox-only chroot
//! standing in for a node with no bash, no jq, no bats and no shared
//! libraries. Proves the bundle brings everything, and that the problem it
//! solves is real: Debian's dynamically linked jq fails there.
//!
//! jq's own upstream suite is not run here: the bundle's jq is, byte for
//! byte, the one bundle/build.sh ran that suite against when it compiled it
//! (a jq that fails is never cached); the slow tier's from-scratch rebuild
//! (bundle_build.rs) runs it again on every CI run.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::bare_node::BareNode;
use support::{real_bundle_dir, Run};

const SUITE: &str = r#"
setup() {
  bats_load_library bats-support
  bats_load_library bats-assert
  bats_load_library bats-file
}

@test "jq reads the node's state" {
  run jq -r '.packages[] | select(.state == "running") | .id' /root/state.json
  assert_success
  assert_output "bitcoind"
}

@test "bats-file sees the node's files" {
  assert_file_exists /root/state.json
  assert_dir_exists /opt/gate/lib/bats-core
  assert_file_not_exists /root/missing
}

@test "the bundle's bash runs the tests" {
  run bash -c 'echo "${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"'
  assert_success
  assert_output "5.2"
}
"#;

const STATE: &str =
    r#"{"packages": [{"id": "bitcoind", "state": "running"}, {"id": "lnd", "state": "stopped"}]}"#;

const RUN_BATS: &str = "mkdir -p /root/out && \
    bats --tap --report-formatter junit --output /root/out /root/suite";

fn gate_env() -> [(&'static str, &'static str); 2] {
    [
        ("PATH", "/opt/gate/bin:/bin:/usr/bin"),
        ("BATS_LIB_PATH", "/opt/gate/lib"),
    ]
}

/// A bare node with the real bundle unpacked at /opt/gate by the bundle itself.
fn node_with_bundle() -> BareNode {
    let node = BareNode::new();
    let bundle = real_bundle_dir().join("archy-gate");
    node.put("/root/archy-gate", &fs::read(&bundle).unwrap(), 0o755);
    node.put("/root/state.json", STATE.as_bytes(), 0o644);
    node.put("/root/suite/node.bats", SUITE.as_bytes(), 0o644);
    // Whatever the node's own bash is, the gate must not use it.
    node.put(
        "/bin/bash",
        b"#!/bin/sh\necho 'the node bash ran' >&2\nexit 97\n",
        0o755,
    );
    node.sh("/root/archy-gate extract --to /opt/gate").expect(0);
    node
}

#[test]
fn the_node_is_bare() {
    let node = BareNode::new();
    let run = node
        .sh("for t in jq bats curl; do command -v $t || echo \"no $t\"; done")
        .expect(0);
    assert_eq!(run.stdout, "no jq\nno bats\nno curl\n");
    for libdir in ["lib", "lib64", "usr/lib"] {
        assert!(!node.path(libdir).exists(), "the bare node has /{libdir}");
    }
}

#[test]
fn bats_runs_from_the_bundle_on_a_bare_node() {
    let node = node_with_bundle();
    let run = node.sh_with("", &gate_env(), RUN_BATS).expect(0);
    assert!(run.stdout.starts_with("1..3\n"), "{}", run.stdout);
    for n in 1..=3 {
        assert!(run.stdout.contains(&format!("ok {n} ")), "{}", run.stdout);
    }
    assert!(!run.stdout.contains("not ok"), "{}", run.stdout);
    assert!(!run.stderr.contains("the node bash ran"), "{}", run.stderr);
    let junit = fs::read_to_string(node.path("/root/out/report.xml")).unwrap();
    assert!(junit.contains(r#"tests="3""#), "{junit}");
    assert!(junit.contains(r#"failures="0""#), "{junit}");
    assert!(junit.contains(r#"errors="0""#), "{junit}");

    // Through the bin/bats symlink and the libexec helpers, with env bash.
    let run = node.sh_with("", &gate_env(), "bats --version").expect(0);
    assert_eq!(run.stdout.trim(), "Bats 1.13.0");
}

#[test]
fn debians_dynamic_jq_fails_where_the_bundles_works() {
    let jq = Path::new("/usr/bin/jq");
    assert!(
        jq.exists(),
        "this test needs Debian's jq: apt-get install jq"
    );
    let node = node_with_bundle();
    node.put("/opt/gate/bin/jq", &fs::read(jq).unwrap(), 0o755);
    let run = node.sh_with("", &gate_env(), RUN_BATS);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("not ok 1 jq reads the node's state"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ok 2 bats-file sees"),
        "only jq's test fails: {}",
        run.stdout
    );
    let junit = fs::read_to_string(node.path("/root/out/report.xml")).unwrap();
    assert!(junit.contains(r#"failures="1""#), "{junit}");
}

#[test]
fn every_elf_in_the_bundle_is_static() {
    let node = node_with_bundle();
    let mut elves = vec![node.path("/root/archy-gate")];
    let mut stack = vec![node.path("/opt/gate")];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(dir).unwrap().flatten() {
            let meta = fs::symlink_metadata(item.path()).unwrap();
            if meta.is_dir() {
                stack.push(item.path());
            } else if meta.is_file() && fs::read(item.path()).unwrap().starts_with(b"\x7fELF") {
                elves.push(item.path());
            }
        }
    }
    let names: Vec<String> = elves
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into())
        .collect();
    for expected in ["archy-gate", "bash", "jq"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} among {names:?}"
        );
    }
    for elf in &elves {
        // readelf, not our own ELF reader: an independent opinion.
        let run = Run::of(
            Command::new("readelf")
                .arg("-lWd")
                .arg(elf)
                .output()
                .unwrap(),
        )
        .expect(0);
        assert!(
            !run.stdout.contains("INTERP"),
            "{} has an interpreter",
            elf.display()
        );
        assert!(
            !run.stdout.contains("(NEEDED)"),
            "{} needs libraries",
            elf.display()
        );
    }
}
