//! Flakiness shown, in every report: a fleet of three real sshd nodes runs
//! a test-made suite (labelled so below, kept small) three times each. One
//! test fails only in its second run, and only on the node holding
//! /var/tmp/flaky-here (a counter file on the node counts its runs);
//! another fails in every run on the node holding /var/tmp/broken-here.
//! The first must be called flaky on that node and nowhere else, the
//! second always failing on its node, in report.json's matrix, report.md's
//! two lists, report.html as headless Chromium lays it out (each failed
//! square linked to its failure and its gate.log line), and junit.xml:
//! valid against the JUnit schema CI tools use (Jenkins xunit's
//! junit-10.xsd, checked by xmlschema) and read by junitparser, a JUnit
//! consumer from PyPI. Both come from the venv `scripts/test.sh` makes
//! (`ARCHY_GATE_TEST_VENV`, `ARCHY_GATE_JUNIT_XSD`); without them the test
//! fails saying how to get them.

use crate::fleet_cross::{on_ssh, Fleet};
use crate::support;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::chromium::{file_url, probe, section, Chromium, Png};
use support::gate_bundle::bundle_with_gate_and;
use support::ssh_node::SshNode;
use support::Run;

const ITERATIONS: u32 = 3;
const FLAKY: &str = "flaky: fails on its second run where marked";
const BROKEN: &str = "broken: fails where marked";

/// The test-made suite: four tests, each a line or two.
const SUITE: &str = r#"# test-made for tests/it/fleet_flaky.rs
@test "steady: always passes" {
  true
}

@test "flaky: fails on its second run where marked" {
  runs=$(( $(cat /var/tmp/flaky-runs 2>/dev/null || echo 0) + 1 ))
  echo "$runs" >/var/tmp/flaky-runs
  if [[ -e /var/tmp/flaky-here ]] && ((runs == 2)); then
    echo "run $runs on a flaky node"
    false
  fi
}

@test "broken: fails where marked" {
  echo "this node is marked broken"
  [[ ! -e /var/tmp/broken-here ]]
}

@test "skipped: never runs" {
  skip "not here"
}
"#;

/// A bundle whose gate is the real run-gate.sh (bats with `--timing`) over
/// the suite above.
fn flaky_bundle(dir: &Path) -> PathBuf {
    let gate =
        fs::read_to_string(support::workspace_root().join("bundle/lifecycle/run-gate.sh")).unwrap();
    bundle_with_gate_and(dir, &gate, |stage| {
        let tests = stage.join("lifecycle/tests");
        fs::create_dir_all(&tests).unwrap();
        fs::write(tests.join("10-flaky.bats"), SUITE).unwrap();
    })
}

/// The venv's python and the schema, from the variables scripts/test.sh sets.
fn judges() -> (PathBuf, PathBuf) {
    let how = "run scripts/test.sh, or from the checkout: \
        . scripts/lib.sh && export ARCHY_GATE_TEST_VENV=$(ensure_python_venv \"${TEST_VENV_REQUIREMENTS[@]}\") \
        && export ARCHY_GATE_JUNIT_XSD=$(ensure_junit_xsd \"$ARCHY_GATE_TEST_VENV\")";
    let var = |name: &str| match std::env::var_os(name) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!("{name} is not set: the JUnit judges are missing; {how}"),
    };
    let python = var("ARCHY_GATE_TEST_VENV").join("bin/python");
    let xsd = var("ARCHY_GATE_JUNIT_XSD");
    assert!(python.is_file(), "no {}: {how}", python.display());
    assert!(xsd.is_file(), "no {}: {how}", xsd.display());
    (python, xsd)
}

/// Validates `junit` against `xsd` (xmlschema raises on the first error)
/// and reads it with junitparser's xunit2 module, which knows surefire's
/// flakyFailure and rerunFailure: what it read, as JSON.
const JUDGE: &str = r#"
import json, sys
import xmlschema
from junitparser.xunit2 import JUnitXml, FlakyFailure, RerunFailure
from junitparser import Failure
xsd, junit = sys.argv[1], sys.argv[2]
xmlschema.XMLSchema(xsd).validate(junit)
suites = []
for suite in JUnitXml.fromfile(junit):
    cases = []
    for case in suite:
        cases.append({
            "name": case.name, "classname": case.classname, "time": case.time,
            "passed": case.is_passed, "skipped": case.is_skipped,
            "flaky": case.is_flaky, "rerun": case.is_rerun,
            "failures": [r.message for r in case.result if isinstance(r, Failure)],
            "failure_text": [r.text for r in case.result if isinstance(r, Failure)],
            "flaky_failures": [[f.message, f.type, f.system_out] for f in case.flaky_failures()],
            "rerun_failures": [[f.message, f.type, f.system_out] for f in case.rerun_failures()],
            "system_out": case.system_out,
        })
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
        "errors": suite.errors, "timestamp": suite.timestamp, "hostname": suite.hostname,
        "time": suite.time, "cases": cases})
print(json.dumps(suites))
"#;

fn judge(junit: &Path) -> Value {
    let (python, xsd) = judges();
    let run = Run::of(
        Command::new(python)
            .args(["-c", JUDGE])
            .arg(xsd)
            .arg(junit)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "junit.xml judged:\n{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_test_that_fails_only_in_iteration_2_on_one_node_is_flaky_there_and_nowhere_else() {
    // Before any node runs: a missing judge fails now, not after the fleet.
    judges();
    let mut fleet = Fleet::new();
    fleet.bundle = flaky_bundle(&fleet.dir.path().join("bundle"));
    let nodes = [
        on_ssh(SshNode::start("steady"), "healthy"),
        on_ssh(SshNode::start("flaky"), "healthy"),
        on_ssh(SshNode::start("broken"), "healthy"),
    ];
    nodes[1].node.node.put("/var/tmp/flaky-here", b"", 0o644);
    nodes[2].node.node.put("/var/tmp/broken-here", b"", 0o644);
    for n in &nodes {
        fleet.add(n, "fleet");
    }
    let run = fleet.run(ITERATIONS);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let phase = |name: &str| support::node_report(&report, name)["phase"].clone();
    assert_eq!(phase("steady"), "passed");
    assert_eq!(phase("flaky"), "failed");
    assert_eq!(phase("broken"), "failed");

    // report.json: the matrix, and the one flaky and one failing place.
    let matrix = &report["matrix"];
    assert_eq!(
        matrix["nodes"],
        serde_json::json!(["steady", "flaky", "broken"])
    );
    let mut verdicts = Vec::new();
    for row in matrix["tests"].as_array().unwrap() {
        for on in row["nodes"].as_array().unwrap() {
            let test = row["test"].as_str().unwrap();
            let node = on["node"].as_str().unwrap();
            let marks: Vec<&str> = on["iterations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            let expected: (&str, [&str; 3]) = match (test, node) {
                (FLAKY, "flaky") => ("flaky", ["pass", "fail", "pass"]),
                (BROKEN, "broken") => ("failing", ["fail", "fail", "fail"]),
                ("skipped: never runs", _) => ("skipped", ["skip", "skip", "skip"]),
                _ => ("passed", ["pass", "pass", "pass"]),
            };
            assert_eq!(
                (on["verdict"].as_str().unwrap(), marks.as_slice()),
                (expected.0, &expected.1[..]),
                "{test} on {node}"
            );
            verdicts.push((test.to_string(), node.to_string()));
        }
    }
    assert_eq!(
        verdicts.len(),
        4 * 3,
        "every test on every node: {matrix:#}"
    );
    // bats' --timing reached the state: each test that ran has its time.
    for n in report["nodes"].as_array().unwrap() {
        for it in n["iteration_results"].as_array().unwrap() {
            for t in it["tests"].as_array().unwrap() {
                assert_eq!(
                    t["ms"].is_u64(),
                    t["outcome"] != "skipped",
                    "{}: {t}",
                    n["name"]
                );
            }
        }
    }

    // report.md: the flaky test and the failing one, each listed apart.
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    let table = |title: &str| -> Vec<String> {
        let at = md
            .find(title)
            .unwrap_or_else(|| panic!("no {title} in\n{md}"));
        md[at..]
            .lines()
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        table("## Flaky tests"),
        ["| flaky: fails on its second run where marked | flaky | iteration 2 of 3 | 1, 3 |"],
        "{md}"
    );
    assert_eq!(
        table("## Always failing"),
        ["| broken: fails where marked | broken | iterations 1, 2 and 3 of 3 |"],
        "{md}"
    );

    // report.html, as Chromium lays it out.
    let html = fleet.out().join("report.html");
    let chromium = Chromium::new();
    let page = probe(&chromium, &html);
    assert_eq!(section(&page, "matrix")["shown"], true, "{page:#}");
    let grid = page["grid"].as_array().unwrap();
    assert_eq!(grid.len(), 4 * 3, "{page:#}");
    let green = "rgb(22, 163, 74)";
    let red = "rgb(220, 38, 38)";
    for cell in grid {
        let (test, node) = (
            cell["test"].as_str().unwrap(),
            cell["node"].as_str().unwrap(),
        );
        let on = matrix["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["test"] == test)
            .and_then(|r| {
                r["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|n| n["node"] == node)
            })
            .unwrap_or_else(|| panic!("{test} on {node} is not in report.json"));
        assert_eq!(cell["verdict"], on["verdict"], "{test} on {node}");
        assert_eq!(cell["shown"], true, "{test} on {node}");
        // Flaky and failing say so, in words; the flaky cell is framed.
        let verdict = on["verdict"].as_str().unwrap();
        match verdict {
            "flaky" | "failing" => assert_eq!(
                cell["tag"].as_str().map(str::to_lowercase).as_deref(),
                Some(verdict),
                "{cell}"
            ),
            _ => assert!(cell["tag"].is_null(), "{cell}"),
        }
        assert_eq!(cell["frame"] != "none", verdict == "flaky", "{cell}");
        let squares = cell["squares"].as_array().unwrap();
        assert_eq!(squares.len(), ITERATIONS as usize, "{cell}");
        for (sq, mark) in squares.iter().zip(on["iterations"].as_array().unwrap()) {
            assert_eq!(&sq["mark"], mark, "{cell}");
            assert_eq!(sq["shown"], true, "{cell}");
            assert!(
                sq["width"].as_f64().unwrap() >= 10.0,
                "a square to see: {sq}"
            );
            let colour = match mark.as_str().unwrap() {
                "pass" => green,
                "fail" => red,
                _ => "",
            };
            if !colour.is_empty() {
                assert_eq!(sq["background"], colour, "{test} on {node}: {sq}");
            }
            if mark != "fail" {
                assert!(sq["href"].is_null(), "{sq}");
                continue;
            }
            // A failed square links to its failure on the page, which names
            // the node, the test, the iteration and its gate.log line.
            let target = sq["target"]
                .as_str()
                .unwrap_or_else(|| panic!("{test} on {node}: {sq} links nowhere"));
            let i = sq["i"].as_u64().unwrap();
            let line: usize = target
                .rsplit_once("gate.log line ")
                .unwrap_or_else(|| panic!("{target}"))
                .1
                .parse()
                .unwrap();
            assert_eq!(
                target,
                format!("{node} · iteration {i} · {test} · gate.log line {line}"),
                "{sq}"
            );
            let log =
                fs::read_to_string(fleet.out().join("nodes").join(node).join("gate.log")).unwrap();
            let at = log.lines().nth(line - 1).unwrap();
            assert!(
                at.starts_with("not ok ") && at.contains(test),
                "gate.log line {line} is {at:?}, not {test}'s failure"
            );
            let before = log
                .lines()
                .take(line)
                .filter(|l| l.starts_with("# iteration ") && !l.contains("failed"))
                .last();
            assert_eq!(
                before,
                Some(format!("# iteration {i} of {ITERATIONS}").as_str()),
                "line {line}"
            );
        }
    }
    let flaky_cells: Vec<&Value> = grid.iter().filter(|c| c["verdict"] == "flaky").collect();
    assert_eq!(flaky_cells.len(), 1, "{page:#}");
    assert_eq!(
        (&flaky_cells[0]["test"], &flaky_cells[0]["node"]),
        (&Value::from(FLAKY), &Value::from("flaky"))
    );
    assert!(
        page["grid_right"].as_f64().unwrap() <= 1280.0,
        "the matrix fits the window: {}",
        page["grid_right"]
    );
    // A screenshot for people (kept beside the html test's).
    let png = fleet.out().join("matrix.png");
    chromium.screenshot(&file_url(&html), &png, 1280, 1600);
    let image = Png::read(&png);
    assert!(
        image.count([0xdc, 0x26, 0x26]) > 4 * 14 * 14,
        "the red squares"
    );
    let keep = support::workspace_root().join("target/fleet-report-html");
    fs::create_dir_all(&keep).unwrap();
    fs::copy(&png, keep.join("flaky-matrix.png")).unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "matrix screenshot: {}",
        keep.join("flaky-matrix.png").display()
    );

    // junit.xml: schema-valid, and junitparser finds the one flake.
    let suites = judge(&fleet.out().join("junit.xml"));
    let suites = suites.as_array().unwrap();
    assert_eq!(suites.len(), 3, "{suites:#?}");
    for suite in suites {
        let node = suite["name"].as_str().unwrap();
        assert_eq!(suite["hostname"], node);
        assert_eq!(suite["errors"], 0);
        assert!(
            suite["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{suite}"
        );
        let cases = suite["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4, "{suite:#}");
        for case in cases {
            let test = case["name"].as_str().unwrap();
            assert_eq!(case["classname"], node);
            let is = |k: &str| case[k].as_bool().unwrap();
            match (test, node) {
                (FLAKY, "flaky") => {
                    assert!(is("flaky") && !is("passed") && !is("rerun"), "{case:#}");
                    assert_eq!(
                        case["failures"],
                        serde_json::json!(["flaky: failed in iteration 2 of 3"])
                    );
                    let flakes = case["flaky_failures"].as_array().unwrap();
                    assert_eq!(flakes.len(), 1, "{case:#}");
                    assert_eq!(
                        (&flakes[0][0], &flakes[0][1]),
                        (&Value::from("iteration 2"), &Value::from("failed"))
                    );
                    assert!(
                        flakes[0][2]
                            .as_str()
                            .unwrap()
                            .contains("run 2 on a flaky node"),
                        "{case:#}"
                    );
                    assert!(
                        case["failure_text"][0]
                            .as_str()
                            .unwrap()
                            .contains("run 2 on a flaky node"),
                        "{case:#}"
                    );
                    assert!(
                        case["system_out"]
                            .as_str()
                            .unwrap()
                            .contains("# iteration 2: not ok"),
                        "{case:#}"
                    );
                }
                (BROKEN, "broken") => {
                    assert!(is("rerun") && !is("flaky") && !is("passed"), "{case:#}");
                    assert_eq!(
                        case["failures"],
                        serde_json::json!(["failed in iterations 1, 2 and 3 of 3"])
                    );
                    assert_eq!(
                        case["rerun_failures"].as_array().unwrap().len(),
                        2,
                        "{case:#}"
                    );
                    assert!(
                        case["system_out"]
                            .as_str()
                            .unwrap()
                            .contains("this node is marked broken"),
                        "{case:#}"
                    );
                }
                ("skipped: never runs", _) => {
                    assert!(is("skipped") && !is("flaky"), "{case:#}");
                    // bats times no skipped test: its time is left out.
                    assert!(case["time"].is_null(), "{case:#}");
                }
                _ => {
                    assert!(
                        is("passed") && !is("flaky") && !is("rerun"),
                        "{test} on {node}: {case:#}"
                    );
                    assert!(
                        case["time"].is_f64(),
                        "{test} on {node}: its time: {case:#}"
                    );
                }
            }
        }
    }
}
