//! The whole user flow on a bare node: the single file copied in, then
//! `./archy-gate run --iterations 2`, against the stand-in Archy node on
//! loopback. What an operator sees on the terminal is part of the test.

use crate::support;

use support::fixture::ArchyNode;
use support::Run;

const PW: &str = "operator-typed-this";

/// A bare node with the single file copied in, faking `scenario`.
fn node_faking(scenario: &str) -> ArchyNode {
    ArchyNode::build(scenario, PW).bundle().bare()
}

/// `./archy-gate run --iterations 2 ARGS` from /root, as an operator types it.
fn gate(node: &ArchyNode, args: &str) -> Run {
    let host = node.standin.host();
    node.node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        &format!("cd /root && ./archy-gate run --iterations 2 --host {host} {args}"),
    )
}

#[test]
fn a_healthy_node_passes_the_gate() {
    let node = node_faking("healthy");
    let run = gate(&node, "");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("# iteration 2 of 2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("# 2 of 2 iterations passed"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("gate passed:"), "{}", run.stderr);
    let rec = node.only_record();
    assert_eq!(rec["state"], "passed");
    assert_eq!(rec["iterations"], 2);
    assert_eq!(rec["tests"]["failed"], 0);
    assert!(rec["tests"]["passed"].as_u64().unwrap() >= 10, "{rec}");
    assert_eq!(
        rec["tests"]["sources"].as_array().unwrap().len(),
        2,
        "one TAP file per iteration"
    );
    // The suite spoke to the node through `launcher rpc`: it logged in.
    assert!(node
        .standin
        .requests()
        .iter()
        .any(|r| r.contains("server.get-state")));
    let runs = node.node.path("/tmp/archy-gate/runs");
    let grep = std::process::Command::new("grep")
        .args(["-r", PW])
        .arg(&runs)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password is in the run records: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

#[test]
fn a_package_down_fails_the_gate_and_says_where_to_look() {
    let node = node_faking("package-down");
    let run = gate(&node, "");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rec = node.only_record();
    assert_eq!(rec["state"], "failed");
    let failing: Vec<&str> = rec["tests"]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        failing.contains(&"every installed package is running and healthy"),
        "{failing:?}"
    );
    // The terminal names the failing tests and the full log.
    assert!(run.stderr.contains("gate failed:"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("failed: every installed package is running and healthy"),
        "{}",
        run.stderr
    );
    let log = format!(
        "full log: /tmp/archy-gate/runs/{}/gate.log",
        rec["run_id"].as_str().unwrap()
    );
    assert!(run.stderr.contains(&log), "{}", run.stderr);
    assert!(
        run.stdout.contains("lnd"),
        "the TAP names the culprit: {}",
        run.stdout
    );
}
