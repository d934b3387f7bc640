//! One node's way through a fleet run, on its one SSH connection: connect,
//! upload, preflight, start the gate detached (password on stdin), poll
//! with backoff across reconnects, fetch the run's record and reports.
//! Every step lands in the shared state, upload, preflight and each of the
//! gate's iterations timed for the timeline; a restarted run resumes a node
//! whose gate is already running instead of starting it twice. The steps
//! that start, follow and fetch a detached run serve the cross suites too.

use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::progress::Progress;
use super::roster::Node;
use super::ssh::{quote, Ssh, SshError};
use super::state::{
    NodeState, Phase, Shared, Step as TimedStep, StepKind, StepStart, UploadStats, Verdict,
};
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
    // When this fleet started the gate, on this host's clock (not known
    // for a gate an earlier fleet run started).
    let mut gate_started: Option<f64> = None;
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
            let began = StepStart::now();
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
            .map_err(|e| {
                let step = began.ended(StepKind::Upload, Verdict::Error, Some(e.clone()));
                shared.update(name, |n| n.steps.push(step));
                (Phase::Unreachable, format!("upload: {e}"))
            })?;
            let step = began.ended(
                StepKind::Upload,
                if stats.skipped {
                    Verdict::Skipped
                } else {
                    Verdict::Passed
                },
                Some(upload_detail(&stats)),
            );
            shared.update(name, |n| n.steps.push(step));
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

            let began = StepStart::now();
            let report = remote_preflight(ssh, &launcher, node, password.expose()).map_err(
                |(phase, why)| {
                    let step = began.ended(StepKind::Preflight, Verdict::Error, Some(why.clone()));
                    shared.update(name, |n| n.steps.push(step));
                    (phase, why)
                },
            )?;
            let findings: Vec<String> = report
                .failed()
                .iter()
                .map(|c| format!("{}: {}", c.id, c.reason))
                .collect();
            let checks = report.checks.len();
            let step = if findings.is_empty() {
                began.ended(
                    StepKind::Preflight,
                    Verdict::Passed,
                    Some(format!("{checks} checks passed")),
                )
            } else {
                began.ended(
                    StepKind::Preflight,
                    Verdict::Failed,
                    Some(format!("{} of {checks} checks failed", findings.len())),
                )
            };
            shared.update(name, |n| {
                n.preflight = Some(report.to_json());
                n.preflight_findings = findings.clone();
                n.steps.push(step);
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
            gate_started = Some(StepStart::now().unix());
            start_detached(ssh, &launcher, &command, &id, password.expose())?;
            progress.event(name, &format!("gate started: run {id}"));
            id
        }
    };
    shared.update(name, |n| n.phase = Phase::Running);
    let record = follow(ssh, name, &launcher, &run_id, progress, &mut |iteration| {
        shared.update(name, |n| n.iteration = iteration)
    })?;
    finish(plan, node, shared, ssh, record, gate_started)
}

/// The upload in a few words, for the timeline.
fn upload_detail(stats: &UploadStats) -> String {
    let size = crate::human::size;
    if stats.skipped {
        "already there".into()
    } else if stats.resent > 0 {
        format!("sent {}, {} re-sent", size(stats.sent), size(stats.resent))
    } else {
        format!("sent {}", size(stats.sent))
    }
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
fn finish(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    record: RunRecord,
    gate_started: Option<f64>,
) -> Step<()> {
    let local = plan.dir.join("nodes").join(&node.name);
    fetch_run(ssh, &record, &local)?;
    let iterations = iteration_steps(&local, &record, gate_started);
    let iterations_passed = (!iterations.is_empty()).then(|| {
        iterations
            .iter()
            .filter(|s| s.outcome == Verdict::Passed)
            .count() as u32
    });
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
        n.steps
            .retain(|s| !matches!(s.kind, StepKind::Iteration(_)));
        n.steps.extend(iterations);
        n.record = serde_json::to_value(&record).ok();
    });
    Ok(())
}

/// The gate's iterations, one step each, from the run dir fetched into
/// `dir`: `iteration-N.tap` says how iteration N went (passed: no failing
/// test, and at least one test), and its mtime (the node's clock, kept by
/// tar) when it ended; each began when the one before ended, the first
/// when the run did (run.json's `started_unix`). The node's clock only
/// measures lengths: the steps are placed from `gate_started`, when this
/// host started the gate, when known.
fn iteration_steps(
    dir: &Utf8Path,
    record: &RunRecord,
    gate_started: Option<f64>,
) -> Vec<TimedStep> {
    let mut taps: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|item| {
            let name = item.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("iteration-")?.strip_suffix(".tap")?;
            Some((n.parse().ok()?, item.path()))
        })
        .collect();
    taps.sort();
    let run_started = record.started_unix as f64;
    let anchor = gate_started.unwrap_or(run_started);
    let mut began = run_started;
    let mut steps = Vec::new();
    for (n, path) in taps {
        let ended = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(began, |d| d.as_secs_f64())
            .max(began);
        let counts = reports::parse_tap(&std::fs::read_to_string(&path).unwrap_or_default());
        let outcome = if counts.failed == 0 && counts.total() > 0 {
            Verdict::Passed
        } else {
            Verdict::Failed
        };
        let mut detail = format!("{} passed, {} failed", counts.passed, counts.failed);
        if counts.skipped > 0 {
            detail.push_str(&format!(", {} skipped", counts.skipped));
        }
        steps.push(TimedStep {
            kind: StepKind::Iteration(n),
            started_unix: anchor + (began - run_started),
            seconds: ended - began,
            outcome,
            detail: Some(detail),
        });
        began = ended;
    }
    steps
}
