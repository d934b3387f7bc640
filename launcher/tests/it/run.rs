//! `launcher run` and its companions on gates of the test's own making: the
//! work dir chosen by executing, detached runs that outlive their caller,
//! the node lock, signals to the whole process tree, the password kept out
//! of everything, and the unpacked bundle reused only after a re-check.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::bare_node::BareNode;
use support::gate_bundle::bundle_with_gate;
use support::Run;

const PASSWORD: &str = "correct-horse-battery-staple";

/// A gate that reports two passing TAP tests.
const PASSING_GATE: &str = r#"set -eu
echo "1..2"
echo "ok 1 the node answers"
echo "ok 2 iterations=$ARCHY_ITERATIONS destructive=$ARCHY_ALLOW_DESTRUCTIVE"
"#;

fn gate(bundle: &Path, workdir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bundle);
    cmd.arg("run")
        .arg("--workdir")
        .arg(workdir)
        .arg("--skip-preflight")
        .args(args)
        .env("ARCHY_PASSWORD", PASSWORD);
    cmd
}

fn record(workdir: &Path, run_id: &str) -> serde_json::Value {
    let path = workdir.join("runs").join(run_id).join("run.json");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn only_run_id(workdir: &Path) -> String {
    let mut ids: Vec<String> = fs::read_dir(workdir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids.remove(0)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_passing_gate_gets_its_environment_and_a_record() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(tmp.path(), PASSING_GATE);
    let wd = tmp.path().join("wd");
    let run = Run::of(
        gate(
            &bundle,
            &wd,
            &["--iterations", "3", "--allow-destructive", "--json"],
        )
        .output()
        .unwrap(),
    )
    .expect(0);
    let rec: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("--json prints the record");
    assert_eq!(rec["state"], "passed");
    assert_eq!(rec["exit_code"], 0);
    assert_eq!(rec["tests"]["passed"], 2);
    assert_eq!(rec["bundle"]["verified"], "payload+pin");
    assert!(
        run.stderr.contains("ok 2 iterations=3 destructive=1"),
        "gate output on stderr with --json: {}",
        run.stderr
    );
    let id = rec["run_id"].as_str().unwrap();
    let log = fs::read_to_string(wd.join("runs").join(id).join("gate.log")).unwrap();
    assert!(log.contains("ok 1 the node answers"), "{log}");
}

/// Each iteration's start and end, as the supervisor saw run-gate.sh begin
/// its `iteration-N.tap`, to a tenth of a second: what the fleet's
/// timeline shows (file times have a second's resolution and are the
/// node's to set).
#[test]
fn the_record_times_each_iteration() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(
        tmp.path(),
        r#"set -eu
for i in 1 2 3; do
  echo "1..1" > "$ARCHY_GATE_RUN_DIR/iteration-$i.tap"
  sleep 0.6
  echo "ok 1 step $i" >> "$ARCHY_GATE_RUN_DIR/iteration-$i.tap"
done
"#,
    );
    let wd = tmp.path().join("wd");
    let run = Run::of(gate(&bundle, &wd, &["--json"]).output().unwrap()).expect(0);
    let rec: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let times = rec["iteration_times"].as_array().expect("iteration times");
    assert_eq!(times.len(), 3, "{rec:#}");
    let mut last_end = 0.0;
    for (i, t) in times.iter().enumerate() {
        assert_eq!(t["n"], i as u64 + 1, "{t}");
        let (start, end) = (
            t["started_unix"].as_f64().unwrap(),
            t["ended_unix"].as_f64().unwrap(),
        );
        let took = end - start;
        // Each took 0.6 s: seen to within two looks (0.1 s each) and the
        // machine's load, never rounded to whole seconds.
        assert!(
            (0.4..1.5).contains(&took),
            "iteration {} took {took} s",
            i + 1
        );
        assert!(start >= last_end, "{times:#?}");
        last_end = end;
    }
}

#[test]
fn a_failing_gate_says_what_failed_and_where_the_log_is() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(
        tmp.path(),
        "echo 1..3; echo 'ok 1 health'; echo 'not ok 2 package lnd is running'; echo 'ok 3 bitcoin # skip no bitcoin-cli'; exit 1\n",
    );
    let wd = tmp.path().join("wd");
    let run = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(1);
    assert!(
        run.stderr
            .contains("gate failed: 1 passed, 1 failed, 1 skipped"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("failed: package lnd is running"),
        "{}",
        run.stderr
    );
    // A red gate is the command's answer, not an error of the launcher's.
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
    let id = only_run_id(&wd);
    assert!(
        run.stderr.contains(&format!(
            "full log: {}",
            wd.join("runs").join(&id).join("gate.log").display()
        )),
        "{}",
        run.stderr
    );
    let rec = record(&wd, &id);
    assert_eq!(rec["state"], "failed");
    assert_eq!(rec["tests"]["failing"][0], "package lnd is running");
}

#[test]
fn a_noexec_tmp_is_found_by_executing_and_passed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(tmp.path(), PASSING_GATE);
    let node = BareNode::new();
    node.put("/root/archy-gate", &fs::read(&bundle).unwrap(), 0o755);
    let run = node.sh_with(
        r#"mount -t tmpfs -o noexec,nosuid tmpfs "$ROOT/tmp""#,
        &[("ARCHY_PASSWORD", PASSWORD), ("HOME", "/root")],
        "/root/archy-gate run --skip-preflight && mount | grep ' /tmp '",
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("noexec"),
        "/tmp really was noexec: {}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("passed over /tmp/archy-gate: files there cannot be executed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("work dir: /var/tmp/archy-gate"),
        "{}",
        run.stderr
    );
    assert!(node.path("/var/tmp/archy-gate/runs").is_dir());
}

#[test]
fn a_detached_gate_outlives_its_callers_session_and_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("release");
    let bundle = bundle_with_gate(
        tmp.path(),
        &format!(
            // Bounded, so a failed test leaves nothing running for long.
            "echo 1..1\necho 'waiting for the test'\nfor _ in $(seq 600); do [ -e '{}' ] && break; sleep 0.1; done\necho 'ok 1 outlived the session'\n",
            marker.display()
        ),
    );
    let wd = tmp.path().join("wd");
    // The caller runs in a session of its own, as an SSH login does; the
    // whole session gets SIGHUP once `run --detach` has returned.
    let said = tmp.path().join("stderr");
    let script = format!(
        "'{}' run --workdir '{}' --skip-preflight --detach > '{}' 2> '{}' && kill -HUP 0; sleep 5",
        bundle.display(),
        wd.display(),
        tmp.path().join("id").display(),
        said.display()
    );
    let mut caller = Command::new("setsid");
    caller
        .args(["-w", "bash", "-c", &script])
        .env("ARCHY_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A login's SIGHUP is the default, whatever ours is: under `nohup` (or a
    // CI runner started so) it is inherited as ignored, and a shell that
    // ignored it at start can never be hung up.
    // SAFETY: signal() is async-signal-safe and touches only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        caller.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    let caller = caller.status().unwrap();
    assert!(
        !caller.success(),
        "the caller's session was not hung up: `run --detach` failed? ({caller}) it said:\n{}",
        fs::read_to_string(&said).unwrap_or_default()
    );
    let id = fs::read_to_string(tmp.path().join("id"))
        .unwrap()
        .trim()
        .to_string();
    assert!(!id.is_empty(), "--detach printed the run id");

    let launcher = support::launcher();
    // `status` sees it start (its supervisor may take a moment on a busy machine).
    wait_for("status to say running", Duration::from_secs(20), || {
        let status = Run::of(
            Command::new(&launcher)
                .args(["status", &id, "--workdir"])
                .arg(&wd)
                .output()
                .unwrap(),
        )
        .expect(0);
        assert!(
            !status.stdout.contains("state    lost"),
            "{}",
            status.stdout
        );
        status.stdout.contains("state    running")
    });

    // A second run while this one is active is refused, naming it.
    let second = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(5);
    assert!(
        second
            .stderr
            .contains(&format!("already running on this node: run {id}")),
        "{}",
        second.stderr
    );

    let follow = Command::new(&launcher)
        .args(["logs", "--follow", &id, "--workdir"])
        .arg(&wd)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    fs::write(&marker, "").unwrap();
    let wait = Run::of(
        Command::new(&launcher)
            .args(["wait", &id, "--workdir"])
            .arg(&wd)
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(
        wait.stderr.contains("gate passed: 1 passed"),
        "{}",
        wait.stderr
    );
    let followed = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.status.success());
    assert!(
        text.contains("waiting for the test") && text.contains("ok 1 outlived the session"),
        "{text}"
    );
    assert_eq!(record(&wd, &id)["state"], "passed");
    assert_eq!(record(&wd, &id)["detached"], true);
}

fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

#[test]
fn sigterm_ends_the_whole_gate_tree_and_records_the_interruption() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = tmp.path().join("pids");
    let bundle = bundle_with_gate(
        tmp.path(),
        &format!(
            "sleep 300 & echo $! >> '{p}'\n(sleep 300; echo never) & echo $! >> '{p}'\necho $$ >> '{p}'\nwait\n",
            p = pids.display()
        ),
    );
    let wd = tmp.path().join("wd");
    let child = gate(&bundle, &wd, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the gate's processes", Duration::from_secs(20), || {
        fs::read_to_string(&pids).is_ok_and(|t| t.lines().count() == 3)
    });
    let gate_pids: Vec<u32> = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // SAFETY: signalling the launcher we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in gate_pids {
        let state = process_state(pid);
        assert!(
            matches!(state, None | Some('Z')),
            "gate process {pid} is left behind (state {state:?})"
        );
    }
    let rec = record(&wd, &only_run_id(&wd));
    assert_eq!(rec["state"], "interrupted");
    assert!(
        rec["message"].as_str().unwrap().contains("signal 15"),
        "{rec}"
    );
}

#[test]
fn the_password_stays_out_of_argv_logs_records_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // The gate prints the password, and its child `sleep` inherits it.
    let bundle = bundle_with_gate(
        tmp.path(),
        "echo \"the gate was given: $ARCHY_PASSWORD\"\nsleep 1\necho \"error: login as admin:$ARCHY_PASSWORD failed\" >&2\nexit 1\n",
    );
    let pw_file = tmp.path().join("pw");
    fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
    for how in ["file", "stdin", "detached"] {
        let wd = tmp.path().join(format!("wd-{how}"));
        let mut cmd = Command::new(&bundle);
        cmd.arg("run")
            .arg("--workdir")
            .arg(&wd)
            .arg("--skip-preflight")
            .env_remove("ARCHY_PASSWORD");
        match how {
            "file" => {
                cmd.arg("--password-file").arg(&pw_file);
            }
            _ => {
                cmd.arg("--password-stdin");
            }
        }
        if how == "detached" {
            cmd.arg("--detach");
        }
        // Every exec under the launcher, however short-lived, as strace saw it.
        let trace = tmp.path().join(format!("execs-{how}"));
        let mut child = support::strace::traced(&cmd, &trace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if how != "file" {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(PASSWORD.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let execs = support::strace::execs(&trace);
        assert!(
            execs
                .iter()
                .any(|e| e.argv.iter().any(|a| a.ends_with("lifecycle/run-gate.sh"))),
            "{how}: strace saw the gate start: {execs:#?}"
        );
        for exec in &execs {
            assert!(
                !exec.argv.iter().any(|a| a.contains(PASSWORD)),
                "{how}: the password is in the argv of {}: {:?}",
                exec.path,
                exec.argv
            );
            // Its one way in is the gate's ARCHY_PASSWORD (gate.rs), which
            // the gate's own children inherit; never the launcher's.
            let launcher = exec.path == bundle.to_str().unwrap() || exec.path == "/proc/self/exe";
            for var in exec.env.iter().filter(|v| v.contains(PASSWORD)) {
                assert!(
                    !launcher && *var == format!("ARCHY_PASSWORD={PASSWORD}"),
                    "{how}: the password is in the environment of {}: {var}",
                    exec.path
                );
            }
        }
        let id = only_run_id(&wd);
        if how == "detached" {
            Run::of(
                Command::new(support::launcher())
                    .args(["wait", &id, "--workdir"])
                    .arg(&wd)
                    .output()
                    .unwrap(),
            )
            .expect(1);
        } else {
            assert_eq!(out.status.code(), Some(1), "{how}");
        }
        let log = fs::read_to_string(wd.join("runs").join(&id).join("gate.log")).unwrap();
        assert!(
            log.contains("the gate was given: [redacted]"),
            "{how}: the gate did get it: {log}"
        );
        for (what, text) in [
            ("gate.log", log),
            (
                "run.json",
                fs::read_to_string(wd.join("runs").join(&id).join("run.json")).unwrap(),
            ),
            ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
            ("stderr", String::from_utf8_lossy(&out.stderr).into_owned()),
        ] {
            assert!(
                !text.contains(PASSWORD),
                "{how}: the password is in {what}:\n{text}"
            );
        }
    }
}

#[test]
fn a_second_run_reuses_the_unpacked_bundle_after_a_recheck() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(tmp.path(), PASSING_GATE);
    let wd = tmp.path().join("wd");
    let first = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        first.stderr.contains("bundle: unpacked into"),
        "{}",
        first.stderr
    );
    let second = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        second.stderr.contains("its seal holds"),
        "{}",
        second.stderr
    );

    // Any change to the tree breaks its seal, and the full re-check says what.
    let dirs: Vec<PathBuf> = fs::read_dir(wd.join("b"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1);
    let entry = dirs[0].join("lifecycle/run-gate.sh");
    fs::write(&entry, "echo tampered; exit 1\n").unwrap();
    let third = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        third
            .stderr
            .contains("failed its re-check (lifecycle/run-gate.sh changed"),
        "{}",
        third.stderr
    );
    assert!(!third.stdout.contains("tampered"), "{}", third.stdout);
    assert_eq!(fs::read_to_string(&entry).unwrap(), PASSING_GATE);

    fs::write(dirs[0].join("lib/stowaway"), "x").unwrap();
    let fourth = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        fourth
            .stderr
            .contains("lib/stowaway is not part of the bundle"),
        "{}",
        fourth.stderr
    );

    // Same size, other bytes: the seal is broken, and hashing finds it.
    let same_size = PASSING_GATE.replace("node answers", "node ANSWERS");
    fs::write(&entry, &same_size).unwrap();
    let fifth = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        fifth
            .stderr
            .contains("failed its re-check (lifecycle/run-gate.sh changed content)"),
        "{}",
        fifth.stderr
    );
    // The same bytes written again: the seal is broken, the content holds.
    fs::write(&entry, PASSING_GATE).unwrap();
    let sixth = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(sixth.stderr.contains("(re-checked)"), "{}", sixth.stderr);
    let seventh = Run::of(gate(&bundle, &wd, &[]).output().unwrap()).expect(0);
    assert!(
        seventh.stderr.contains("its seal holds"),
        "{}",
        seventh.stderr
    );
}
