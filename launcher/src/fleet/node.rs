//! One node's way through a fleet run, on its one SSH connection: connect,
//! upload, preflight, start the gate detached (password on stdin), poll
//! with backoff across reconnects, fetch the run's record and reports.
//! Every step lands in the shared state; a restarted run resumes a node
//! whose gate is already running instead of starting it twice. The steps
//! that start, follow and fetch a detached run serve the cross suites too.

use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::progress::Progress;
use super::roster::Node;
use super::ssh::{quote, Ssh, SshError};
use super::state::{NodeState, Phase, Shared};
use super::upload;
use super::Plan;
use crate::exit::ExitStatus;
use crate::preflight;
use crate::reports;
use crate::runs::{RunRecord, RunState};

const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(15);
/// How long a node may stay unreachable while its gate runs before we give up.
const LOST_AFTER: Duration = Duration::from_secs(30 * 60);
/// First connection: attempts before the node counts as unreachable.
const CONNECT_ATTEMPTS: u32 = 3;
/// How often the upload's progress is written to the state.
const UPLOAD_SAVE_EVERY: Duration = Duration::from_millis(250);

/// Where a step stopped: the phase the node ends in, and why.
pub type Step<T> = Result<T, (Phase, String)>;

/// Carries one node as far as it goes on `ssh`; records where it ended.
pub fn drive(plan: &Plan, node: &Node, shared: &Shared, ssh: &mut Ssh, progress: &Progress) {
    let before = ssh.connections;
    let outcome = steps(plan, node, shared, ssh, progress);
    let connections = ssh.connections - before;
    shared.update(&node.name, |n| {
        n.connections += connections;
        n.ended_unix = Some(crate::clock::now_unix());
        n.uploaded = None;
        if let Err((phase, reason)) = outcome {
            n.phase = phase;
            n.reason = Some(reason);
        }
    });
}

fn steps(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    progress: &Progress,
) -> Step<()> {
    let name = &node.name;
    let password = node
        .password
        .as_ref()
        .ok_or((Phase::Error, "no password source".to_string()))?
        .read()
        .map_err(|e| (Phase::Error, format!("password: {e}")))?;
    shared.update(name, |n| {
        n.phase = Phase::Connecting;
        n.started_unix.get_or_insert(crate::clock::now_unix());
    });
    connect(ssh, name, progress)?;
    // Before anything there runs: the dir it runs from must be ours alone.
    super::remote_dir::make_private(ssh, &node.remote_path).map_err(|why| (Phase::Error, why))?;

    let previous = shared.snapshot().node(name).clone();
    let launcher = quote(&node.remote_path);

    // A gate this fleet already started here: follow it, never start another.
    let resumed = match &previous.run_id {
        Some(id) => remote_status(ssh, &launcher, id)
            .ok()
            .flatten()
            .map(|_| id.clone()),
        None => None,
    };
    let run_id = match resumed {
        Some(id) => {
            progress.event(name, &format!("resuming run {id}"));
            id
        }
        None => {
            shared.update(name, |n| {
                n.phase = Phase::Uploading;
                n.uploaded = Some(0);
            });
            let mut saved = Instant::now();
            let mut on_progress = |done: u64, total: u64| {
                if saved.elapsed() >= UPLOAD_SAVE_EVERY || done == total {
                    saved = Instant::now();
                    shared.update(name, |n| n.uploaded = Some(done));
                }
            };
            let stats = upload::upload(
                ssh,
                &plan.bundle,
                &plan.bundle_sha256,
                &node.remote_path,
                &mut on_progress,
            )
            .map_err(|e| (Phase::Unreachable, format!("upload: {e}")))?;
            if stats.skipped {
                progress.event(name, "the node already has this bundle");
            } else if stats.resent > 0 {
                progress.event(
                    name,
                    &format!("upload resumed: {} of {} re-sent", stats.resent, stats.size),
                );
            }
            shared.update(name, |n| {
                n.upload = Some(stats);
                n.uploaded = None;
                n.phase = Phase::Preflight;
            });

            let report = remote_preflight(ssh, &launcher, node, password.expose())?;
            let findings: Vec<String> = report
                .failed()
                .iter()
                .map(|c| format!("{}: {}", c.id, c.reason))
                .collect();
            shared.update(name, |n| {
                n.preflight = Some(report.to_json());
                n.preflight_findings = findings.clone();
            });
            if !findings.is_empty() {
                return Err((Phase::NotReady, findings.join("; ")));
            }

            let id = format!("{}-{}", plan.fleet_id, name);
            shared.update(name, |n| {
                n.run_id = Some(id.clone());
                n.phase = Phase::Running;
            });
            let command = run_command(plan, node, &id, node.iterations);
            start_detached(ssh, &launcher, &command, &id, password.expose())?;
            progress.event(name, &format!("gate started: run {id}"));
            id
        }
    };
    shared.update(name, |n| n.phase = Phase::Running);
    let record = follow(ssh, name, &launcher, &run_id, progress, &mut |iteration| {
        shared.update(name, |n| n.iteration = iteration)
    })?;
    finish(plan, node, shared, ssh, record)
}

/// `launcher preflight --json` on the node, read as the report it prints.
fn remote_preflight(
    ssh: &mut Ssh,
    launcher: &str,
    node: &Node,
    password: &str,
) -> Step<preflight::Report> {
    let out = retry(
        ssh,
        &format!(
            "{launcher} preflight --json --password-stdin --host {}",
            quote(&node.host)
        ),
        password.as_bytes(),
    )
    .map_err(|e| (Phase::Unreachable, format!("preflight: {e}")))?;
    serde_json::from_slice(&out.stdout).map_err(|_| {
        (
            Phase::Error,
            format!("preflight printed no report: {}", last_line(&out.stderr)),
        )
    })
}

pub fn connect(ssh: &mut Ssh, name: &str, progress: &Progress) -> Step<()> {
    let mut last = String::new();
    for attempt in 0..CONNECT_ATTEMPTS {
        match ssh.connect() {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = e.to_string();
                if attempt + 1 < CONNECT_ATTEMPTS {
                    progress.event(name, &format!("cannot connect ({last}); trying again"));
                    thread::sleep(Duration::from_secs(1 << attempt));
                }
            }
        }
    }
    Err((
        Phase::Unreachable,
        format!("unreachable after {CONNECT_ATTEMPTS} attempts: {last}"),
    ))
}

/// Runs a command, reconnecting with backoff while the link is down.
pub fn retry(ssh: &mut Ssh, command: &str, input: &[u8]) -> Result<super::ssh::Output, String> {
    let mut backoff = Duration::from_secs(1);
    let mut last = String::new();
    for _ in 0..6 {
        match ssh.run(command, input) {
            Ok(out) => return Ok(out),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(POLL_MAX);
    }
    Err(last)
}

/// The node's record of run `id`, if that run exists there.
pub fn remote_status(
    ssh: &mut Ssh,
    launcher: &str,
    id: &str,
) -> Result<Option<RunRecord>, SshError> {
    let out = ssh.run(&format!("{launcher} status {} --json", quote(id)), b"")?;
    Ok((out.code == ExitStatus::Success.code())
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten())
}

/// `launcher run --detach` as the fleet starts it on `node`: pinned to the
/// bundle, named by the fleet, the password on stdin; add what differs.
pub fn run_command(plan: &Plan, node: &Node, id: &str, iterations: u32) -> String {
    let mut command = format!(
        "{} run --detach --json --password-stdin --sha256 {} --run-id {} --iterations {} --host {}",
        quote(&node.remote_path),
        plan.bundle_sha256,
        quote(id),
        iterations,
        quote(&node.host)
    );
    if node.allow_destructive {
        command.push_str(" --allow-destructive");
    }
    if let Some(key) = &plan.roster.trust {
        command.push_str(&format!(" --trust {}", quote(&key.to_base64())));
    }
    command
}

/// Starts run `id` with `command`, the password on its stdin. A run that
/// an earlier attempt started (its answer lost with the link) is followed,
/// never started twice: whatever the node answers, if it has run `id`, it
/// is ours.
pub fn start_detached(
    ssh: &mut Ssh,
    launcher: &str,
    command: &str,
    id: &str,
    password: &str,
) -> Step<()> {
    let mut backoff = Duration::from_secs(1);
    for _ in 0..6 {
        match ssh.run(command, password.as_bytes()) {
            Ok(out) if out.code == ExitStatus::Success.code() => return Ok(()),
            Ok(out) => {
                if let Ok(Some(_)) = remote_status(ssh, launcher, id) {
                    return Ok(());
                }
                let why = last_line(&out.stderr);
                return Err(if out.code == ExitStatus::Preflight.code() {
                    (Phase::NotReady, format!("preflight failed at start: {why}"))
                } else {
                    (Phase::Error, format!("the run did not start: {why}"))
                });
            }
            Err(_) => {
                // Did it start before the link broke? Then follow it.
                thread::sleep(backoff);
                backoff = (backoff * 2).min(POLL_MAX);
                if let Ok(Some(_)) = remote_status(ssh, launcher, id) {
                    return Ok(());
                }
            }
        }
    }
    Err((
        Phase::Unreachable,
        "the link kept breaking while starting the run".into(),
    ))
}

/// The line of a remote command's stderr that says what went wrong.
pub fn last_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.starts_with("error:"))
        .or(lines.last())
        .unwrap_or(&"")
        .to_string()
}

/// Polls run `id` until it ends, riding out broken links; tells
/// `on_iteration` which iteration it is in as that changes.
pub fn follow(
    ssh: &mut Ssh,
    name: &str,
    launcher: &str,
    id: &str,
    progress: &Progress,
    on_iteration: &mut dyn FnMut(Option<u32>),
) -> Step<RunRecord> {
    let mut wait = POLL_FIRST;
    let mut unreachable_since: Option<Instant> = None;
    let mut iteration = None;
    loop {
        thread::sleep(wait);
        match remote_status(ssh, launcher, id) {
            Ok(Some(record)) => {
                unreachable_since = None;
                if record.state.is_final() {
                    return Ok(record);
                }
                if record.iteration != iteration {
                    iteration = record.iteration;
                    on_iteration(iteration);
                }
                wait = (wait * 2).min(POLL_MAX);
            }
            Ok(None) => return Err((Phase::Error, format!("the node has no run {id}"))),
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > LOST_AFTER {
                    return Err((
                        Phase::Unreachable,
                        format!("lost the node while its run went on: {e}"),
                    ));
                }
                progress.event(name, "link down; reconnecting");
                wait = (wait * 2).min(POLL_MAX);
            }
        }
    }
}

/// Copies a run's dir on the node (record, log, TAP, JUnit) into `local`,
/// which is emptied first.
pub fn fetch_run(ssh: &mut Ssh, record: &RunRecord, local: &Utf8Path) -> Step<()> {
    let _ = std::fs::remove_dir_all(local);
    std::fs::create_dir_all(local).map_err(|e| (Phase::Error, format!("{local}: {e}")))?;
    let command = format!("cd {} && tar cf - .", quote(record.run_dir().as_str()));
    if let Ok(out) = retry(ssh, &command, b"") {
        if out.code == ExitStatus::Success.code() {
            let mut archive = tar::Archive::new(out.stdout.as_slice());
            let _ = archive.unpack(local);
        }
    }
    Ok(())
}

/// Fetches the gate's run dir and settles the node.
fn finish(plan: &Plan, node: &Node, shared: &Shared, ssh: &mut Ssh, record: RunRecord) -> Step<()> {
    let local = plan.dir.join("nodes").join(&node.name);
    fetch_run(ssh, &record, &local)?;
    let iterations_passed = iterations_passed(&local);
    let phase = match record.state {
        RunState::Passed => Phase::Passed,
        RunState::Failed => Phase::Failed,
        RunState::Interrupted => Phase::Interrupted,
        _ => Phase::Error,
    };
    let reason = match (&record.tests, phase) {
        (Some(t), Phase::Failed) if !t.failing.is_empty() => {
            Some(format!("failed: {}", t.failing.join("; ")))
        }
        (_, Phase::Error) => Some(format!(
            "the run ended {}: {}",
            record.state,
            record.message.as_deref().unwrap_or("")
        )),
        _ => None,
    };
    shared.update(&node.name, |n: &mut NodeState| {
        n.phase = phase;
        n.reason = reason;
        n.remote_run_dir = Some(record.run_dir().to_string());
        n.iterations_passed = iterations_passed;
        n.iteration = None;
        n.tests = record.tests.clone();
        n.verified_by = record.bundle.signed_by.clone();
        n.record = serde_json::to_value(&record).ok();
    });
    Ok(())
}

/// Iterations whose TAP has no failing test (`iteration-N.tap`).
fn iterations_passed(dir: &Utf8Path) -> Option<u32> {
    let mut seen = 0;
    let mut passed = 0;
    for item in std::fs::read_dir(dir).ok()?.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with("iteration-") && name.ends_with(".tap") {
            seen += 1;
            let text = std::fs::read_to_string(item.path()).unwrap_or_default();
            let counts = reports::parse_tap(&text);
            if counts.failed == 0 && counts.total() > 0 {
                passed += 1;
            }
        }
    }
    (seen > 0).then_some(passed)
}
