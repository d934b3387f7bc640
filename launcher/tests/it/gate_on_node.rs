//! The whole user flow on a bare node: the single file copied in, then
//! `./archy-gate run --iterations 2`, against the stand-in Archy node on
//! loopback. What an operator sees on the terminal is part of the test.

use crate::support;

use std::fs;

use support::bare_node::BareNode;
use support::real_bundle_dir;
use support::standin::StandinNode;
use support::Run;

const PW: &str = "operator-typed-this";

struct Node {
    standin: StandinNode,
    node: BareNode,
}

impl Node {
    fn new(scenario: &str) -> Node {
        let node = BareNode::new();
        let bundle = real_bundle_dir().join("archy-gate");
        node.put("/root/archy-gate", &fs::read(bundle).unwrap(), 0o755);
        let standin = StandinNode::start(&node, scenario, PW);
        Node { standin, node }
    }

    /// `./archy-gate run --iterations 2 ARGS` from /root, as an operator types it.
    fn gate(&self, args: &str) -> Run {
        let host = self.standin.host();
        self.node.sh_with(
            "",
            &[("ARCHY_PASSWORD", PW)],
            &format!("cd /root && ./archy-gate run --iterations 2 --host {host} {args}"),
        )
    }

    fn record(&self) -> serde_json::Value {
        let runs = self.node.path("/tmp/archy-gate/runs");
        let mut ids: Vec<_> = fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        serde_json::from_slice(&fs::read(ids.remove(0).join("run.json")).unwrap()).unwrap()
    }
}

#[test]
fn a_healthy_node_passes_the_gate() {
    let node = Node::new("healthy");
    let run = node.gate("");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("# iteration 2 of 2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("# 2 of 2 iterations passed"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("gate passed:"), "{}", run.stderr);
    let rec = node.record();
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
    let node = Node::new("package-down");
    let run = node.gate("");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rec = node.record();
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
