//! The fleet's third phase and its progress lines, against real sshd nodes
//! faking Archy nodes (tests/standin): a cross-node suite runs on the node
//! the roster names, told its peers (ARCHY_PEERS, seen in the suite's own
//! environment on the node) and never a peer's password; a node that is not
//! ready skips the suites that span it; different package versions fail
//! the fleet; progress is redrawn in place on a pseudo-terminal and printed
//! as plain lines otherwise, and `fleet status` shows the same lines.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::chromium::{probe, section, Chromium};
use support::fixture::ArchyNode;
use support::ssh_node::{SshConfig, SshNode};
use support::standin::StandinNode;
use support::strace::{self, Trace};
use support::{real_bundle_dir, Run};

/// An SSH node faking an Archy node (support::fixture), with a password of
/// its own.
pub(crate) type Node = ArchyNode<SshNode>;

fn archy_node(name: &str, scenario: &str) -> Node {
    on_ssh(SshNode::start(name), scenario)
}

/// `ssh`, faking `scenario`, with a password of its own.
pub(crate) fn on_ssh(ssh: SshNode, scenario: &str) -> Node {
    let password = format!("pw-of-{}-only-2718", ssh.name());
    ArchyNode::build(scenario, &password).over_ssh(ssh)
}

/// What these tests ask of such a node.
pub(crate) trait CrossNode {
    fn password(&self) -> &str;
    fn env_var(&self) -> String;
    /// Run records the node's launcher wrote.
    fn records(&self) -> Vec<Value>;
}

impl CrossNode for Node {
    fn password(&self) -> &str {
        self.standin.password()
    }

    fn env_var(&self) -> String {
        format!("ARCHY_PW_{}", self.node.name().to_uppercase())
    }

    fn records(&self) -> Vec<Value> {
        self.runs()
            .iter()
            .map(|run| serde_json::from_slice(&fs::read(run.join("run.json")).unwrap()).unwrap())
            .collect()
    }
}

pub(crate) struct Fleet {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: SshConfig,
    pub(crate) nodes: Vec<(String, String, String)>,
    pub(crate) entries: Vec<String>,
    pub(crate) extra: String,
    pub(crate) bundle: PathBuf,
}

impl Fleet {
    pub(crate) fn new() -> Fleet {
        Fleet {
            dir: support::lab::scratch("fleetx."),
            config: SshConfig::new(),
            nodes: Vec::new(),
            entries: Vec::new(),
            extra: String::new(),
            bundle: real_bundle_dir().join("archy-gate"),
        }
    }

    pub(crate) fn add(&mut self, node: &Node, role: &str) {
        self.config.add(&node.node);
        self.add_entry(node, role);
    }

    /// `node`, reached through 127.0.0.1:`port` (a proxy in front of its sshd).
    pub(crate) fn add_via(&mut self, node: &Node, role: &str, port: u16) {
        self.config.add_via(node.node.name(), &node.node, port);
        self.add_entry(node, role);
    }

    fn add_entry(&mut self, node: &Node, role: &str) {
        let host = node.standin.host();
        self.entries.push(format!(
            "[[node]]\nname = \"{name}\"\nssh = \"{name}\"\nrole = \"{role}\"\npassword_env = \"{var}\"\nhost = \"{host}\"\npeer_host = \"{host}\"\n",
            name = node.node.name(),
            var = node.env_var(),
        ));
        self.nodes.push((
            node.node.name().into(),
            node.env_var(),
            node.password().to_string(),
        ));
    }

    pub(crate) fn roster(&self, iterations: u32) -> PathBuf {
        let path = self.dir.path().join("fleet.toml");
        let text = format!(
            "[defaults]\niterations = {iterations}\nssh_config = \"{}\"\nssh_options = [\"-o\", \"ConnectTimeout=5\"]\n\n{}\n{}",
            self.config.path().display(),
            self.entries.join("\n"),
            self.extra
        );
        fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub(crate) fn command(&self, verb: &str, iterations: u32) -> Command {
        let mut cmd = Command::new(support::launcher());
        cmd.args(["fleet", verb, "--roster"])
            .arg(self.roster(iterations))
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--out")
            .arg(self.out());
        for (_, var, password) in &self.nodes {
            cmd.env(var, password);
        }
        cmd
    }

    pub(crate) fn run(&self, iterations: u32) -> Run {
        Run::of(self.command("run", iterations).output().unwrap())
    }

    pub(crate) fn report(&self) -> Value {
        serde_json::from_slice(&fs::read(self.out().join("report.json")).unwrap()).unwrap()
    }

    pub(crate) fn state(&self) -> Option<Value> {
        fs::read(self.out().join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
}

/// Every regular file below `dir` that holds `needle`.
pub(crate) fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    support::all_text(dir)
        .into_iter()
        .filter(|(_, text)| text.contains(needle))
        .map(|(path, _)| path)
        .collect()
}

pub(crate) fn cross_result<'a>(report: &'a Value, suite: &str) -> &'a Value {
    report["cross"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == suite)
        .unwrap_or_else(|| panic!("no cross suite {suite} in {report:#}"))
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn a_cross_suite_runs_where_the_roster_says_with_its_peers_and_no_peer_password() {
    let mut server = on_ssh(SshNode::builder("n228").traced().start(), "healthy");
    let mut client = on_ssh(SshNode::builder("n198").traced().start(), "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&server, "primary");
    fleet.add(&client, "fleet");
    // Besides, the bundle's example scenarios, whose steps run on both
    // nodes, each with its own password, and talk to each other.
    fleet.extra = "[[cross]]\nsuite = \"federation\"\nnodes = [{ name = \"n228\", role = \"server\" }, { name = \"n198\", role = \"client\" }]\nruns_on = \"n198\"\n\n\
        [[cross]]\nsuite = \"contacts\"\nnodes = [{ name = \"n228\", role = \"a\" }, { name = \"n198\", role = \"b\" }]\n\n\
        [[cross]]\nsuite = \"file-fetch\"\nnodes = [{ name = \"n228\", role = \"a\" }, { name = \"n198\", role = \"b\" }]\n"
        .into();

    let plan = Run::of(fleet.command("plan", 1).output().unwrap()).expect(0);
    assert!(
        plan.stdout
            .contains("federation   spans n228 (server), n198 (client); runs on n198"),
        "{}",
        plan.stdout
    );

    // Every exec, however short-lived: of the fleet's run here, and of
    // each node since it started (until it is stopped below).
    let here = fleet.dir.path().join("execs");
    let run = Run::of(
        strace::traced(&fleet.command("run", 1), &here)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let report = fleet.report();
    let c = cross_result(&report, "federation");
    assert_eq!(c["outcome"], "passed", "{c:#}");
    assert_eq!(c["runs_on"], "n198", "{c:#}");
    assert_eq!(c["nodes"], json!(["n228", "n198"]), "{c:#}");
    assert_eq!(c["tests_passed"], 3, "{c:#}");
    assert_eq!(c["tests_failed"], 0, "{c:#}");
    // Its tests, as the suite's TAP said, are kept for every report.
    assert_eq!(c["tests"].as_array().map(Vec::len), Some(3), "{c:#}");
    // One preflight on each node: the gate's run did it; the suite's run
    // on the same node does not do it again.
    for node in [&server, &client] {
        let calls = fs::read_to_string(
            node.node
                .path(&format!("{}/calls.log", support::standin::STATE_INSIDE)),
        )
        .unwrap_or_default();
        let preflights = calls
            .lines()
            .filter(|l| l.starts_with("launcher podman ps -a"))
            .count();
        assert_eq!(
            preflights,
            1,
            "one preflight on {}:\n{calls}",
            node.node.name()
        );
    }

    // The scenarios passed, each step on its own node.
    for suite in ["contacts", "file-fetch"] {
        let c = cross_result(&report, suite);
        assert_eq!(c["outcome"], "passed", "{c:#}");
    }
    // federation ran on n198 only, as its cross run, once.
    let federation = |r: &Value| r["cross"]["suite"] == "federation";
    let cross_runs: Vec<Value> = client.records().into_iter().filter(federation).collect();
    assert_eq!(cross_runs.len(), 1, "{cross_runs:#?}");
    assert!(
        !server.records().iter().any(federation),
        "no federation run on n228"
    );
    assert!(
        server
            .records()
            .iter()
            .any(|r| r["cross"]["suite"] == "contacts"),
        "contacts' steps ran on n228 too"
    );
    let record = &cross_runs[0];
    assert_eq!(record["state"], "passed", "{record:#}");
    assert_eq!(record["cross"]["suite"], "federation");
    assert_eq!(record["cross"]["node"], "n198");
    assert_eq!(record["cross"]["role"], "client");

    // Here no password is in any argv, nor in any environment but the
    // launcher's, as its roster's variable: each goes to its node on stdin.
    let here = Trace::read(&here);
    let launcher = &here.execs[0];
    assert_eq!(launcher.path, support::launcher().to_str().unwrap());
    for node in [&server, &client] {
        let leaks = here.leaks(node.password(), |e| {
            std::ptr::eq(e, launcher).then(|| format!("{}={}", node.env_var(), node.password()))
        });
        assert!(
            leaks.is_empty(),
            "{}'s password, here: {leaks:#?}",
            node.node.name()
        );
    }
    // On each node, its own password is in no argv, and in an environment
    // only as the gate's or the suite's ARCHY_PASSWORD; the other node's is
    // nowhere: not in any process's environment or argv, not in any file
    // of its whole tree.
    let on_server = server.node.stop_traced();
    let on_client = client.node.stop_traced();
    for (node, trace, other) in [
        (&server, &on_server, &client),
        (&client, &on_client, &server),
    ] {
        let name = node.node.name();
        let own = trace.leaks(node.password(), |e| {
            trace
                .in_gate(e)
                .then(|| format!("ARCHY_PASSWORD={}", node.password()))
        });
        assert!(own.is_empty(), "{name}'s password, on {name}: {own:#?}");
        let other_name = other.node.name();
        let theirs = trace.leaks(other.password(), |_| None);
        assert!(
            theirs.is_empty(),
            "{other_name}'s password, on {name}: {theirs:#?}"
        );
        let leaked = files_holding(node.node.root(), other.password());
        assert!(
            leaked.is_empty(),
            "{other_name}'s password on {name}: {leaked:?}"
        );
    }
    // (n198's own password does reach its suite, as the gate's does.)
    let suite = |e: &&strace::Exec| e.env.iter().any(|v| v == "ARCHY_CROSS_ROLE=client");
    assert!(
        on_client.execs.iter().filter(suite).any(|e| e
            .env
            .contains(&format!("ARCHY_PASSWORD={}", client.password()))),
        "strace saw the suite start on n198, given n198's password"
    );

    // ARCHY_PEERS as the suite's own processes on n198 had it: n228, its
    // RPC as n198 reaches it, its role, and the versions n228 runs.
    let peers_env: Vec<&str> = on_client
        .execs
        .iter()
        .filter(|e| e.env.iter().any(|v| v == "ARCHY_CROSS_SUITE=federation"))
        .flat_map(|e| &e.env)
        .filter_map(|l| l.strip_prefix("ARCHY_PEERS="))
        .collect();
    assert!(
        !peers_env.is_empty(),
        "strace saw the suite's environment on n198"
    );
    let expected_packages: Vec<Value> = server.standin.scenario()["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"id": p["id"], "version": p["version"]}))
        .collect();
    // And the certificate n228's RPC serves, read on n228: what n198 pins.
    let cert = server.standin.cert_pem();
    let expected = json!([{
        "name": "n228",
        "host": server.standin.host(),
        "role": "server",
        "packages": expected_packages,
        "cert": cert,
        "cert_sha256": server.standin.cert_sha256(),
    }]);
    for text in &peers_env {
        let peers: Value = serde_json::from_str(text).unwrap();
        assert_eq!(peers, expected);
    }

    // The suite reached n228's RPC from n198, anonymously: health, never a login.
    let tap = fs::read_to_string(fleet.out().join("cross/federation/cross.tap")).unwrap();
    assert!(
        tap.contains("ok 2 every peer's RPC answers health from this node"),
        "{tap}"
    );
    assert!(
        tap.contains("ok 3 every peer runs the same package versions as this node"),
        "{tap}"
    );

    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(
        md.contains("| federation | n228, n198 | n198 | **passed** | 3/0 |"),
        "{md}"
    );
    let junit = fs::read_to_string(fleet.out().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"cross/federation\" tests=\"3\" failures=\"0\""),
        "{junit}"
    );
    // report.html as a browser lays it out: the suite's row with
    // report.json's numbers, and the suite on both nodes' timelines.
    let chromium = Chromium::new();
    let page = probe(&chromium, &fleet.out().join("report.html"));
    assert_eq!(section(&page, "cross")["shown"], true, "{page:#}");
    let row = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["suite"] == "federation")
        .unwrap_or_else(|| panic!("no federation row: {page:#}"));
    assert_eq!(row["shown"], true, "{row:#}");
    let cells = &row["cells"];
    assert_eq!(cells["outcome"], c["outcome"], "{row:#}");
    assert_eq!(cells["runs-on"], c["runs_on"], "{row:#}");
    assert_eq!(cells["passed"], c["tests_passed"].to_string(), "{row:#}");
    assert_eq!(cells["failed"], c["tests_failed"].to_string(), "{row:#}");
    for name in ["n228", "n198"] {
        let lane = page["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["node"] == name)
            .unwrap_or_else(|| panic!("no lane for {name}: {page:#}"));
        let cross: Vec<&Value> = lane["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"].as_str().unwrap_or("").contains("federation"))
            .collect();
        assert_eq!(cross.len(), 1, "{name}: {lane:#}");
        assert_eq!(cross[0]["outcome"], "passed", "{name}: {lane:#}");
        assert_eq!(cross[0]["shown"], true, "{name}: {lane:#}");
    }

    // One connection per node for the whole run, gate and cross phase.
    for node in [&server, &client] {
        assert_eq!(node.node.connections(), 1, "{}", node.node.name());
        assert!(node.node.peak_sessions() <= 1, "{}", node.node.name());
    }
}

#[test]
fn a_node_that_is_not_ready_skips_the_suites_that_span_it() {
    let primary = archy_node("prim", "healthy");
    let syncing = archy_node("syncing", "ibd");
    let mut fleet = Fleet::new();
    fleet.add(&primary, "primary");
    fleet.add(&syncing, "fleet");
    fleet.extra = "[[cross]]\nsuite = \"federation\"\nnodes = [\"prim\", \"syncing\"]\n".into();
    let run = fleet.run(1);
    // Nothing failed: a node not ready is its own verdict, exit 4.
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let c = cross_result(&report, "federation");
    assert_eq!(c["outcome"], "skipped", "{c:#}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("syncing not ready: bitcoin-synced:"),
        "{reason}"
    );
    assert!(reason.contains("initial block download"), "{reason}");
    assert!(
        primary.records().iter().all(|r| r["cross"].is_null()),
        "no cross run anywhere"
    );
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(md.contains("0 of 1 passed, 1 skipped."), "{md}");
    assert!(
        md.contains("| federation | prim, syncing | prim | **skipped**: syncing not ready"),
        "{md}"
    );
    let junit = fs::read_to_string(fleet.out().join("junit.xml")).unwrap();
    assert!(
        junit.contains(
            "<testsuite name=\"cross/federation\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\" hostname=\"prim\">"
        ),
        "{junit}"
    );
}

/// Rewrites a running stand-in's scenario so that package `id` has `version`
/// (atomically: the server reloads a replaced scenario.json).
fn set_version(node: &Node, id: &str, version: &str) {
    let mut scenario = node.standin.scenario();
    for p in scenario["packages"].as_array_mut().unwrap() {
        if p["id"] == id {
            p["version"] = json!(version);
        }
    }
    let dir = node.standin.state_dir();
    fs::write(dir.join(".scenario.tmp"), scenario.to_string()).unwrap();
    fs::rename(dir.join(".scenario.tmp"), dir.join("scenario.json")).unwrap();
}

#[test]
fn different_package_versions_fail_the_cross_suite_and_the_fleet() {
    let a = archy_node("va", "healthy");
    let b = archy_node("vb", "healthy");
    set_version(&b, "lnd", "0.17.5");
    let mut fleet = Fleet::new();
    fleet.add(&a, "primary");
    fleet.add(&b, "fleet");
    fleet.extra = "[[cross]]\nsuite = \"federation\"\nnodes = [\"va\", \"vb\"]\n".into();
    let run = fleet.run(1);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("not everything passed: cross suite federation failed"),
        "{}",
        run.stderr
    );
    let report = fleet.report();
    for name in ["va", "vb"] {
        let n = report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap();
        assert_eq!(n["phase"], "passed", "the gates pass: {n:#}");
    }
    let c = cross_result(&report, "federation");
    assert_eq!(c["outcome"], "failed", "{c:#}");
    assert_eq!(c["tests_failed"], 1, "{c:#}");
    assert_eq!(
        c["failing"],
        json!(["every peer runs the same package versions as this node"]),
        "{c:#}"
    );
    let log = fs::read_to_string(fleet.out().join("cross/federation/gate.log")).unwrap();
    let version = a.standin.scenario()["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "lnd")
        .unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        log.contains(&format!("vb: lnd {version} here, 0.17.5 there")),
        "{log}"
    );
}

#[test]
fn a_roster_naming_a_suite_the_bundle_lacks_is_refused_before_any_node() {
    let dir = support::lab::scratch("rosterx.");
    let roster = dir.path().join("fleet.toml");
    fs::write(
        &roster,
        "[[node]]\nname = \"a\"\nssh = \"a\"\nrole = \"primary\"\npassword_env = \"X\"\npeer_host = \"10.0.0.1\"\n\
         [[node]]\nname = \"b\"\nssh = \"b\"\nrole = \"fleet\"\npassword_env = \"X\"\npeer_host = \"10.0.0.2\"\n\
         [[cross]]\nsuite = \"upgrade\"\nnodes = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let run = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "plan", "--roster"])
            .arg(&roster)
            .arg("--bundle")
            .arg(real_bundle_dir().join("archy-gate"))
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "[[cross]] suite upgrade: the bundle has no cross suite \"upgrade\"; it has contacts, federation, file-fetch"
        ),
        "{}",
        run.stderr
    );
}

/// A gate of two iterations, each waiting for the test's go-ahead (a file
/// named after the run and the iteration), so the test sees each iteration
/// in progress, whatever the machine's speed.
const STEPPED_GATE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
for i in 1 2; do
  printf '1..1\nok 1 step %s\n' "$i" >"$ARCHY_GATE_RUN_DIR/iteration-$i.tap"
  for ((t = 0; t < 600; t++)); do
    [[ -e /var/tmp/go-$ARCHY_GATE_RUN_ID-$i ]] && break
    sleep 0.2
  done
done
cat "$ARCHY_GATE_RUN_DIR"/iteration-*.tap
"#;

/// Drives a stepped gate on `node` through both iterations while `fleet`
/// runs: waits for state.json to show iteration i of 2, checks `fleet
/// status` says so, lets the gate go on. Returns the fleet's exit code.
fn step_through(fleet: &Fleet, node: &SshNode, mut child: std::process::Child, out: &Path) -> i32 {
    for i in 1..=2 {
        let deadline = Instant::now() + Duration::from_secs(120);
        let run_id = loop {
            let state = fleet.state();
            let n = state.as_ref().map(|s| s["nodes"][0].clone());
            if let Some(n) = n.filter(|n| n["phase"] == "running" && n["iteration"] == i) {
                break n["run_id"].as_str().unwrap().to_string();
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the fleet ended before iteration {i}: {:?}",
                fs::read_to_string(out)
            );
            assert!(
                Instant::now() < deadline,
                "iteration {i} never showed: {state:#?}"
            );
            thread::sleep(Duration::from_millis(100));
        };
        let status = Run::of(fleet.command("status", 2).output().unwrap()).expect(0);
        assert!(
            status
                .stdout
                .contains(&format!("  {} running iteration {i}/2 [", node.name())),
            "{}",
            status.stdout
        );
        fs::write(node.path(&format!("/var/tmp/go-{run_id}-{i}")), "").unwrap();
    }
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn progress_is_live_on_a_terminal_plain_lines_otherwise_and_fleet_status_shows_it() {
    let node = archy_node("prog", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&node, "primary");
    let gate_dir = fleet.dir.path().join("gate");
    fs::create_dir(&gate_dir).unwrap();
    fleet.bundle = support::gate_bundle::bundle_with_gate(&gate_dir, STEPPED_GATE);

    // stdout not a terminal: timestamped plain lines, no escape codes.
    let plain_out = fleet.dir.path().join("plain.out");
    let child = fleet
        .command("run", 2)
        .stdout(fs::File::create(&plain_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(step_through(&fleet, &node.node, child, &plain_out), 0);
    let plain = fs::read_to_string(&plain_out).unwrap();
    assert!(
        !plain.contains('\x1b') && !plain.contains('\r'),
        "{plain:?}"
    );
    for wanted in [
        " prog uploading ",
        " prog running iteration 1/2 [",
        " prog running iteration 2/2 [",
        " prog passed (2/2 iterations passed) [",
    ] {
        let line = plain.lines().find(|l| l.contains(wanted));
        let line = line.unwrap_or_else(|| panic!("no line with {wanted:?} in {plain}"));
        let time = &line[..8];
        assert!(
            time.len() == 8 && time.chars().filter(|c| *c == ':').count() == 2,
            "a time first: {line}"
        );
    }

    // On a pseudo-terminal (util-linux `script`): indicatif redraws the
    // node's line in place, with cursor movements.
    fs::remove_dir_all(fleet.out()).unwrap();
    let tty_out = fleet.dir.path().join("tty.out");
    let inner = format!(
        "{} fleet run --roster {} --bundle {} --out {}",
        support::launcher().display(),
        fleet.roster(2).display(),
        fleet.bundle.display(),
        fleet.out().display()
    );
    let script = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .envs(fleet.nodes.iter().map(|(_, var, pw)| (var, pw)))
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&tty_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(step_through(&fleet, &node.node, script, &tty_out), 0);
    let tty = String::from_utf8_lossy(&fs::read(&tty_out).unwrap()).into_owned();
    assert!(tty.contains("\x1b["), "cursor movements: {tty:?}");
    assert!(tty.contains("prog running iteration 2/2 ["), "{tty:?}");
    assert!(
        tty.contains("prog passed (2/2 iterations passed)"),
        "{tty:?}"
    );
    assert!(
        !tty.lines()
            .any(|l| l.len() > 8 && l.as_bytes()[2] == b':' && l.contains(" prog running")),
        "no plain lines on a terminal: {tty:?}"
    );
}

/// `run --cross` checks its suite and its peers before any work dir exists.
#[test]
fn run_cross_refuses_an_unknown_suite_and_a_peer_with_a_password() {
    let bundle = real_bundle_dir().join("archy-gate");
    let dir = support::lab::scratch("runx.");
    let run = |args: &[&str]| {
        Run::of(
            Command::new(support::launcher())
                .arg("run")
                .arg(&bundle)
                .args(["--workdir", dir.path().join("w").to_str().unwrap()])
                .args(args)
                .env("ARCHY_PASSWORD", "x")
                .output()
                .unwrap(),
        )
    };
    let unknown = run(&["--cross", "nope", "--peers", "[]"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("--cross nope: the bundle has no cross suite \"nope\"; it has contacts, federation, file-fetch"),
        "{}",
        unknown.stderr
    );
    let leaky = run(&[
        "--cross",
        "federation",
        "--peers",
        r#"[{"name": "b", "host": "10.0.0.2", "password": "hunter2"}]"#,
    ]);
    assert_eq!(leaky.code, 2, "{}", leaky.stderr);
    assert!(
        leaky.stderr.contains("unknown field `password`"),
        "{}",
        leaky.stderr
    );
    let alone = run(&["--peers", "[]"]);
    assert_eq!(alone.code, 2, "--peers needs --cross: {}", alone.stderr);
    assert!(!dir.path().join("w").exists(), "no work dir was made");
}

/// `rpc --anonymous` sends nothing of this node's: with ARCHY_PASSWORD and
/// a session file at hand, it still never logs in, and a method that needs
/// a session is refused.
#[test]
fn rpc_anonymous_never_logs_in() {
    let standin = StandinNode::start_detached("healthy", "anon-pw-1618");
    let dir = support::lab::scratch("anon.");
    let rpc = |method: &str| {
        Run::of(
            Command::new(support::launcher())
                .args(["rpc", "--anonymous", "--host", &standin.host(), method])
                .env("ARCHY_PASSWORD", "anon-pw-1618")
                .env("ARCHY_GATE_RUN_DIR", dir.path())
                .output()
                .unwrap(),
        )
    };
    let health = rpc("health").expect(0);
    assert_eq!(health.stdout.trim(), r#"{"status":"ok"}"#);
    let state = rpc("server.get-state");
    assert_eq!(state.code, 1, "{}", state.stderr);
    assert!(state.stderr.contains("error 34"), "{}", state.stderr);
    assert_eq!(standin.requests(), ["health", "server.get-state"]);
    assert!(!dir.path().join(".rpc-session").exists());
}
