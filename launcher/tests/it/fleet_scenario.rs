//! Multi-node scenarios over real sshd nodes faking Archy nodes: a
//! test-made suite (labelled so below, kept small) whose steps leave marks
//! in each node's /var/tmp, so the tests see on the nodes themselves what
//! ran where, in which order, and what each step was given.
//!
//! The suites (`relay`, `relay-fault`): a server publishes a token; a
//! client uses it; the client "settles" from its third attempt (an
//! `eventually` step); the server's setup is undone by a cleanup step.
//! `relay-fault` also cuts the client off the server (a fault) before the
//! client uses the token. Marker files the test plants on a node change
//! what a step does: /var/tmp/fail-use fails `use`, /var/tmp/leak makes
//! `serve` publish the node's own password, /var/tmp/slow-use and
//! /var/tmp/slow-serve make `use` and `serve` take a few seconds.

use crate::fleet_cross::{cross_result, files_holding, on_ssh, CrossNode, Fleet, Node};
use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::chromium::{probe, Chromium};
use support::flaky_proxy::FlakyProxy;
use support::gate_bundle::bundle_with_gate_and;
use support::ssh_node::SshNode;
use support::Run;

/// A gate that passes at once, each iteration's TAP where run-gate.sh puts it.
const GATE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for ((i = 1; i <= ${ARCHY_ITERATIONS:-1}; i++)); do
  printf '1..1\nok 1 the test-made gate\n' | tee "$ARCHY_GATE_RUN_DIR/iteration-$i.tap"
done
"#;

const RUN_SH: &str = r#"#!/usr/bin/env bash
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
(($#)) || set -- "$here/tests"
set +e
bats --tap "$@" | tee "$ARCHY_GATE_RUN_DIR/cross.tap"
rc=${PIPESTATUS[0]}
exit $((rc == 0 ? 0 : 1))
"#;

const SERVE: &str = r#"@test "serve: publish a token" {
  [[ ! -e /var/tmp/slow-serve ]] || sleep 3
  touch /var/tmp/served
  value="tok-$ARCHY_CROSS_NODE-$RANDOM"
  [[ ! -e /var/tmp/leak ]] || value="tok-$ARCHY_PASSWORD"
  jq -n --arg t "$value" '{token: $t}' >"$ARCHY_CROSS_PUBLISH"
}
"#;

const USE: &str = r#"@test "use: the server's token arrived" {
  [[ ! -e /var/tmp/slow-use ]] || sleep 4
  [[ ! -e /var/tmp/fail-use ]]
  token=$(jq -er .token <<<"$ARCHY_CROSS_VALUES")
  [[ $token == tok-* ]]
  printf '%s\n' "$token" >/var/tmp/got-token
}
"#;

const SETTLE: &str = r#"@test "settle: passes from the third attempt" {
  echo "$ARCHY_CROSS_ATTEMPT" >>/var/tmp/settle-attempts
  ((ARCHY_CROSS_ATTEMPT >= 3))
}
"#;

const UNSERVE: &str = r#"@test "unserve: undo serve" {
  rm -f /var/tmp/served
  echo "$ARCHY_CROSS_NODE" >>/var/tmp/unserved
}
"#;

const CUT: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho \"cut $1 $2\" >>/var/tmp/faults.log\ntouch /var/tmp/cut\n";
const HEAL: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho \"heal $1 $2\" >>/var/tmp/faults.log\nrm -f /var/tmp/cut\n";

const RELAY: &str = r#"description = "test-made: a server publishes a token, a client uses it"
[[step]]
name = "serve"
on = "server"
tests = ["tests/serve.bats"]
[[step]]
name = "use"
on = "client"
tests = ["tests/use.bats"]
[[step]]
name = "settle"
on = "client"
tests = ["tests/settle.bats"]
eventually = "60s"
every = "1s"
[[step]]
name = "unserve"
on = "server"
tests = ["tests/unserve.bats"]
undoes = "serve"
"#;

const RELAY_FAULT: &str = r#"description = "test-made: relay, with the client cut off the server"
[[step]]
name = "serve"
on = "server"
tests = ["tests/serve.bats"]
[[step]]
name = "cut"
on = "client"
fault = "faults/cut.sh"
heal = "faults/heal.sh"
peer = "server"
[[step]]
name = "use"
on = "client"
tests = ["tests/use.bats"]
[[step]]
name = "mend"
heals = "cut"
[[step]]
name = "unserve"
on = "server"
tests = ["tests/unserve.bats"]
undoes = "serve"
"#;

/// The test-made bundle, packed once per test process.
fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, file) = BUNDLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = bundle_with_gate_and(dir.path(), GATE, |stage| {
            for (suite, scenario) in [("relay", RELAY), ("relay-fault", RELAY_FAULT)] {
                let at = stage.join("lifecycle/cross").join(suite);
                fs::create_dir_all(at.join("tests")).unwrap();
                fs::create_dir_all(at.join("faults")).unwrap();
                let files = [
                    ("run.sh", RUN_SH),
                    ("scenario.toml", scenario),
                    ("tests/serve.bats", SERVE),
                    ("tests/use.bats", USE),
                    ("tests/settle.bats", SETTLE),
                    ("tests/unserve.bats", UNSERVE),
                    ("faults/cut.sh", CUT),
                    ("faults/heal.sh", HEAL),
                ];
                for (name, text) in files {
                    support::write_executable(&at.join(name), text.as_bytes(), 0o755);
                }
            }
        });
        (dir, file)
    });
    file
}

fn two_nodes(server: &SshNode, client: &SshNode) -> String {
    format!(
        "nodes = [{{ name = \"{}\", role = \"server\" }}, {{ name = \"{}\", role = \"client\" }}]\n",
        server.name(),
        client.name()
    )
}

fn fleet_of(server: &Node, client: &Node, suite: &str) -> Fleet {
    let mut fleet = Fleet::new();
    fleet.bundle = bundle().to_path_buf();
    fleet.add(server, "primary");
    fleet.add(client, "fleet");
    fleet.extra = format!(
        "[[cross]]\nsuite = \"{suite}\"\n{}",
        two_nodes(&server.node, &client.node)
    );
    fleet
}

/// The lab: `srv` (the server) and `cli` (the client), the marker files
/// `marks` names planted first (`("cli", "/var/tmp/fail-use")`), and a fleet
/// of the two running `suite`.
fn relay_lab(suite: &str, marks: &[(&str, &str)]) -> (Node, Node, Fleet) {
    let server = on_ssh(SshNode::start("srv"), "healthy");
    let client = on_ssh(SshNode::start("cli"), "healthy");
    for (name, inside) in marks {
        let node = if *name == "srv" { &server } else { &client };
        fs::write(node.node.path(inside), "").unwrap();
    }
    let fleet = fleet_of(&server, &client, suite);
    (server, client, fleet)
}

fn on_node(node: &Node, inside: &str) -> Option<String> {
    fs::read_to_string(node.node.path(inside)).ok()
}

/// The steps of `suite` in report.json, by (step, node).
fn step<'a>(report: &'a Value, suite: &str, step: &str, node: &str) -> &'a Value {
    cross_result(report, suite)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step && s["node"] == node)
        .unwrap_or_else(|| panic!("no step {step} on {node}: {report:#}"))
}

/// Waits (at most a minute) until the fleet's state.json says `step` is
/// running on some node; false if it never did.
fn step_running(out: &Path, step: &str) -> bool {
    for _ in 0..3000 {
        let state: Option<Value> = fs::read(out.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let running = state.is_some_and(|s| {
            s["cross"][0]["steps"].as_array().is_some_and(|steps| {
                steps
                    .iter()
                    .any(|x| x["step"] == step && x["outcome"] == "running")
            })
        });
        if running {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

fn gate_runs(node: &Node) -> usize {
    node.records()
        .iter()
        .filter(|r| r["cross"].is_null())
        .count()
}

#[test]
fn a_scenario_passes_values_between_nodes_in_order_and_retries_until_it_passes() {
    let (server, client, fleet) = relay_lab("relay", &[]);

    // The plan shows each step with the node it will run on.
    let plan = Run::of(fleet.command("plan", 1).output().unwrap()).expect(0);
    for line in [
        "relay        a scenario of 4 steps across srv (server), cli (client)",
        "step 1: serve on srv: tests tests/serve.bats",
        "step 3: settle on cli: tests tests/settle.bats, eventually 1m 00s every 1s",
        "step 4: unserve on srv: tests tests/unserve.bats, cleanup of serve",
    ] {
        assert!(plan.stdout.contains(line), "{line}:\n{}", plan.stdout);
    }
    let inspect = Run::of(
        std::process::Command::new(support::launcher())
            .arg("inspect")
            .arg(bundle())
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(
        inspect
            .stdout
            .contains("step 2: use on client: tests tests/use.bats"),
        "{}",
        inspect.stdout
    );

    let run = fleet.run(1);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let c = cross_result(&report, "relay");
    assert_eq!(c["outcome"], "passed", "{c:#}");

    // The value the server published is the one the client was handed.
    let token = c["values"]["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("tok-srv-"), "{c:#}");
    assert_eq!(
        on_node(&client, "/var/tmp/got-token").unwrap().trim(),
        token
    );
    let serve = step(&report, "relay", "serve", "srv");
    let used = step(&report, "relay", "use", "cli");
    assert_eq!(
        serve["published"],
        serde_json::json!(["token"]),
        "{serve:#}"
    );
    assert_eq!(used["given"], serde_json::json!(["token"]), "{used:#}");

    // The barrier, by the nodes' own clocks (one host, one clock): the
    // client's step began after the server's had ended.
    let served_end = serve["node_ended_unix"].as_f64().unwrap();
    let used_start = used["node_started_unix"].as_f64().unwrap();
    assert!(
        used_start >= served_end,
        "use began at {used_start}, before serve ended at {served_end}"
    );

    // settle passed on its third attempt, each a run of its own.
    let settle = step(&report, "relay", "settle", "cli");
    assert_eq!(settle["attempts"], 3, "{settle:#}");
    assert_eq!(settle["outcome"], "passed", "{settle:#}");
    let took = settle["passed_after_secs"].as_f64().unwrap();
    assert!(took >= 2.0, "two pauses of 1 s at least: {took}");
    assert_eq!(
        on_node(&client, "/var/tmp/settle-attempts").unwrap(),
        "1\n2\n3\n"
    );
    // The cleanup step ran in its place, once, on the server.
    assert_eq!(on_node(&server, "/var/tmp/unserved").unwrap(), "srv\n");

    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(
        md.contains("| settle | cli | client | passed | 3 |"),
        "report.md lists each step with its attempts:\n{md}"
    );

    // report.html as a browser lays it out: the steps under the suite's
    // row, and each on its node's lane of the timeline.
    let chromium = Chromium::new();
    let page = probe(&chromium, &fleet.out().join("report.html"));
    let row = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["suite"] == "relay")
        .unwrap_or_else(|| panic!("no relay row: {page:#}"));
    assert_eq!(row["cells"]["outcome"], "passed", "{row:#}");
    let shown = row["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "settle" && s["node"] == "cli")
        .unwrap_or_else(|| panic!("no settle step: {row:#}"));
    assert_eq!(shown["shown"], true, "{shown:#}");
    assert_eq!(shown["cells"]["attempts"], "3", "{shown:#}");
    for (lane, step) in [
        ("srv", "cross: relay/serve"),
        ("cli", "cross: relay/settle"),
    ] {
        let lane = page["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["node"] == lane)
            .unwrap_or_else(|| panic!("no lane {lane}: {page:#}"));
        assert!(
            lane["steps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["step"] == step && s["shown"] == true),
            "{step} on {lane:#}"
        );
    }

    // --cross-only: the scenario again, no gate, on the gates above.
    let before = (gate_runs(&server), gate_runs(&client));
    let again = Run::of(
        fleet
            .command("run", 1)
            .arg("--cross-only")
            .output()
            .unwrap(),
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("--cross-only: relying on the gates of the fleet run started"),
        "{}",
        again.stderr
    );
    assert_eq!(
        (gate_runs(&server), gate_runs(&client)),
        before,
        "no gate ran"
    );
    assert_eq!(
        on_node(&server, "/var/tmp/unserved").unwrap(),
        "srv\nsrv\n",
        "the scenario ran again"
    );
}

#[test]
fn a_failing_step_skips_the_rest_and_undoes_what_was_set_up_heals_included() {
    let (server, client, fleet) = relay_lab("relay-fault", &[("cli", "/var/tmp/fail-use")]);

    let run = fleet.run(1);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let c = cross_result(&report, "relay-fault");
    assert_eq!(c["outcome"], "failed", "{c:#}");
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains("step use failed on cli"), "{reason}");
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(md.contains("step use failed on cli"), "{md}");
    // The failed step, what it was given, and the end of its output.
    assert!(
        md.contains("Step use on cli (given values token), the end of its log"),
        "{md}"
    );
    assert!(
        md.contains("not ok 1 use: the server's token arrived"),
        "{md}"
    );
    let junit = fs::read_to_string(fleet.out().join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"use (tests) on cli\"><failure"),
        "{junit}"
    );

    // The fault's heal ran, though the step that would heal it never
    // came; then the server's setup was undone, last set up first undone.
    assert_eq!(
        on_node(&client, "/var/tmp/faults.log").unwrap(),
        format!(
            "cut srv {host}\nheal srv {host}\n",
            host = server.standin.host()
        )
    );
    assert!(!client.node.path("/var/tmp/cut").exists());
    assert_eq!(on_node(&server, "/var/tmp/unserved").unwrap(), "srv\n");
    let heal = step(&report, "relay-fault", "cut", "cli");
    assert_eq!(heal["outcome"], "passed", "{heal:#}");
    let healed = cross_result(&report, "relay-fault")["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "heal")
        .unwrap_or_else(|| panic!("no heal in {c:#}"));
    assert_eq!(healed["outcome"], "passed", "{healed:#}");
    let unserve = step(&report, "relay-fault", "unserve", "srv");
    let heal_end = healed["node_ended_unix"].as_f64().unwrap();
    assert!(
        unserve["node_started_unix"].as_f64().unwrap() >= heal_end,
        "the heal (of the later setup) came before the cleanup of serve: {c:#}"
    );
    // Nothing after the failing step ran but the undoing.
    assert!(!client.node.path("/var/tmp/got-token").exists());
}

#[test]
fn a_value_that_holds_a_password_is_refused_and_kept_nowhere() {
    let (server, client, fleet) = relay_lab("relay", &[("srv", "/var/tmp/leak")]);

    let run = fleet.run(1);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let serve = step(&report, "relay", "serve", "srv");
    assert_eq!(serve["outcome"], "failed", "{serve:#}");
    let why = serve["reason"].as_str().unwrap();
    assert!(
        why.contains("\"token\" holds this node's password"),
        "{why}"
    );
    assert_eq!(step(&report, "relay", "use", "cli")["outcome"], "skipped");
    // The password is in no file of the fleet dir, of the client, or of
    // the server's runs; the client never ran a step that could see it.
    let password = server.password();
    let here = files_holding(fleet.out().as_path(), password);
    assert!(here.is_empty(), "{here:?}");
    let there = files_holding(client.node.root(), password);
    assert!(there.is_empty(), "{there:?}");
    for run in server.runs() {
        let kept = files_holding(&run, password);
        assert!(kept.is_empty(), "{kept:?}");
    }
    // The cleanup undid serve all the same.
    assert_eq!(on_node(&server, "/var/tmp/unserved").unwrap(), "srv\n");
}

#[test]
fn a_node_gone_before_its_step_fails_the_step_and_the_rest_is_still_undone() {
    let (server, mut client, fleet) = relay_lab("relay", &[("srv", "/var/tmp/slow-serve")]);
    let out = fleet.out();
    // The client powers off while the server's step runs: its own step
    // cannot start.
    let run = thread::scope(|scope| {
        let fleet_run = scope.spawn(|| fleet.run(1));
        assert!(step_running(&out, "serve"), "serve was seen running");
        client.node.stop();
        fleet_run.join().unwrap()
    });
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let used = step(&report, "relay", "use", "cli");
    assert_eq!(used["outcome"], "failed", "{used:#}");
    let why = used["reason"].as_str().unwrap();
    assert!(why.starts_with("unreachable: "), "{why}");
    let c = cross_result(&report, "relay");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("step use failed on cli: unreachable"),
        "{c:#}"
    );
    // What it could undo, it did: the server's setup.
    assert_eq!(on_node(&server, "/var/tmp/unserved").unwrap(), "srv\n");
    assert_eq!(
        step(&report, "relay", "settle", "cli")["outcome"],
        "skipped"
    );
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn a_link_cut_mid_step_is_ridden_out_and_the_step_followed_to_its_end() {
    let server = on_ssh(SshNode::start("srv"), "healthy");
    let client = on_ssh(SshNode::start("cli"), "healthy");
    fs::write(client.node.path("/var/tmp/slow-use"), "").unwrap();
    let proxy = FlakyProxy::to(client.node.port());
    let mut fleet = Fleet::new();
    fleet.bundle = bundle().to_path_buf();
    fleet.add(&server, "primary");
    fleet.add_via(&client, "fleet", proxy.port());
    fleet.extra = format!(
        "[[cross]]\nsuite = \"relay\"\n{}",
        two_nodes(&server.node, &client.node)
    );
    let out = fleet.out();
    let cut = thread::scope(|scope| {
        let cutter = scope.spawn(|| {
            let running = step_running(&out, "use");
            if running {
                thread::sleep(Duration::from_millis(1500));
                proxy.cut();
            }
            running
        });
        let run = fleet.run(1);
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("cli: link down; reconnecting"),
            "{}",
            run.stdout
        );
        cutter.join().unwrap()
    });
    assert!(cut, "the step was seen running, and its link cut");
    let report = fleet.report();
    let used = step(&report, "relay", "use", "cli");
    assert_eq!(used["outcome"], "passed", "{used:#}");
    assert_eq!(used["attempts"], 1, "followed, not started again: {used:#}");
    assert!(proxy.cuts() >= 1);
}
