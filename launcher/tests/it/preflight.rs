//! Preflight on a bare node faking an Archy node: the stand-in's RPC and
//! shims, plus fixture config trees (quadlet units, nginx) standing in for
//! the node's /etc. Every check is driven to each of its verdicts (pass,
//! warn, fail, skip: those it has).

use crate::support;

use std::fs;
use std::net::TcpListener;

use serde_json::Value;
use support::bare_node::BareNode;
use support::fixture::ArchyNode;
use support::standin::StandinNode;
use support::Run;

const PW: &str = "preflight-password";

/// The nginx fixture's stale port, which nothing listens on: below 1024 it
/// is never handed out as an ephemeral port (the live one is, per node).
const STALE_PORT: u16 = 9;

/// A faked node (the fixture's) and the app port its nginx fixture proxies to.
struct Node {
    // Declared first, dropped first: the RPC server stops before the node goes.
    standin: StandinNode,
    node: BareNode,
    /// Listening on the host's loopback, which the node shares.
    live: TcpListener,
}

/// A quadlet unit as Archy writes one for a container.
fn quadlet(name: &str) -> String {
    format!("[Unit]\nDescription={name}\n\n[Container]\nImage=localhost/archy/{name}:latest\nContainerName={name}\n\n[Install]\nWantedBy=default.target\n")
}

fn nginx(lnd_port: u16) -> String {
    format!(
        "server {{\n    listen 443 ssl;\n    location /rpc/v1 {{\n        proxy_pass http://127.0.0.1:5959;\n    }}\n    location /app/lnd/ {{\n        proxy_set_header Host $host;\n        proxy_pass http://127.0.0.1:{lnd_port}/;\n    }}\n}}\n"
    )
}

impl Node {
    /// A node faking `scenario`, with a quadlet unit for every container the
    /// healthy node has, and nginx proxying /app/lnd/ to a listening port.
    fn new(scenario: &str) -> Node {
        let live = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        assert!(
            TcpListener::bind(("127.0.0.1", STALE_PORT)).is_ok(),
            "port {STALE_PORT} must be free for the stale-proxy case"
        );
        let mut fixture = ArchyNode::build(scenario, PW).bundle().file(
            "/etc/nginx/conf.d/archy.conf",
            nginx(live.local_addr().unwrap().port()),
            0o644,
        );
        for name in ["bitcoind", "lnd", "lnd-tor", "mempool-api", "mempool-web"] {
            fixture = fixture.file(
                &format!("/etc/containers/systemd/{name}.container"),
                quadlet(name),
                0o644,
            );
        }
        let ArchyNode { standin, node } = fixture.bare();
        Node {
            standin,
            node,
            live,
        }
    }

    fn preflight(&self) -> (i32, Value, String) {
        self.preflight_after("")
    }

    /// `preflight --json` after `setup` ran in the node's mount namespace
    /// (see [`BareNode::sh_with`]).
    fn preflight_after(&self, setup: &str) -> (i32, Value, String) {
        let run = self.node.sh_with(
            setup,
            &[("ARCHY_PASSWORD", PW)],
            &format!(
                "/root/archy-gate preflight --json --host {}",
                self.standin.host()
            ),
        );
        let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "preflight --json printed no JSON ({e}):\n{}\n{}",
                run.stdout, run.stderr
            )
        });
        (run.code, doc, run.stderr)
    }

    fn check(doc: &Value, id: &str) -> Value {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id} in {doc:#}"))
            .clone()
    }
}

fn verdict(doc: &Value, id: &str) -> String {
    Node::check(doc, id)["verdict"]
        .as_str()
        .unwrap()
        .to_string()
}

fn text(check: &Value) -> String {
    format!("{} {}", check["reason"], check["evidence"])
}

#[test]
fn a_healthy_node_passes_every_check() {
    let node = Node::new("healthy");
    let (code, doc, stderr) = node.preflight();
    assert_eq!(code, 0, "{doc:#}\n{stderr}");
    for id in [
        "rpc-health",
        "bitcoin-synced",
        "quadlet-orphans",
        "units-activating",
        "nginx-app-proxies",
        "adopted-containers",
    ] {
        assert_eq!(
            verdict(&doc, id),
            "pass",
            "{id}: {:#}",
            Node::check(&doc, id)
        );
    }
    // Load depends on the machine the test runs on; it may only warn.
    assert!(["pass", "warn"].contains(&verdict(&doc, "load").as_str()));
    let rpc = Node::check(&doc, "rpc-health");
    assert!(
        text(&rpc).contains("loopback, certificate not verified"),
        "says how TLS was checked: {rpc}"
    );
    let btc = text(&Node::check(&doc, "bitcoin-synced"));
    assert!(
        btc.contains("blocks") && btc.contains("headers") && btc.contains("verificationprogress"),
        "{btc}"
    );
    let proxies = text(&Node::check(&doc, "nginx-app-proxies"));
    assert!(
        proxies.contains(&format!(
            "/app/lnd/ -> port {} listening (/etc/nginx/conf.d/archy.conf:8)",
            node.live.local_addr().unwrap().port()
        )),
        "{proxies}"
    );

    // The same, for people.
    let run = node.node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        &format!("/root/archy-gate preflight --host {}", node.standin.host()),
    );
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("preflight: "), "{}", run.stdout);
    assert!(
        run.stdout.contains("pass  bitcoin-synced"),
        "{}",
        run.stdout
    );
}

/// The load check reads /proc/loadavg. The node's own is replaced, bound
/// over it as lxcfs does for containers, so that both verdicts are driven
/// whatever this machine's load is.
#[test]
fn load_above_its_limit_per_core_warns_and_below_passes() {
    let node = Node::new("healthy");
    let over = r#"mount --bind "$ROOT/root/loadavg" "$ROOT/proc/loadavg""#;
    for (loadavg, verdict, said) in [
        ("0.00 0.01 0.02 1/80 4242\n", "pass", "load 0.00 per core"),
        (
            "9999.00 99.00 9.00 1/80 4242\n",
            "warn",
            "per core is above 2: a loaded node makes timing tests flaky",
        ),
    ] {
        node.node.put("/root/loadavg", loadavg.as_bytes(), 0o644);
        let (code, doc, stderr) = node.preflight_after(over);
        assert_eq!(code, 0, "a warning fails nothing: {doc:#}\n{stderr}");
        let check = Node::check(&doc, "load");
        assert_eq!(check["verdict"], verdict, "{check:#}");
        let t = text(&check);
        assert!(t.contains(said), "{t}");
        let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
        let read: Vec<String> = fields
            .iter()
            .map(|f| f.parse::<f64>().unwrap().to_string())
            .collect();
        assert!(
            t.contains(&format!("/proc/loadavg: {}", read.join(" "))),
            "the evidence is the file it read: {t}"
        );
    }
}

/// A node with nothing of Archy's (no RPC, no podman, no systemctl, no
/// bitcoin, no nginx): every check that needs one of them skips, saying
/// which, and nothing is taken for a pass.
#[test]
fn on_a_node_with_nothing_of_archys_the_checks_skip_saying_why() {
    let node = BareNode::new();
    node.put(
        "/root/archy-gate",
        &fs::read(support::real_bundle_dir().join("archy-gate")).unwrap(),
        0o755,
    );
    let run = node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        "/root/archy-gate preflight --json --host 127.0.0.1:9",
    );
    assert_eq!(run.code, 4, "the RPC does not answer: {}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(verdict(&doc, "rpc-health"), "fail");
    for (id, said) in [
        (
            "bitcoin-synced",
            "no bitcoin on this node (no bitcoin-cli, no bitcoin container)",
        ),
        ("quadlet-orphans", "no quadlet .container units found"),
        ("units-activating", "systemctl is not installed"),
        ("nginx-app-proxies", "no nginx config under /etc/nginx"),
        ("adopted-containers", "no container list"),
        ("workdir", "no work dir chosen yet"),
    ] {
        let check = Node::check(&doc, id);
        assert_eq!(check["verdict"], "skip", "{check:#}");
        assert!(text(&check).contains(said), "{check:#}");
    }
}

#[test]
fn bitcoin_in_ibd_or_pruned_fails_and_no_bitcoin_skips() {
    let node = Node::new("ibd");
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    let check = Node::check(&doc, "bitcoin-synced");
    assert_eq!(check["verdict"], "fail");
    assert!(text(&check).contains("initial block download"), "{check}");
    assert!(
        text(&check).contains("62.0% verified"),
        "reports the progress: {check}"
    );

    node.standin.set_scenario("pruned");
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    assert!(text(&Node::check(&doc, "bitcoin-synced")).contains("pruned"));

    node.standin.set_scenario("no-bitcoin");
    let (_, doc, _) = node.preflight();
    let check = Node::check(&doc, "bitcoin-synced");
    assert_eq!(check["verdict"], "skip", "{check}");
    assert!(text(&check).contains("no bitcoin on this node"), "{check}");
}

#[test]
fn an_orphan_quadlet_unit_is_named_with_its_file() {
    let node = Node::new("healthy");
    node.node.put(
        "/etc/containers/systemd/electrs.container",
        quadlet("electrs").as_bytes(),
        0o644,
    );
    // The app user's quadlets count too (its home is /home/archipelago when
    // /etc/passwd does not say; with the user there, the launcher would run
    // podman through runuser, which the bare node lacks); a unit without
    // ContainerName gets quadlet's default name.
    node.node.put(
        "/home/archipelago/.config/containers/systemd/fulcrum.container",
        b"[Container]\nImage=localhost/fulcrum\n",
        0o644,
    );
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    let check = Node::check(&doc, "quadlet-orphans");
    assert_eq!(check["verdict"], "fail");
    let t = text(&check);
    assert!(
        t.contains("/etc/containers/systemd/electrs.container: ContainerName electrs"),
        "{t}"
    );
    assert!(
        t.contains("fulcrum.container: ContainerName systemd-fulcrum"),
        "{t}"
    );
}

#[test]
fn a_unit_stuck_activating_fails() {
    let node = Node::new("unit-activating");
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    let check = Node::check(&doc, "units-activating");
    assert_eq!(check["verdict"], "fail");
    assert!(text(&check).contains("mempool-web.service"), "{check}");
}

#[test]
fn a_stale_nginx_target_is_named_with_port_file_and_line() {
    let node = Node::new("healthy");
    node.node.put(
        "/etc/nginx/conf.d/archy.conf",
        nginx(STALE_PORT).as_bytes(),
        0o644,
    );
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    let check = Node::check(&doc, "nginx-app-proxies");
    assert_eq!(check["verdict"], "fail");
    assert!(
        text(&check).contains(&format!(
            "/app/lnd/ -> port {STALE_PORT} (/etc/nginx/conf.d/archy.conf:8)"
        )),
        "{check}"
    );
}

#[test]
fn an_adopted_container_is_named() {
    let node = Node::new("adopted-container");
    node.node.put(
        "/etc/containers/systemd/electrs.container",
        quadlet("electrs").as_bytes(),
        0o644,
    );
    let (code, doc, _) = node.preflight();
    assert_eq!(code, 4);
    let check = Node::check(&doc, "adopted-containers");
    assert_eq!(check["verdict"], "fail");
    assert!(text(&check).contains("electrs"), "{check}");
    // Without the password there is no package list: skip, not a guess.
    let run = node.node.sh(&format!(
        "/root/archy-gate preflight --json --host {}",
        node.standin.host()
    ));
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(verdict(&doc, "adopted-containers"), "skip");
}

#[test]
fn an_unreachable_rpc_fails_its_check() {
    let node = Node::new("healthy");
    let run = node.node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        "/root/archy-gate preflight --json --host 127.0.0.1:9",
    );
    assert_eq!(run.code, 4);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(verdict(&doc, "rpc-health"), "fail");
    assert!(text(&Node::check(&doc, "rpc-health")).contains("does not answer health"));
}

#[test]
fn run_stops_before_the_gate_on_a_failing_node_unless_forced() {
    let node = Node::new("ibd");
    let gate = |flags: &str| -> Run {
        node.node.sh_with(
            "",
            &[("ARCHY_PASSWORD", PW)],
            &format!(
                "cd /root && ./archy-gate run --host {} {flags}",
                node.standin.host()
            ),
        )
    };
    let run = gate("");
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("FAIL  bitcoin-synced"),
        "the table: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--force"),
        "says how to go ahead: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("# iteration"),
        "the gate did not start: {}",
        run.stdout
    );
    assert!(
        !node.node.path("/tmp/archy-gate/runs").exists()
            || fs::read_dir(node.node.path("/tmp/archy-gate/runs"))
                .unwrap()
                .next()
                .is_none()
    );

    let run = gate("--force");
    assert_eq!(
        run.code, 1,
        "the gate ran, and its bitcoin test failed: {}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("# iteration 1 of 1"), "{}", run.stdout);
    let runs = node.node.path("/tmp/archy-gate/runs");
    let dir = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let rec: Value = serde_json::from_slice(&fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["forced"], true);
    assert_eq!(rec["preflight"]["verdict"], "fail");
    let failed: Vec<&str> = rec["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["bitcoin-synced"]);
    // In a run the work dir is chosen before preflight: its check passes.
    let workdir = rec["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "workdir")
        .unwrap();
    assert_eq!(workdir["verdict"], "pass", "{workdir:#}");
    assert!(
        text(workdir).contains("/tmp/archy-gate is writable and executes files"),
        "{workdir:#}"
    );
}

/// The app user writes its own quadlet dir: a FIFO named like a unit there
/// once hung preflight (and with it a `run` holding the node lock). Now it
/// is passed over, said in the evidence, and the real units still count.
#[test]
fn a_fifo_among_the_app_users_units_does_not_hang_preflight() {
    let node = Node::new("healthy");
    let dir = node
        .node
        .path("/home/archipelago/.config/containers/systemd");
    fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("trap.container");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = std::time::Instant::now();
    // busybox's timeout: a hang shows as exit 143, not as a stuck test.
    let run = node.node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        &format!(
            "timeout 120 /root/archy-gate preflight --json --host {}",
            node.standin.host()
        ),
    );
    assert!(
        run.code == 0 || run.code == 4,
        "preflight hung or failed (exit {}): {}",
        run.code,
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let check = Node::check(&doc, "quadlet-orphans");
    let t = text(&check);
    assert!(
        t.contains("trap.container: passed over: not a regular file"),
        "{t}"
    );
    assert_eq!(check["verdict"], "pass", "{check}");
}

/// A wedged podman whose helpers keep its output open: one in its process
/// group (as a forked child stays), one in a session of its own (as conmon
/// daemonizes). Before, the timeout killed only the command it started,
/// and then waited for the pipe to close: the helpers held it, and
/// preflight hung until busybox's `timeout 120` ended it (seen). Now the
/// command's group is killed and its output waited for no longer than
/// the deadline; what escaped the group is out of reach, and said so.
#[test]
fn a_wedged_node_command_is_killed_with_its_group_and_its_helpers_cannot_hold_preflight() {
    let node = Node::new("healthy");
    let podman = node.node.path("/usr/bin/podman");
    fs::write(
        &podman,
        "#!/bin/sh\nsetsid sleep 3107 &\nsleep 3106 &\nexec sleep 3105\n",
    )
    .unwrap();
    let run = node.node.sh_with(
        "",
        &[("ARCHY_PASSWORD", PW)],
        &format!(
            "timeout 120 /root/archy-gate preflight --json --command-timeout 2 --host {}",
            node.standin.host()
        ),
    );
    let alive = |tag: &str| {
        fs::read_dir("/proc").unwrap().flatten().any(|p| {
            fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c) == format!("sleep\0{tag}\0"))
        })
    };
    let (in_group, foreground, escaped) = (alive("3106"), alive("3105"), alive("3107"));
    // The escaped helper is no child of ours to wait for: end it here.
    let _ = std::process::Command::new("pkill")
        .args(["-f", "^sleep 310[567]$"])
        .status();
    assert!(
        run.code == 0 || run.code == 4,
        "preflight hung or failed (exit {}): {}",
        run.code,
        run.stderr
    );
    assert!(
        !in_group && !foreground,
        "the command's group outlived its timeout"
    );
    assert!(
        escaped,
        "the test's escaped helper was not there to hold the pipe"
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let check = Node::check(&doc, "adopted-containers");
    let t = text(&check);
    assert!(t.contains("timed out after 2s"), "{t}");
}
