//! The test infrastructure for `launcher fleet`, proved on its own with the
//! real OpenSSH client: SSH nodes on loopback ports, each a chroot with its
//! own / and /tmp, counted on the sshd side; the ssh config that names them;
//! and the flaky proxy that stands in for a cellular link.

use crate::support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::flaky_proxy::FlakyProxy;
use support::real_bundle_dir;
use support::ssh_node::{SshConfig, SshNode};
use support::standin::StandinNode;
use support::Run;

fn run(mut cmd: Command) -> Run {
    Run::of(cmd.stdin(Stdio::null()).output().expect("ssh runs"))
}

/// `cmd` with `input` on its stdin.
fn run_with_input(mut cmd: Command, input: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh runs");
    let mut stdin = child.stdin.take().unwrap();
    // The far end may hang up early (a cut link): that is for the test to see.
    let _ = stdin.write_all(input);
    drop(stdin);
    Run::of(child.wait_with_output().unwrap())
}

#[test]
fn a_command_runs_inside_the_nodes_own_root_over_one_connection() {
    let node = SshNode::start("node-a");
    let mut cfg = SshConfig::new();
    cfg.add(&node);
    let mut ssh = cfg.ssh();
    ssh.args(["node-a", "echo hi > /tmp/x; ls /; echo \"$0\""]);
    let out = run(ssh).expect(0);
    assert_eq!(fs::read_to_string(node.path("/tmp/x")).unwrap(), "hi\n");
    let listing: Vec<&str> = out.stdout.lines().collect();
    for dir in ["bin", "dev", "etc", "proc", "root", "tmp", "usr", "var"] {
        assert!(listing.contains(&dir), "{listing:?}");
    }
    assert_eq!(listing.last(), Some(&"bash"), "the login shell is bash");
    assert_eq!(node.connections(), 1, "{}", node.log());
    assert_eq!(node.sessions(), 1, "{}", node.log());
}

#[test]
fn the_node_has_its_own_processes_and_proc() {
    let node = SshNode::start("node-p");
    let out = node
        .ssh("ps -o pid,comm; readlink /proc/self/exe")
        .expect(0);
    // sshd is the node's init; the host's processes are not there.
    let first = out.stdout.lines().nth(1).unwrap();
    assert!(
        first.split_whitespace().collect::<Vec<_>>() == ["1", "sshd"],
        "{}",
        out.stdout
    );
    assert!(out.stdout.lines().count() < 10, "{}", out.stdout);
    assert!(out.stdout.contains("/bin/busybox"), "{}", out.stdout);
}

#[test]
fn two_nodes_are_separate_hosts() {
    let a = SshNode::start("node-a");
    let b = SshNode::start("node-b");
    assert_ne!(a.root(), b.root());
    assert_ne!(a.port(), b.port());
    let mut cfg = SshConfig::new();
    cfg.add(&a).add(&b);
    for (name, node) in [("node-a", &a), ("node-b", &b)] {
        let mut ssh = cfg.ssh();
        ssh.args([name, &format!("echo {name} > /tmp/who")]);
        run(ssh).expect(0);
        assert_eq!(
            fs::read_to_string(node.path("/tmp/who")).unwrap(),
            format!("{name}\n")
        );
    }
    let mut ssh = cfg.ssh();
    ssh.args(["node-a", "cat /tmp/who"]);
    assert_eq!(run(ssh).expect(0).stdout, "node-a\n");
    assert_eq!((a.connections(), b.connections()), (2, 1));
}

#[test]
fn one_multiplexed_connection_carries_sequential_commands() {
    let node = SshNode::builder("node-m").max_sessions(1).start();
    let mut cfg = SshConfig::new();
    cfg.add(&node);
    for i in 0..4 {
        let mut ssh = cfg.ssh();
        ssh.args(cfg.multiplexed(60))
            .args(["node-m", &format!("echo {i}")]);
        assert_eq!(run(ssh).expect(0).stdout, format!("{i}\n"));
    }
    cfg.exit_master("node-m");
    assert_eq!(node.connections(), 1, "{}", node.log());
    assert_eq!(node.sessions(), 4, "{}", node.log());
    assert_eq!(node.peak_sessions(), 1);
    assert_eq!(node.refused_sessions(), 0);
}

#[test]
fn concurrent_sessions_over_one_master_are_counted_at_their_peak() {
    let node = SshNode::start("node-c");
    let mut cfg = SshConfig::new();
    cfg.add(&node);
    let mut first = cfg.ssh();
    first
        .args(cfg.multiplexed(60))
        .args(["node-c", "echo up; sleep 1"]);
    run(first).expect(0);
    let mut long = cfg.ssh();
    long.args(cfg.multiplexed(60))
        .args(["node-c", "sleep 1"])
        .stdin(Stdio::null());
    let long = long.spawn().unwrap();
    wait_for(|| node.sessions() == 2);
    let mut second = cfg.ssh();
    second.args(cfg.multiplexed(60)).args(["node-c", "true"]);
    run(second).expect(0);
    assert!(long.wait_with_output().unwrap().status.success());
    cfg.exit_master("node-c");
    assert_eq!(node.connections(), 1, "{}", node.log());
    assert_eq!(node.peak_sessions(), 2, "{}", node.log());
}

/// The trap the fleet must avoid: a node whose sshd allows one session at a
/// time refuses a second session over the master while the first is open,
/// and the OpenSSH client then quietly opens a second TCP connection of its
/// own (with ControlMaster=auto or =no alike).
#[test]
fn a_second_concurrent_session_is_refused_when_sshd_allows_one() {
    let node = SshNode::builder("node-1").max_sessions(1).start();
    let mut cfg = SshConfig::new();
    cfg.add(&node);
    let mut warm = cfg.ssh();
    warm.args(cfg.multiplexed(60)).args(["node-1", "true"]);
    run(warm).expect(0);
    let mut long = cfg.ssh();
    long.args(cfg.multiplexed(60))
        .args(["node-1", "sleep 2"])
        .stdin(Stdio::null());
    let long = long.spawn().unwrap();
    wait_for(|| node.sessions() == 2);
    let mut second = cfg.ssh();
    second
        .args(cfg.multiplexed(60))
        .args(["node-1", "echo second"]);
    let out = run(second);
    assert!(long.wait_with_output().unwrap().status.success());
    cfg.exit_master("node-1");
    assert!(
        out.stderr.contains("Session open refused by peer"),
        "{}",
        out.stderr
    );
    assert_eq!(node.refused_sessions(), 1, "{}", node.log());
    // The client fell back to a connection of its own: two on the node.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(node.connections(), 2, "{}", node.log());
}

#[test]
fn the_real_bundle_runs_on_the_node_over_ssh() {
    const PW: &str = "typed-on-the-operator-host";
    let node = SshNode::start("node-g");
    let standin = StandinNode::start(&node.node, "healthy", PW);
    let mut cfg = SshConfig::new();
    cfg.add(&node);
    let bundle = real_bundle_dir().join("archy-gate");
    let mut scp = cfg.scp();
    scp.arg(&bundle).arg("node-g:/tmp/archy-gate");
    run(scp).expect(0);
    assert_eq!(
        fs::read(node.path("/tmp/archy-gate")).unwrap(),
        fs::read(&bundle).unwrap()
    );
    let mut ssh = cfg.ssh();
    ssh.args([
        "node-g",
        &format!(
        "chmod +x /tmp/archy-gate && /tmp/archy-gate run --iterations 1 --host {} --password-stdin",
        standin.host()
    ),
    ]);
    let out = run_with_input(ssh, format!("{PW}\n").as_bytes());
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("# 1 of 1 iterations passed"),
        "{}",
        out.stdout
    );
    assert!(standin
        .requests()
        .iter()
        .any(|r| r.contains("server.get-state")));
    // scp (over sftp) and the run: one session each.
    assert_eq!((node.connections(), node.sessions()), (2, 2));
    // Where the gate ran and recorded it (the stand-in's own state knows the password).
    let grep = Command::new("grep")
        .args(["-rl", PW])
        .arg(node.path("/tmp"))
        .arg(node.path("/var/tmp"))
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password is on the node: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
    assert!(!node.log().contains(PW));
}

#[test]
fn the_flaky_proxy_cuts_a_transfer_and_lets_the_next_connection_through() {
    let node = SshNode::start("node-f");
    let proxy = FlakyProxy::to(node.port());
    let mut cfg = SshConfig::new();
    cfg.add_via("node-f", &node, proxy.port());
    let blob = vec![7u8; 4 << 20];

    proxy.cut_after(256 * 1024);
    let mut ssh = cfg.ssh();
    ssh.args(["node-f", "cat > /tmp/blob"]);
    let out = run_with_input(ssh, &blob);
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert_eq!(proxy.cuts(), 1);
    let got = fs::metadata(node.path("/tmp/blob")).map_or(0, |m| m.len());
    assert!(got < 256 * 1024, "{got} bytes arrived past the cut");
    let up = proxy.bytes_up();
    assert!((256 * 1024..256 * 1024 + 1024).contains(&up), "{up}");

    let mut ssh = cfg.ssh();
    ssh.args(["node-f", "cat > /tmp/blob"]);
    run_with_input(ssh, &blob).expect(0);
    assert_eq!(fs::metadata(node.path("/tmp/blob")).unwrap().len(), 4 << 20);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(node.connections(), 2);
    assert!(proxy.bytes_down() > 0);
}

#[test]
fn the_flaky_proxy_cuts_open_connections_and_goes_down_for_a_while() {
    let node = SshNode::start("node-d");
    let proxy = FlakyProxy::to(node.port());
    let mut cfg = SshConfig::new();
    cfg.add_via("node-d", &node, proxy.port());

    let mut long = cfg.ssh();
    long.args(["node-d", "sleep 5"]).stdin(Stdio::null());
    let started = Instant::now();
    let long = long
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| node.sessions() == 1);
    proxy.cut();
    let status = long.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(255));
    assert!(started.elapsed() < Duration::from_secs(4));

    proxy.down_for(Duration::from_millis(800));
    let mut ssh = cfg.ssh();
    ssh.args(["node-d", "true"]);
    let out = run(ssh);
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert_eq!(proxy.refused(), 1);
    std::thread::sleep(Duration::from_millis(900));
    let mut ssh = cfg.ssh();
    ssh.args(["node-d", "true"]);
    run(ssh).expect(0);
    assert_eq!((proxy.connections(), node.connections()), (2, 2));
}

#[test]
fn unreachable_nodes_refuse_or_stay_silent() {
    let mut cfg = SshConfig::new();
    cfg.add_refusing("gone").add_silent("mute");
    let mut ssh = cfg.ssh();
    ssh.args(["-o", "ConnectTimeout=1", "gone", "true"]);
    let out = run(ssh);
    assert_eq!(out.code, 255);
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);

    let started = Instant::now();
    let mut ssh = cfg.ssh();
    ssh.args(["-o", "ConnectTimeout=1", "mute", "true"]);
    let out = run(ssh);
    assert_eq!(out.code, 255);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn stopping_a_node_ends_every_process_on_it() {
    let mut node = SshNode::start("node-s");
    // A process that outlives its session, as a detached gate run does.
    node.ssh("setsid sleep 300 </dev/null >/dev/null 2>&1 & echo started")
        .expect(0);
    let root = node.root().to_path_buf();
    let in_node = || {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                fs::read_link(e.path().join("root")).is_ok_and(|r| r == root)
                    && fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c == "sleep\n")
            })
            .count()
    };
    wait_for(|| in_node() == 1);
    node.stop();
    assert_eq!(in_node(), 0);
}

fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}
