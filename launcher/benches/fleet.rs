//! Benchmark: one fleet run over eight loopback sshd nodes (the stand-in
//! Archy nodes of the tests), `--jobs 8` against `--jobs 1`, side by side.
//! Run with `cargo bench --bench fleet`; it prints wall times and the ratio.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::process::Command;
use std::time::Instant;

use support::ssh_node::{SshConfig, SshNode};
use support::standin::StandinNode;
use support::{launcher, real_bundle_dir};

const NODES: usize = 8;
const PASSWORD: &str = "bench-password";

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
    let roster_path = dir.path().join("fleet.toml");
    fs::write(
        &roster_path,
        format!(
            "[defaults]\niterations = 2\nssh_config = \"{}\"\n\n{roster}",
            config.path().display()
        ),
    )
    .unwrap();
    let bundle = real_bundle_dir().join("archy-gate");
    let fleet = |jobs: usize, out: &str| -> f64 {
        let start = Instant::now();
        let status = Command::new(launcher())
            .args(["fleet", "run", "--roster"])
            .arg(&roster_path)
            .arg("--bundle")
            .arg(&bundle)
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
}
