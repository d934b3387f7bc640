//! Which nodes a fleet run touches and when: `--only`, `--limit`,
//! `--max-fail`, `--wait-ready`; and what it tells while it runs
//! (`--events`), with the exit status for each kind of shortfall. The
//! nodes are real sshd nodes faking Archy nodes (fleet.rs's); what a node
//! saw is counted from its sshd's own log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::fleet::{archy_node, entry, Fleet, Node};
use crate::support::{node_report, Run};

fn run_with(fleet: &Fleet, jobs: u32, args: &[&str]) -> Run {
    Run::of(fleet.command("run", 1, jobs).args(args).output().unwrap())
}

/// `fleet run` of the same roster and bundle into another fleet dir.
fn run_into(fleet: &Fleet, out: &std::path::Path, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(crate::support::launcher());
    cmd.args(["fleet", "run", "--roster"])
        .arg(fleet.roster(1))
        .arg("--bundle")
        .arg(crate::support::real_bundle_dir().join("archy-gate"))
        .arg("--out")
        .arg(out)
        .args(args)
        .env("ARCHY_PW_TEST", super::fleet::PASSWORD);
    Run::of(cmd.output().unwrap())
}

fn connections(nodes: &[&Node]) -> BTreeMap<String, usize> {
    nodes
        .iter()
        .map(|n| (n.node.name().to_string(), n.node.connections()))
        .collect()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

fn phase(report: &Value, node: &str) -> String {
    node_report(report, node)["phase"]
        .as_str()
        .unwrap()
        .to_string()
}

fn reason(report: &Value, node: &str) -> String {
    node_report(report, node)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A first run leaves one node failed and one not ready; `--only
/// failed,not-ready` touches exactly those two (fixed meanwhile) and keeps
/// the others' results; `--limit` on a fresh fleet dir touches only the
/// nodes it names, and a nothing-failed-but-not-all-ran fleet exits 4.
#[test]
fn only_and_limit_touch_exactly_the_nodes_they_name() {
    let prim = archy_node("prim", "healthy");
    let broken = archy_node("broken", "package-down");
    let syncing = archy_node("syncing", "ibd");
    let good = archy_node("good", "healthy");
    let all = [&prim, &broken, &syncing, &good];
    let mut fleet = Fleet::new();
    fleet.add(&prim, "primary");
    fleet.add(&broken, "fleet");
    fleet.add(&syncing, "fleet");
    fleet.add(&good, "fleet");

    let first = fleet.run(1, 4);
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(
        connections(&all),
        counts(&[("prim", 1), ("broken", 1), ("syncing", 1), ("good", 1)])
    );
    let report = fleet.report();
    assert_eq!(phase(&report, "broken"), "failed");
    assert_eq!(phase(&report, "syncing"), "not-ready");
    let good_run = node_report(&report, "good")["run_id"].clone();

    // Fixed since: the package is up again, bitcoin synced.
    broken.standin.set_scenario("healthy");
    syncing.standin.set_scenario("healthy");
    let plan = Run::of(
        fleet
            .command("plan", 1, 4)
            .args(["--only", "failed,not-ready"])
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(
        plan.stdout
            .contains("--only failed,not-ready: this run drives broken, syncing;"),
        "{}",
        plan.stdout
    );
    let again = run_with(&fleet, 4, &["--only", "failed,not-ready"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("--only failed,not-ready: read the fleet run started")
            && again.stderr.contains("state.json")
            && again.stderr.contains("running broken, syncing again"),
        "it says which run it read: {}",
        again.stderr
    );
    assert_eq!(
        connections(&all),
        counts(&[("prim", 1), ("broken", 2), ("syncing", 2), ("good", 1)]),
        "only the failed and the not-ready node were connected to again"
    );
    let report = fleet.report();
    for n in ["prim", "broken", "syncing", "good"] {
        assert_eq!(phase(&report, n), "passed", "{n}: {report:#}");
    }
    assert_eq!(
        node_report(&report, "good")["run_id"],
        good_run,
        "a node left out keeps its result"
    );

    // A fresh fleet dir, --limit by role and by glob: the others are not
    // touched, nothing failed, and the fleet is not all green: exit 4.
    let out = fleet.out().with_file_name("limited");
    let limited = run_into(&fleet, &out, &["--limit", "primary,go*"]);
    assert_eq!(limited.code, 4, "{}\n{}", limited.stdout, limited.stderr);
    assert_eq!(
        connections(&all),
        counts(&[("prim", 2), ("broken", 2), ("syncing", 2), ("good", 2)]),
        "only the primary and good were connected to (again)"
    );
    let report: Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(phase(&report, "prim"), "passed");
    assert_eq!(phase(&report, "good"), "passed");
    assert_eq!(phase(&report, "broken"), "skipped");
    assert!(
        reason(&report, "broken").contains("not selected (--limit primary,go*)"),
        "{report:#}"
    );

    let typo = run_with(&fleet, 4, &["--limit", "prmary"]);
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(
        typo.stderr
            .contains("--limit \"prmary\" matches no gate node"),
        "{}",
        typo.stderr
    );
    let none_before = run_into(
        &fleet,
        &fleet.out().with_file_name("never-ran"),
        &["--only", "failed"],
    );
    assert_eq!(none_before.code, 2, "{}", none_before.stderr);
    assert!(
        none_before
            .stderr
            .contains("holds no earlier run of this bundle"),
        "{}",
        none_before.stderr
    );
    assert_eq!(
        connections(&all).values().sum::<usize>(),
        8,
        "refused runs touch no node"
    );
}

/// `--max-fail 1` with one node at a time: once the first node failed, no
/// other node is started (nor connected to), and each says why.
#[test]
fn max_fail_starts_no_node_once_enough_failed() {
    let broken = archy_node("broken", "package-down");
    let b = archy_node("nb", "healthy");
    let c = archy_node("nc", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&broken, "fleet");
    fleet.add(&b, "fleet");
    fleet.add(&c, "fleet");
    let run = run_with(&fleet, 1, &["--max-fail", "1"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        connections(&[&broken, &b, &c]),
        counts(&[("broken", 1), ("nb", 0), ("nc", 0)])
    );
    let report = fleet.report();
    for n in ["nb", "nc"] {
        assert_eq!(phase(&report, n), "skipped");
        assert!(
            reason(&report, n).contains("--max-fail 1 reached (broken failed)"),
            "{report:#}"
        );
    }
    // Without it, the same fleet runs every node.
    let all = run_with(&fleet, 1, &["--only", "not-run"]);
    assert_eq!(all.code, 1, "{}", all.stderr);
    assert_eq!(
        connections(&[&broken, &b, &c]),
        counts(&[("broken", 1), ("nb", 1), ("nc", 1)])
    );
}

/// `--wait-ready`: a node in IBD whose stand-in flips to synced mid-wait
/// is checked again, on its one connection, and its gate runs; one that
/// stays in IBD is given up on when the time is up, saying how long it
/// waited, and the fleet exits 4 (nothing failed). Its events file tells
/// each check.
#[test]
fn wait_ready_starts_a_node_that_becomes_ready_and_gives_up_on_one_that_does_not() {
    let syncs = archy_node("syncs", "ibd");
    let stuck = archy_node("stuck", "ibd");
    let mut fleet = Fleet::new();
    fleet.add(&syncs, "fleet");
    fleet.add(&stuck, "fleet");
    let events = fleet.out().with_file_name("events.jsonl");
    let mut cmd = fleet.command("run", 1, 4);
    cmd.args(["--wait-ready", "8s", "--ready-every", "1s", "--events"])
        .arg(&events);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Flip once the first check found it not ready and it waits.
    let state = fleet.out().join("state.json");
    let mut flipped = false;
    for _ in 0..300 {
        let waiting = fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|s| node_report(&s, "syncs")["phase"] == "waiting");
        if waiting {
            syncs.standin.set_scenario("healthy");
            flipped = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(flipped, "the node never waited");
    let run = Run::of(child.wait_with_output().unwrap());
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    assert_eq!(phase(&report, "syncs"), "passed", "{report:#}");
    let wait = &node_report(&report, "syncs")["ready_wait"];
    assert_eq!(wait["ready"], true, "{wait:#}");
    assert!(wait["checks"].as_u64().unwrap() >= 2, "{wait:#}");
    assert_eq!(syncs.runs().len(), 1, "its gate ran once it was ready");

    assert_eq!(phase(&report, "stuck"), "not-ready");
    let why = reason(&report, "stuck");
    assert!(
        why.contains("still not ready: waited in vain")
            && why.contains("up to 8s (--wait-ready)")
            && why.contains("initial block download"),
        "{why}"
    );
    let checks = node_report(&report, "stuck")["ready_wait"]["checks"]
        .as_u64()
        .unwrap();
    assert!(checks >= 5, "checked about every second for 8s: {checks}");
    assert!(stuck.runs().is_empty());
    assert_eq!(super::fleet::preflights(&stuck) as u64, checks);
    assert_eq!(
        (syncs.node.connections(), stuck.node.connections()),
        (1, 1),
        "every check on the node's one connection"
    );
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    let row = |node: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {node} |")))
            .unwrap_or_else(|| panic!("no row for {node}: {md}"))
            .to_string()
    };
    assert!(
        row("syncs").contains("**passed** (waited ") && row("syncs").contains("for readiness ("),
        "the report says how long it waited: {md}"
    );
    assert!(row("stuck").contains("waited in vain"), "{md}");
    let html = fs::read_to_string(fleet.out().join("report.html")).unwrap();
    assert!(
        html.contains("data-k=\"waited\">waited "),
        "report.html says how long it waited"
    );

    let lines = event_lines(&fs::read_to_string(&events).unwrap());
    let stuck_checks = lines
        .iter()
        .filter(|e| e["event"] == "ready-check" && e["node"] == "stuck")
        .count() as u64;
    assert_eq!(stuck_checks, checks, "each check is one event");
    assert_eq!(lines.last().unwrap()["verdict"], "incomplete");
    assert_eq!(lines.last().unwrap()["exit"], 4);
}

/// Every line parses as one JSON object, numbered 1, 2, 3… without a gap.
fn event_lines(text: &str) -> Vec<Value> {
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
        assert!(e["time"].as_f64().is_some(), "{e}");
    }
    lines
}

/// The key of an event that happens once per run.
fn key(e: &Value) -> String {
    let field = |k: &str| e[k].to_string();
    match e["event"].as_str().unwrap() {
        "step" => format!(
            "step {} {} {}",
            field("node"),
            field("step"),
            field("iteration")
        ),
        "test" => format!(
            "test {} {} {}",
            field("node"),
            field("iteration"),
            field("test")
        ),
        other => format!("{other} {}", e),
    }
}

/// `--events -` on a fleet with a pass, a fail, a not-ready and an
/// unreachable node: stdout is the events and nothing else; every step and
/// test of the final state is told exactly once; each node's phases change
/// at every line (no change told twice) and end where the report ends;
/// the verdict comes last. `fleet status --events` replays the same steps
/// and tests from state.json.
#[test]
fn the_event_stream_tells_every_change_once_in_order() {
    let prim = archy_node("prim", "healthy");
    let broken = archy_node("broken", "package-down");
    let syncing = archy_node("syncing", "ibd");
    let mut fleet = Fleet::new();
    fleet.add(&prim, "primary");
    fleet.add(&broken, "fleet");
    fleet.add(&syncing, "fleet");
    fleet.config.add_refusing("gone");
    fleet.entries.push(entry("gone", "gone", "fleet", None));
    let run = run_with(&fleet, 4, &["--events", "-"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("# archy-gate fleet report"),
        "the report goes to stderr"
    );
    let events = event_lines(&run.stdout);
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["schema"], "archy-gate.fleet-events/1");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "verdict");
    assert_eq!(
        (last["verdict"].as_str(), last["exit"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert_eq!(events.iter().filter(|e| e["event"] == "verdict").count(), 1);
    let times: Vec<f64> = events.iter().map(|e| e["time"].as_f64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in the order they happened: {times:?}"
    );

    let report = fleet.report();
    let mut seen = BTreeSet::new();
    for e in events
        .iter()
        .filter(|e| ["step", "test"].contains(&e["event"].as_str().unwrap()))
    {
        assert!(seen.insert(key(e)), "told twice: {e}");
    }
    let mut expected = BTreeSet::new();
    for n in report["nodes"].as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        for s in n["steps"].as_array().unwrap() {
            let (step, iteration) = match &s["kind"] {
                Value::String(k) => (k.clone(), Value::Null),
                Value::Object(o) => {
                    let (k, v) = o.iter().next().unwrap();
                    (k.clone(), v.clone())
                }
                other => panic!("{other}"),
            };
            expected.insert(format!(
                "step {} {} {}",
                Value::from(name),
                Value::from(step),
                iteration
            ));
        }
        for r in n["iteration_results"].as_array().into_iter().flatten() {
            for t in r["tests"].as_array().unwrap() {
                expected.insert(format!(
                    "test {} {} {}",
                    Value::from(name),
                    r["n"],
                    t["name"]
                ));
            }
        }
    }
    assert!(expected.len() > 10, "{expected:#?}");
    assert_eq!(seen, expected, "every step and test of the state, once");

    for node in ["prim", "broken", "syncing", "gone"] {
        let phases: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "phase" && e["node"] == node)
            .map(|e| e["phase"].as_str().unwrap())
            .collect();
        assert!(!phases.is_empty(), "{node}");
        assert_eq!(
            *phases.last().unwrap(),
            phase(&report, node),
            "{node}: {phases:?}"
        );
    }
    let phase_lines: Vec<(&Value, &Value, &Value)> = events
        .iter()
        .filter(|e| e["event"] == "phase")
        .map(|e| (&e["node"], &e["phase"], &e["reason"]))
        .collect();
    for (i, a) in phase_lines.iter().enumerate() {
        let next_same_node = phase_lines[i + 1..].iter().find(|b| b.0 == a.0);
        assert_ne!(next_same_node, Some(a), "a change told twice: {a:?}");
    }
    let prim_phases: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "phase" && e["node"] == "prim")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        prim_phases,
        ["connecting", "uploading", "preflight", "running", "passed"]
    );

    let replay = Run::of(
        fleet
            .command("status", 1, 4)
            .arg("--events")
            .output()
            .unwrap(),
    )
    .expect(0);
    let replayed = event_lines(&replay.stdout);
    let replayed_keys: BTreeSet<String> = replayed
        .iter()
        .filter(|e| ["step", "test"].contains(&e["event"].as_str().unwrap()))
        .map(key)
        .collect();
    assert_eq!(
        replayed_keys, expected,
        "the replay holds the same steps and tests"
    );
    assert_eq!(replayed.last().unwrap()["verdict"], "failed");
}
