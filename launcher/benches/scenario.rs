//! Benchmark: what the fleet's scenario coordinator costs per step. Two
//! loopback sshd nodes (the stand-in Archy nodes of the tests) and a
//! scenario of ten steps, alternating between them, each running one empty
//! bats test. For every step, the time this host saw it take (start the
//! run, wait on it, fetch its dir, carry its values) side by side with the
//! step's own run time on the node (its gate's start to its end, by the
//! node's record); the difference is the coordinator's cost.
//! Goal: at most 1 s per step.
//! Run with `cargo bench --bench scenario`; it prints both and the ratio.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::fs;
use std::process::Command;

use support::gate_bundle::bundle_with_gate_and;
use support::launcher;
use support::ssh_node::{SshConfig, SshNode};
use support::standin::StandinNode;

const PASSWORD: &str = "bench-password";
const STEPS: usize = 10;
const ROUNDS: usize = 3;
const GATE: &str = "printf '1..1\\nok 1 gate\\n' | tee \"$ARCHY_GATE_RUN_DIR/iteration-1.tap\"\n";
const RUN_SH: &str = "#!/usr/bin/env bash\nset -euo pipefail\nbats --tap \"$@\" | tee \"$ARCHY_GATE_RUN_DIR/cross.tap\"\nexit \"${PIPESTATUS[0]}\"\n";
const EMPTY: &str = "@test \"empty\" { :; }\n";

fn main() {
    let nodes: Vec<(StandinNode, SshNode)> = (0..2)
        .map(|i| {
            let ssh = SshNode::start(&format!("step-{i}"));
            let standin = StandinNode::start(&ssh.node, "healthy", PASSWORD);
            (standin, ssh)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = String::from("description = \"ten empty steps\"\n");
    for i in 0..STEPS {
        scenario.push_str(&format!(
            "[[step]]\nname = \"s{i}\"\non = \"{}\"\ntests = [\"tests/empty.bats\"]\n",
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    let bundle = bundle_with_gate_and(dir.path(), GATE, |stage| {
        let at = stage.join("lifecycle/cross/steps");
        fs::create_dir_all(at.join("tests")).unwrap();
        support::write_executable(&at.join("run.sh"), RUN_SH.as_bytes(), 0o755);
        fs::write(at.join("tests/empty.bats"), EMPTY).unwrap();
        fs::write(at.join("scenario.toml"), &scenario).unwrap();
    });
    let mut config = SshConfig::new();
    let mut roster = String::new();
    for (standin, ssh) in &nodes {
        config.add(ssh);
        roster.push_str(&format!(
            "[[node]]\nname = \"{0}\"\nssh = \"{0}\"\nrole = \"fleet\"\npassword_env = \"BENCH_PW\"\nhost = \"{1}\"\npeer_host = \"{1}\"\n\n",
            ssh.name(),
            standin.host()
        ));
    }
    let roster_path = dir.path().join("fleet.toml");
    fs::write(
        &roster_path,
        format!(
            "[defaults]\niterations = 1\nssh_config = \"{}\"\n\n{roster}\
             [[cross]]\nsuite = \"steps\"\nnodes = [{{ name = \"step-0\", role = \"a\" }}, {{ name = \"step-1\", role = \"b\" }}]\n",
            config.path().display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let fleet = |extra: &[&str]| {
        let start = std::time::Instant::now();
        let status = Command::new(launcher())
            .args(["fleet", "run", "--roster"])
            .arg(&roster_path)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .env("BENCH_PW", PASSWORD)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "fleet run {extra:?} failed");
        start.elapsed().as_secs_f64()
    };
    // The gates (and the upload) once; then the scenario alone, timed.
    fleet(&[]);
    let mut seen = Vec::new();
    let mut own = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..ROUNDS {
        walls.push(fleet(&["--cross-only"]));
        let report: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
        for step in report["cross"][0]["steps"].as_array().unwrap() {
            assert_eq!(step["outcome"], "passed", "{step:#}");
            seen.push(step["seconds"].as_f64().unwrap());
            own.push(
                step["node_ended_unix"].as_f64().unwrap()
                    - step["node_started_unix"].as_f64().unwrap(),
            );
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let overhead: Vec<f64> = seen.iter().zip(&own).map(|(s, o)| s - o).collect();
    let (seen_m, own_m, over_m) = (
        median(&mut seen.clone()),
        median(&mut own.clone()),
        median(&mut overhead.clone()),
    );
    println!(
        "{STEPS} steps across 2 loopback nodes, {ROUNDS} rounds ({} steps timed)",
        seen.len()
    );
    println!("per step (medians): as this host saw it {seen_m:.3} s; the step's own run on its node {own_m:.3} s");
    println!(
        "coordinator per step: {over_m:.3} s (max {:.3} s); ratio seen/own {:.2}",
        overhead.iter().cloned().fold(0.0, f64::max),
        seen_m / own_m
    );
    // All in: the whole `fleet run --cross-only` (connecting, reading each
    // node's packages and certificate, the reports) less the steps' own runs.
    let own_total: f64 = own.iter().sum::<f64>() / ROUNDS as f64;
    let wall = median(&mut walls);
    println!(
        "all in: fleet run --cross-only {wall:.2} s (median); the steps' own runs {own_total:.2} s; \
         {:.3} s per step besides",
        (wall - own_total) / STEPS as f64
    );
}
