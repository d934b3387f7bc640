//! `launcher fleet` against real sshd "nodes" on loopback ports, each a
//! chroot with its own root and /tmp faking an Archy node with the stand-in
//! (tests/standin). What the sshd side saw (connections, sessions) is
//! counted from its own log; what ran on either side, from strace.

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::fixture::ArchyNode;
use support::flaky_proxy::FlakyProxy;
use support::ssh_node::{SshConfig, SshNode};
use support::strace::{self, Trace};
use support::{node_report, real_bundle_dir, Run};

pub(crate) const PASSWORD: &str = "fleet-secret-3141";

/// An SSH node faking an Archy node (support::fixture); `node.node` is the
/// SshNode.
pub(crate) type Node = ArchyNode<SshNode>;

/// An SSH node called `name` faking `scenario`.
pub(crate) fn archy_node(name: &str, scenario: &str) -> Node {
    on_ssh(SshNode::start(name), scenario)
}

/// `ssh` faking `scenario`.
fn on_ssh(ssh: SshNode, scenario: &str) -> Node {
    ArchyNode::build(scenario, PASSWORD).over_ssh(ssh)
}

/// A roster entry for `node`, reached as `host` in the ssh config.
pub(crate) fn entry(name: &str, ssh_host: &str, role: &str, rpc_host: Option<String>) -> String {
    let mut e = format!(
        "[[node]]\nname = \"{name}\"\nssh = \"{ssh_host}\"\nrole = \"{role}\"\npassword_env = \"ARCHY_PW_TEST\"\n"
    );
    if let Some(host) = rpc_host {
        e.push_str(&format!("host = \"{host}\"\n"));
    }
    e
}

pub(crate) struct Fleet {
    dir: tempfile::TempDir,
    pub(crate) config: SshConfig,
    pub(crate) entries: Vec<String>,
    /// `[defaults] trust`, when set.
    trust: Option<String>,
    /// The bundle to run [default: the real one].
    bundle: Option<PathBuf>,
}

impl Fleet {
    pub(crate) fn new() -> Fleet {
        Fleet {
            dir: support::lab::scratch("fleet."),
            config: SshConfig::new(),
            entries: Vec::new(),
            trust: None,
            bundle: None,
        }
    }

    pub(crate) fn add(&mut self, node: &Node, role: &str) {
        self.config.add(&node.node);
        self.entries.push(entry(
            node.node.name(),
            node.node.name(),
            role,
            Some(node.standin.host()),
        ));
    }

    pub(crate) fn roster(&self, iterations: u32) -> PathBuf {
        let path = self.dir.path().join("fleet.toml");
        let trust = self
            .trust
            .as_ref()
            .map(|t| format!("trust = \"{t}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "[defaults]\niterations = {iterations}\nssh_config = \"{}\"\nssh_options = [\"-o\", \"ConnectTimeout=5\"]\n{trust}\n{}",
            self.config.path().display(),
            self.entries.join("\n")
        );
        fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub(crate) fn command(&self, verb: &str, iterations: u32, jobs: u32) -> Command {
        let mut cmd = Command::new(support::launcher());
        cmd.args(["fleet", verb, "--roster"])
            .arg(self.roster(iterations))
            .arg("--bundle")
            .arg(
                self.bundle
                    .clone()
                    .unwrap_or_else(|| real_bundle_dir().join("archy-gate")),
            )
            .arg("--out")
            .arg(self.out())
            .env("ARCHY_PW_TEST", PASSWORD);
        // status and report read a run: --jobs means nothing there.
        if ["plan", "run"].contains(&verb) {
            cmd.args(["--jobs", &jobs.to_string()]);
        }
        cmd
    }

    pub(crate) fn run(&self, iterations: u32, jobs: u32) -> Run {
        Run::of(self.command("run", iterations, jobs).output().unwrap())
    }

    pub(crate) fn report(&self) -> Value {
        serde_json::from_slice(&fs::read(self.out().join("report.json")).unwrap()).unwrap()
    }
}

/// The stand-in's log of the node's podman, systemctl and bitcoin-cli calls.
fn calls(node: &Node) -> String {
    fs::read_to_string(
        node.node
            .path(&format!("{}/calls.log", support::standin::STATE_INSIDE)),
    )
    .unwrap_or_default()
}

/// How many preflights ran on `node`: the launcher's own `podman ps -a`
/// calls (one per preflight; the gate's suite calls it too, and is told
/// apart by its environment).
pub(crate) fn preflights(node: &Node) -> usize {
    calls(node)
        .lines()
        .filter(|l| l.starts_with("launcher podman ps -a"))
        .count()
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn four_green_nodes_primary_first_one_connection_each() {
    let mut nodes = vec![
        on_ssh(SshNode::builder("n228").traced().start(), "healthy"),
        on_ssh(SshNode::builder("n101").traced().start(), "healthy"),
        on_ssh(SshNode::builder("n102").traced().start(), "healthy"),
        on_ssh(
            SshNode::builder("x250-a").max_sessions(1).traced().start(),
            "healthy",
        ),
    ];
    let mut fleet = Fleet::new();
    for (node, role) in nodes.iter().zip(["primary", "fleet", "fleet", "tester"]) {
        fleet.add(node, role);
    }

    // Every exec of the fleet's run here, however short-lived: the
    // launcher's and all it starts (the nodes are traced from their start).
    let here = fleet.dir.path().join("execs");
    let run = Run::of(
        strace::traced(&fleet.command("run", 2, 4), &here)
            .output()
            .unwrap(),
    );
    // Here the password is in no argv, and in no environment but the
    // launcher's own, where the test put it: it goes to the nodes on stdin,
    // and the fleet's ssh processes have no password variable at all.
    let here = Trace::read(&here);
    let launcher = &here.execs[0];
    assert_eq!(launcher.path, support::launcher().to_str().unwrap());
    assert!(
        here.execs
            .iter()
            .any(|e| e.argv.first().is_some_and(|a| a == "ssh")),
        "strace saw the fleet's ssh: {:#?}",
        here.execs
    );
    let leaks = here.leaks(PASSWORD, |e| {
        std::ptr::eq(e, launcher).then(|| format!("ARCHY_PW_TEST={PASSWORD}"))
    });
    assert!(leaks.is_empty(), "the password, on this host: {leaks:#?}");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let report = fleet.report();
    for node in &nodes {
        let n = node_report(&report, node.node.name());
        assert_eq!(n["phase"], "passed", "{n:#}");
        assert_eq!(n["iterations_passed"], 2, "{n:#}");
        assert_eq!(
            node.node.connections(),
            1,
            "{} saw {} SSH connections",
            node.node.name(),
            node.node.connections()
        );
        assert!(
            node.node.peak_sessions() <= 1,
            "{} had {} sessions at once",
            node.node.name(),
            node.node.peak_sessions()
        );
        // sshd may refuse a session request while it is still freeing the
        // last one's slot (MaxSessions 1); the fleet retries it over the same
        // connection (connections == 1 above), never opening a second.
        assert_eq!(node.runs().len(), 1, "one gate run on {}", node.node.name());
        assert_eq!(
            preflights(node),
            1,
            "one preflight on {}:\n{}",
            node.node.name(),
            calls(node)
        );
    }
    // The primary ended before any other node began.
    let primary_end = node_report(&report, "n228")["ended_unix"].as_u64().unwrap();
    for name in ["n101", "n102", "x250-a"] {
        let started = node_report(&report, name)["started_unix"].as_u64().unwrap();
        assert!(
            started >= primary_end,
            "{name} started before the primary ended"
        );
    }
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(md.contains("4 of 4 gate nodes passed"), "{md}");
    assert!(
        md.contains("| n228 | primary | **passed** | 2 of 2 |"),
        "{md}"
    );
    let junit = fs::read_to_string(fleet.out().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 4, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    // Not a terminal: plain progress lines, timestamped, without escape codes.
    assert!(
        run.stdout.lines().any(|l| l.contains(" n228 uploading ")),
        "progress a person can follow: {}",
        run.stdout
    );
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);

    // The password is in nothing either side wrote.
    for (path, text) in support::all_text(fleet.out().as_path())
        .into_iter()
        .chain(
            nodes
                .iter()
                .flat_map(|n| support::all_text(&n.node.path("/tmp"))),
        )
        .chain(
            nodes
                .iter()
                .flat_map(|n| support::all_text(&n.node.path("/var/tmp"))),
        )
    {
        assert!(
            !text.contains(PASSWORD),
            "the password is in {}",
            path.display()
        );
    }

    // Status reads the state from disk; a second run finds the work done.
    let status = Run::of(fleet.command("status", 2, 4).output().unwrap());
    assert_eq!(status.code, 0);
    assert!(
        status.stdout.contains("4 of 4 gate nodes passed"),
        "{}",
        status.stdout
    );
    let again = fleet.run(2, 4);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("picking up the run"),
        "{}",
        again.stderr
    );
    for node in &nodes {
        assert_eq!(
            node.runs().len(),
            1,
            "no second gate on {}",
            node.node.name()
        );
        assert_eq!(preflights(node), 1, "no second preflight");
    }

    // On each node, over both runs, the password was in no argv, and in an
    // environment only as the gate's ARCHY_PASSWORD.
    for node in &mut nodes {
        let name = node.node.name().to_string();
        let trace = node.node.stop_traced();
        let gate_has_it = trace.execs.iter().any(|e| {
            e.argv.iter().any(|a| a.ends_with("lifecycle/run-gate.sh"))
                && e.env.contains(&format!("ARCHY_PASSWORD={PASSWORD}"))
        });
        assert!(
            gate_has_it,
            "strace saw the gate start on {name}, given the password: {:#?}",
            trace.execs
        );
        let leaks = trace.leaks(PASSWORD, |e| {
            trace
                .in_gate(e)
                .then(|| format!("ARCHY_PASSWORD={PASSWORD}"))
        });
        assert!(leaks.is_empty(), "the password, on {name}: {leaks:#?}");
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_link_that_drops_mid_upload_and_mid_run_resumes() {
    let node = archy_node("cell-1", "healthy");
    let proxy = FlakyProxy::to(node.node.port());
    let mut fleet = Fleet::new();
    fleet.config.add_via("cell-1", &node.node, proxy.port());
    fleet.entries.push(entry(
        "cell-1",
        "cell-1",
        "primary",
        Some(node.standin.host()),
    ));
    let size = fs::metadata(real_bundle_dir().join("archy-gate"))
        .unwrap()
        .len();
    proxy.cut_after(size / 2);

    // Cut the link again while the gate runs: half a second after the
    // fleet saw its first iteration begin, when the fleet is waiting on the
    // node (a session in flight, not between sessions, where the next one
    // would reconnect unnoticed).
    let out = fleet.out();
    let (run, cut_mid_run) = thread::scope(|scope| {
        let cutter = scope.spawn(|| {
            for _ in 0..2400 {
                let state: Option<Value> = fs::read(out.join("state.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if state.is_some_and(|s| s["nodes"][0]["iteration"].as_u64().is_some()) {
                    thread::sleep(Duration::from_millis(500));
                    proxy.cut();
                    return Some(unix_now());
                }
                thread::sleep(Duration::from_millis(20));
            }
            None
        });
        let run = fleet.run(2, 1);
        (run, cutter.join().unwrap())
    });
    let cut_at = cut_mid_run.expect("the gate was seen running");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let n = node_report(&report, "cell-1");
    assert_eq!(n["phase"], "passed", "{n:#}");
    // The cut landed while the gate ran, by the node's own record of its
    // iterations (the node is this machine: one clock).
    let times = n["record"]["iteration_times"].as_array().unwrap();
    let began = times[0]["started_unix"].as_f64().unwrap();
    let ended = times.last().unwrap()["ended_unix"].as_f64().unwrap();
    assert!(
        began <= cut_at && cut_at <= ended,
        "the link was cut at {cut_at}, outside the gate's run ({began}..{ended})"
    );
    assert!(
        run.stdout.contains("cell-1: link down; reconnecting"),
        "the cut broke the fleet's wait on the node, and it reconnected: {}",
        run.stdout
    );
    let upload = &n["upload"];
    let resent = upload["resent"].as_u64().unwrap();
    assert!(
        upload["attempts"].as_u64().unwrap() >= 2,
        "the upload was cut: {upload}"
    );
    assert!(
        resent * 10 < size,
        "re-sent {resent} of {size} bytes: more than 10%"
    );
    assert!(
        proxy.cuts() >= 2,
        "cut mid-upload and mid-run ({} cuts)",
        proxy.cuts()
    );
    assert_eq!(node.runs().len(), 1, "the gate was not started twice");
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(
        md.contains("resumed"),
        "the report says the upload resumed: {md}"
    );
    eprintln!(
        "upload: {resent} of {size} bytes re-sent ({:.1}%), {} connections",
        resent as f64 * 100.0 / size as f64,
        node.node.connections()
    );
}

#[test]
fn not_ready_and_unreachable_nodes_do_not_hold_up_the_rest() {
    let primary = archy_node("prim", "healthy");
    let ibd = archy_node("syncing", "ibd");
    let good = archy_node("good", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&primary, "primary");
    fleet.add(&ibd, "fleet");
    fleet.add(&good, "fleet");
    fleet.config.add_refusing("gone");
    fleet.entries.push(entry("gone", "gone", "tester", None));
    let run = fleet.run(1, 4);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    assert_eq!(node_report(&report, "prim")["phase"], "passed");
    assert_eq!(node_report(&report, "good")["phase"], "passed");
    let syncing = node_report(&report, "syncing");
    assert_eq!(syncing["phase"], "not-ready", "{syncing:#}");
    assert!(
        syncing["reason"]
            .as_str()
            .unwrap()
            .contains("bitcoin-synced"),
        "{syncing:#}"
    );
    assert!(
        syncing["reason"]
            .as_str()
            .unwrap()
            .contains("initial block download"),
        "{syncing:#}"
    );
    assert!(ibd.runs().is_empty(), "no gate on a node that is not ready");
    let gone = node_report(&report, "gone");
    assert_eq!(gone["phase"], "unreachable", "{gone:#}");
    assert!(
        gone["reason"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{gone:#}"
    );
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(md.contains("**not-ready**"), "{md}");
}

#[test]
fn a_failing_primary_stops_the_fleet_phase() {
    let primary = archy_node("prim", "package-down");
    let other = archy_node("other", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&primary, "primary");
    fleet.add(&other, "fleet");
    let run = fleet.run(1, 2);
    assert_eq!(run.code, 1);
    let report = fleet.report();
    let p = node_report(&report, "prim");
    assert_eq!(p["phase"], "failed");
    assert!(
        p["tests"]["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "every installed package is running and healthy"),
        "{p:#}"
    );
    let o = node_report(&report, "other");
    assert_eq!(o["phase"], "skipped");
    assert!(
        o["reason"]
            .as_str()
            .unwrap()
            .contains("primary prim failed did not pass"),
        "{o:#}"
    );
    assert_eq!(
        other.node.connections(),
        0,
        "nothing touched the other node"
    );
    let junit = fs::read_to_string(fleet.out().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
}

#[test]
fn plan_touches_no_node() {
    let node = archy_node("quiet", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&node, "primary");
    let run = Run::of(fleet.command("plan", 5, 1).output().unwrap()).expect(0);
    assert!(
        run.stdout.contains("phase 1: primary nodes"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("quiet"), "{}", run.stdout);
    assert!(run.stdout.contains("5 iteration(s)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("$ARCHY_PW_TEST (found)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(PASSWORD));
    assert_eq!(node.node.connections(), 0);
    assert!(!fleet.out().exists(), "plan writes nothing");
}

#[test]
fn a_restarted_fleet_run_follows_the_gate_it_started() {
    let node = archy_node("steady", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&node, "primary");
    // The operator's command dies while the gate runs on the node.
    let mut first = fleet
        .command("run", 3, 1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state_path = fleet.out().join("state.json");
    let mut seen_running = false;
    for _ in 0..1200 {
        let state: Option<Value> = fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if state.is_some_and(|s| {
            s["nodes"][0]["phase"] == "running" && s["nodes"][0]["run_id"].is_string()
        }) {
            seen_running = true;
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    assert!(seen_running, "the gate was started");
    for _ in 0..400 {
        if !node.runs().is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(node.runs().len(), 1, "the gate runs on the node");
    first.kill().unwrap();
    first.wait().unwrap();

    // Status still reads the state from disk.
    let status = Run::of(fleet.command("status", 3, 1).output().unwrap()).expect(0);
    assert!(
        status.stdout.contains("| steady | primary | **running**"),
        "{}",
        status.stdout
    );

    let again = fleet.run(3, 1);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("steady: resuming run fleet-"),
        "{}",
        again.stdout
    );
    assert_eq!(
        node.runs().len(),
        1,
        "the gate was not started a second time"
    );
    let n = node_report(&fleet.report(), "steady").clone();
    assert_eq!(n["phase"], "passed", "{n:#}");
    assert_eq!(n["iterations_passed"], 3, "{n:#}");
}

/// Runs `script` on `node`'s filesystem as uid 65534, the node's other user.
fn as_attacker_on(node: &SshNode, script: &str) {
    let run = Run::of(
        Command::new("chroot")
            .arg("--userspec=65534:65534")
            .arg(node.root())
            .args(["/bin/sh", "-c", script])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "the attack did not set up: {}", run.stderr);
}

#[test]
fn the_fleet_trusts_no_dir_another_user_made_on_either_side() {
    let clean = archy_node("n-clean", "healthy");
    let hijacked = archy_node("n-hijack", "healthy");
    let part = archy_node("n-part", "healthy");
    // On one node the attacker made the bundle dir and put the very bundle
    // there (so its hash matches, and root would run their file); on
    // another, a .part link to a file of root's.
    as_attacker_on(&hijacked.node, "mkdir -m 777 /var/tmp/archy-gate-fleet");
    let planted = hijacked.node.path("/var/tmp/archy-gate-fleet/archy-gate");
    fs::copy(real_bundle_dir().join("archy-gate"), &planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    fs::write(part.node.path("/etc/victim"), "precious\n").unwrap();
    as_attacker_on(
        &part.node,
        "mkdir -m 777 /var/tmp/archy-gate-fleet && ln -s /etc/victim /var/tmp/archy-gate-fleet/archy-gate.part",
    );
    let mut fleet = Fleet::new();
    fleet.add(&clean, "primary");
    fleet.add(&hijacked, "fleet");
    fleet.add(&part, "fleet");
    let roster = fleet.roster(1);

    // The operator's host: the attacker planted a control dir for every pid,
    // each with a master log linked to a file of root's.
    let lab = support::lab::Lab::new();
    let launcher = lab.copy_in(&support::launcher(), "launcher");
    let bundle = lab.copy_in(&real_bundle_dir().join("archy-gate"), "archy-gate");
    lab.write("victim-file", "precious\n");
    let script = r#"
as_nobody perl -e 'for (1..5000) { mkdir "/tmp/agf-$_", 0777; chmod 0777, "/tmp/agf-$_";
  symlink "$ENV{LAB}/victim-file", "/tmp/agf-$_/$_.master.log" for qw(n-clean n-hijack n-part) }'
code=0
"$LAUNCHER" fleet run --roster "$ROSTER" --bundle "$BUNDLE" --jobs 3 --out "$OUT" || code=$?
echo "exit=$code"
echo "victim file: $(cat "$LAB/victim-file")"
"#;
    let out = fleet.out();
    let run = lab.sh(
        &[
            ("LAUNCHER", launcher.to_str().unwrap()),
            ("BUNDLE", bundle.to_str().unwrap()),
            ("ROSTER", roster.to_str().unwrap()),
            ("OUT", out.to_str().unwrap()),
            ("ARCHY_PW_TEST", PASSWORD),
        ],
        script,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("victim file: precious\n"),
        "{}",
        run.stdout
    );
    let report = fleet.report();
    assert_eq!(node_report(&report, "n-clean")["phase"], "passed");
    for name in ["n-hijack", "n-part"] {
        let n = node_report(&report, name);
        assert_eq!(n["phase"], "error", "{n:#}");
        let reason = n["reason"].as_str().unwrap();
        assert!(
            reason.contains("/var/tmp/archy-gate-fleet is owned by uid 65534"),
            "{reason}"
        );
    }
    assert!(
        hijacked.runs().is_empty(),
        "nothing ran from the planted file"
    );
    assert_eq!(
        fs::read_to_string(part.node.path("/etc/victim")).unwrap(),
        "precious\n"
    );
    assert_eq!(
        fs::metadata(&planted)
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap(),
        65534,
        "the planted file was left alone"
    );
}

#[test]
fn jobs_0_is_refused_not_raised_to_1() {
    let dir = support::lab::scratch("roster.");
    let roster = dir.path().join("fleet.toml");
    fs::write(
        &roster,
        "[[node]]\nname = \"n1\"\nssh = \"root@n1\"\nrole = \"dev\"\ngate = false\n",
    )
    .unwrap();
    let run = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "plan", "--jobs", "0", "--roster"])
            .arg(&roster)
            .arg("--bundle")
            .arg(real_bundle_dir().join("archy-gate"))
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("0 would run no node: give 1 or more"),
        "{}",
        run.stderr
    );
}

#[test]
fn roster_names_and_destinations_that_could_escape_are_refused() {
    let dir = support::lab::scratch("roster.");
    for (node, said) in [
        (
            "name = \"..\"\nssh = \"root@n1\"",
            "node name \"..\": start with a letter or digit",
        ),
        (
            "name = \".hidden\"\nssh = \"root@n1\"",
            "node name \".hidden\": start with a letter or digit",
        ),
        (
            "name = \"n1\"\nssh = \"-oProxyCommand=touch /tmp/pwned\"",
            "ssh destination \"-oProxyCommand=touch /tmp/pwned\" must be user@host",
        ),
        (
            "name = \"n1\"\nssh = \"root@n1\"\nremote_path = \"/var/tmp/../etc/archy-gate\"",
            "remote_path \"/var/tmp/../etc/archy-gate\" must be /DIR/.../FILE",
        ),
    ] {
        let roster = dir.path().join("fleet.toml");
        fs::write(
            &roster,
            format!("[[node]]\n{node}\nrole = \"dev\"\ngate = false\n"),
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
        assert_eq!(run.code, 2, "{node}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{node}: {}", run.stderr);
    }
}

/// `[defaults] trust`: every node gets `run --trust KEY`, and a node whose
/// copy was changed after signing refuses it, while the honest node runs
/// and the report names the key that verified its bundle. The changed copy
/// gets past the upload's check because the node's sha256sum lies for it,
/// standing in for a copy changed after the check; the signature check on
/// the node comes first and says so.
#[test]
fn a_fleet_with_a_trusted_key_rejects_a_nodes_tampered_copy() {
    let honest = archy_node("signed-ok", "healthy");
    let tampered = archy_node("signed-bad", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&honest, "fleet");
    fleet.add(&tampered, "fleet");

    let dir = fleet.dir.path().to_path_buf();
    let (secret, public) = (dir.join("release.key"), dir.join("release.pub"));
    let keygen = support::launch([
        "keygen".as_ref(),
        "--secret".as_ref(),
        secret.as_os_str(),
        "--public".as_ref(),
        public.as_os_str(),
    ])
    .expect(0);
    let key_id = keygen.stdout.lines().next().unwrap()[4..].to_string();
    let signed = dir.join("signed/archy-gate");
    fs::create_dir_all(signed.parent().unwrap()).unwrap();
    support::launch([
        "sign".as_ref(),
        real_bundle_dir().join("archy-gate").as_os_str(),
        "--key".as_ref(),
        secret.as_os_str(),
        "--out".as_ref(),
        signed.as_os_str(),
    ])
    .expect(0);
    fleet.trust = Some(public.display().to_string());
    fleet.bundle = Some(signed.clone());

    // The tampered node already holds a copy with one payload byte changed.
    let good = fs::read(&signed).unwrap();
    let n = good.len();
    let text_len = u32::from_le_bytes(good[n - 16..n - 12].try_into().unwrap()) as usize;
    let trailer = n - 16 - text_len - 64;
    let offset = u64::from_le_bytes(good[trailer + 8..trailer + 16].try_into().unwrap()) as usize;
    let mut bad = good.clone();
    bad[offset + 100] ^= 1;
    let remote = "/var/tmp/archy-gate-fleet/archy-gate";
    let remote_dir = tampered.node.path("/var/tmp/archy-gate-fleet");
    fs::create_dir_all(&remote_dir).unwrap();
    fs::set_permissions(
        &remote_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::write(tampered.node.path(remote), &bad).unwrap();
    fs::set_permissions(
        tampered.node.path(remote),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sha = support::sha256_hex(&good);
    let shim = tampered.node.path("/bin/sha256sum");
    fs::remove_file(&shim).unwrap();
    fs::write(
        &shim,
        format!("#!/bin/sh\ncase \"$1\" in {remote}) echo \"{sha}  $1\";; *) exec busybox sha256sum \"$@\";; esac\n"),
    )
    .unwrap();
    fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let plan = Run::of(fleet.command("plan", 1, 2).output().unwrap()).expect(0);
    assert!(
        plan.stdout.contains(&format!("signed by key {key_id}")),
        "{}",
        plan.stdout
    );
    let run = fleet.run(1, 2);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = fleet.report();
    let ok = node_report(&report, "signed-ok");
    assert_eq!(ok["phase"], "passed", "{ok:#}");
    assert_eq!(ok["verified_by"], key_id.as_str(), "{ok:#}");
    let refused = node_report(&report, "signed-bad");
    assert_eq!(refused["phase"], "error", "{refused:#}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("the signature by key {key_id} does not match")),
        "{refused:#}"
    );
    assert!(refused["verified_by"].is_null(), "{refused:#}");
    assert!(
        tampered.runs().is_empty(),
        "no gate ran on the tampered copy"
    );
    // The key is the one this host verified the bundle with before upload
    // (the node's own claim is not repeated as ours), and only the node
    // that ran it is named.
    let md = fs::read_to_string(fleet.out().join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "Signature verified here, before upload, with trusted key `{key_id}`; run with `--trust` that key on: signed-ok.\n"
        )),
        "{md}"
    );

    // A bundle signed by another key is refused before any node is touched.
    let (other_secret, other_public) = (dir.join("other.key"), dir.join("other.pub"));
    support::launch([
        "keygen".as_ref(),
        "--secret".as_ref(),
        other_secret.as_os_str(),
        "--public".as_ref(),
        other_public.as_os_str(),
    ])
    .expect(0);
    fleet.trust = Some(other_public.display().to_string());
    let connections = honest.node.connections();
    let run = fleet.run(1, 2);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("does not trust"), "{}", run.stderr);
    assert_eq!(
        honest.node.connections(),
        connections,
        "no node was touched"
    );
}

/// `fleet status --bundle OLD` reads OLD's fleet dir, not the newest one;
/// `--jobs`, which means nothing to a reader, is refused.
#[test]
fn status_honours_bundle_and_refuses_jobs_and_report_refuses_json() {
    let dir = support::lab::scratch("status.");
    let roster = dir.path().join("fleet.toml");
    fs::write(
        &roster,
        "[[node]]\nname = \"n1\"\nssh = \"root@n1\"\nrole = \"dev\"\ngate = false\n",
    )
    .unwrap();
    let gate_dir = dir.path().join("gate");
    fs::create_dir(&gate_dir).unwrap();
    let old = real_bundle_dir().join("archy-gate");
    let new = support::gate_bundle::bundle_with_gate(&gate_dir, "#!/usr/bin/env bash\n");
    // Two fleet runs' states where `fleet run` keeps them, the newer one last.
    for (bundle, when) in [
        (&old, "2026-01-01T00:00:00Z"),
        (&new, "2026-02-01T00:00:00Z"),
    ] {
        let sha = support::sha256_hex(&fs::read(bundle).unwrap());
        let fleet_dir = dir.path().join("archy-gate-fleet/fleet").join(&sha[..12]);
        fs::create_dir_all(&fleet_dir).unwrap();
        let state = serde_json::json!({
            "roster": roster, "bundle": bundle, "bundle_sha256": sha, "bundle_size": 1,
            "started": when, "updated": when, "nodes": [],
        });
        fs::write(fleet_dir.join("state.json"), state.to_string()).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let status = |extra: &[&str]| {
        Run::of(
            Command::new(support::launcher())
                .current_dir(dir.path())
                .args(["fleet", "status", "--roster", "fleet.toml"])
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let latest = status(&[]).expect(0);
    assert!(latest.stdout.contains("2026-02-01"), "{}", latest.stdout);
    let chosen = status(&["--bundle", old.to_str().unwrap()]).expect(0);
    assert!(chosen.stdout.contains("2026-01-01"), "{}", chosen.stdout);
    let jobs = status(&["--jobs", "4"]);
    assert_eq!(jobs.code, 2, "{}", jobs.stderr);
    assert!(
        jobs.stderr.contains("unexpected argument '--jobs'"),
        "{}",
        jobs.stderr
    );
    // `fleet report` writes reports; it has no --json to ignore.
    let report_json = Run::of(
        Command::new(support::launcher())
            .current_dir(dir.path())
            .args(["fleet", "report", "--roster", "fleet.toml", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(report_json.code, 2, "{}", report_json.stderr);
    assert!(
        report_json.stderr.contains("unexpected argument '--json'"),
        "{}",
        report_json.stderr
    );
}
