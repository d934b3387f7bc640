//! Benchmark: one fleet run over eight loopback sshd nodes (the stand-in
//! Archy nodes of the tests), `--jobs 8` against `--jobs 1`, side by side;
//! then the orchestration alone: a gate that sleeps and uses no CPU, eight
//! nodes at `--jobs 8` against one node (goal: at most 1.3x).
//! Run with `cargo bench --bench fleet`; it prints wall times and ratios.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::fs;
use std::process::Command;
use std::time::Instant;

use support::ssh_node::{SshConfig, SshNode};
use support::standin::StandinNode;
use support::{launcher, real_bundle_dir};

const NODES: usize = 8;
const PASSWORD: &str = "bench-password";
/// What two cores cannot run eight of at once is the suite; this gate
/// leaves the CPU to the fleet.
const SLEEPING_GATE: &str = "sleep 5\necho 1..1\necho 'ok 1 slept'\n";

fn main() {
    let nodes: Vec<(StandinNode, SshNode)> = (0..NODES)
        .map(|i| {
            let ssh = SshNode::start(&format!("bench-{i}"));
            let standin = StandinNode::start(&ssh.node, "healthy", PASSWORD);
            (standin, ssh)
        })
        .collect();
    let mut config = SshConfig::new();
    let mut roster = String::new();
    for (standin, ssh) in &nodes {
        config.add(ssh);
        roster.push_str(&format!(
            "[[node]]\nname = \"{0}\"\nssh = \"{0}\"\nrole = \"fleet\"\npassword_env = \"BENCH_PW\"\nhost = \"{1}\"\n\n",
            ssh.name(),
            standin.host()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let write_roster = |name: &str, iterations: u32, nodes: &str| {
        let path = dir.path().join(name);
        fs::write(
            &path,
            format!(
                "[defaults]\niterations = {iterations}\nssh_config = \"{}\"\n\n{nodes}",
                config.path().display()
            ),
        )
        .unwrap();
        path
    };
    let roster_path = write_roster("fleet.toml", 2, &roster);
    let bundle = real_bundle_dir().join("archy-gate");
    let run = |roster: &std::path::Path, bundle: &std::path::Path, jobs: usize, out: &str| -> f64 {
        let start = Instant::now();
        let status = Command::new(launcher())
            .args(["fleet", "run", "--roster"])
            .arg(roster)
            .arg("--bundle")
            .arg(bundle)
            .args(["--jobs", &jobs.to_string(), "--out"])
            .arg(dir.path().join(out))
            .env("BENCH_PW", PASSWORD)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "fleet run --jobs {jobs} failed");
        start.elapsed().as_secs_f64()
    };
    let fleet = |jobs: usize, out: &str| run(&roster_path, &bundle, jobs, out);
    // The first run uploads the bundle everywhere; the timed ones find it there.
    let warmup = fleet(NODES, "warmup");
    let one = fleet(1, "jobs-1");
    let eight = fleet(NODES, "jobs-8");
    println!("{NODES} loopback nodes, 2 iterations each (bundle already on the nodes)");
    println!(
        "{:<34} {:>8.2} s",
        "first run, with uploads, --jobs 8", warmup
    );
    println!("{:<34} {:>8.2} s", "fleet run --jobs 1", one);
    println!("{:<34} {:>8.2} s", "fleet run --jobs 8", eight);
    println!("{:<34} {:>8.2}x", "speed-up (jobs 1 / jobs 8)", one / eight);

    // The orchestration alone: gates that sleep, one node against eight.
    let sleeping =
        support::gate_bundle::bundle_with_gate(&dir.path().join("sleeping"), SLEEPING_GATE);
    let first_node = roster.split("\n\n").next().unwrap().to_string() + "\n";
    let roster_one = write_roster("one.toml", 1, &first_node);
    let roster_all = write_roster("all.toml", 1, &roster);
    run(&roster_all, &sleeping, NODES, "sleep-warmup");
    let alone = run(&roster_one, &sleeping, 1, "sleep-one");
    let all = run(&roster_all, &sleeping, NODES, "sleep-eight");
    println!();
    println!("the same nodes, a gate that sleeps 5 s (1 iteration, bundle already there)");
    println!("{:<34} {:>8.2} s", "1 node", alone);
    println!("{:<34} {:>8.2} s", "8 nodes, --jobs 8", all);
    println!(
        "{:<34} {:>8.2}x  (goal: <= 1.30x)",
        "ratio (8 nodes / 1 node)",
        all / alone
    );
    // What the fleet adds to one node's gate: connecting, the start (with
    // its preflight), noticing the end, fetching, the reports.
    println!(
        "{:<34} {:>8.2} s  (goal: <= 1.50 s; 2.93 s on 2026-12-02, when the fleet polled)",
        "1 node, beyond the 5 s gate",
        alone - 5.0
    );
}
