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

use super::answer;
use super::fetch::{self, FetchError, Fetched};
use super::progress::Progress;
use super::retry::{self, LOST_AFTER, POLL_FIRST, POLL_MAX};
use super::roster::Node;
use super::ssh::{quote, Ssh, SshError};
use super::state::{
    NodeState, Outcome, Phase, Shared, Step as TimedStep, StepKind, StepStart, UploadStats,
};
use super::upload;
use super::Plan;
use crate::exit::ExitStatus;
use crate::preflight;
use crate::reports;
use crate::runs::{RunRecord, RunState};

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
            // It may quote what the node said: escaped and shortened.
            n.reason = Some(answer::tame_str(&reason));
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
    super::remote_dir::make_private(ssh, &node.remote_path)?;

    let previous = shared.snapshot().node(name).clone();
    let launcher = quote(&node.remote_path);

    // A gate this fleet already started here: follow it, never start another.
    let resumed = match &previous.run_id {
        Some(id) => match remote_status(ssh, &launcher, id) {
            Ok(found) => found.map(|_| id.clone()),
            Err(SshError::Misbehaved(why)) => return Err((Phase::Misbehaving, why)),
            Err(_) => None,
        },
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
                let step = began.ended(StepKind::Upload, Outcome::Error, Some(e.clone()));
                shared.update(name, |n| n.steps.push(step));
                (Phase::Unreachable, format!("upload: {e}"))
            })?;
            let step = began.ended(
                StepKind::Upload,
                if stats.skipped {
                    Outcome::Skipped
                } else {
                    Outcome::Passed
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
                    let step = began.ended(StepKind::Preflight, Outcome::Error, Some(why.clone()));
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
                    Outcome::Passed,
                    Some(format!("{checks} checks passed")),
                )
            } else {
                began.ended(
                    StepKind::Preflight,
                    Outcome::Failed,
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
    let record = follow(
        ssh,
        name,
        &launcher,
        &run_id,
        node.iterations,
        progress,
        &mut |iteration| shared.update(name, |n| n.iteration = iteration),
    )?;
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
        answer::JSON,
    )
    .map_err(|e| e.step("preflight"))?;
    answer::preflight(&out.stdout).map_err(|why| {
        (
            Phase::Error,
            format!(
                "preflight printed no report ({why}): {}",
                last_line(&out.stderr)
            ),
        )
    })
}

pub fn connect(ssh: &mut Ssh, name: &str, progress: &Progress) -> Step<()> {
    let mut last = String::new();
    let mut tries = retry::CONNECT.start();
    while tries.next() {
        match ssh.connect() {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = e.to_string();
                if tries.left() {
                    progress.event(name, &format!("cannot connect ({last}); trying again"));
                    tries.pause();
                }
            }
        }
    }
    Err((
        Phase::Unreachable,
        format!("unreachable after {} attempts: {last}", tries.made()),
    ))
}

/// Why a command got no answer: the link kept breaking, or the node's
/// answer broke a bound (then trying again changes nothing).
pub enum NoAnswer {
    Link(String),
    Misbehaved(String),
}

impl NoAnswer {
    /// The step's end, for `what` ("preflight").
    pub fn step(self, what: &str) -> (Phase, String) {
        match self {
            NoAnswer::Link(why) => (Phase::Unreachable, format!("{what}: {why}")),
            NoAnswer::Misbehaved(why) => (Phase::Misbehaving, format!("{what}: {why}")),
        }
    }
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::Link(why) | NoAnswer::Misbehaved(why) => f.write_str(why),
        }
    }
}

/// Runs a command, its answer capped at `cap`, reconnecting with backoff
/// while the link is down (`retry::COMMAND`).
pub fn retry(
    ssh: &mut Ssh,
    command: &str,
    input: &[u8],
    cap: u64,
) -> Result<super::ssh::Output, NoAnswer> {
    let mut tries = retry::COMMAND.start();
    let mut last = String::new();
    while tries.next() {
        match ssh.run_capped(command, input, cap) {
            Ok(out) => return Ok(out),
            Err(SshError::Misbehaved(why)) => return Err(NoAnswer::Misbehaved(why)),
            Err(e) => last = e.to_string(),
        }
        if tries.left() {
            tries.pause();
        }
    }
    Err(NoAnswer::Link(last))
}

/// The node's record of run `id`, if that run exists there: read under
/// `answer::JSON`, tamed (`answer::record`). A record that is not one is
/// the node's misbehaviour.
pub fn remote_status(
    ssh: &mut Ssh,
    launcher: &str,
    id: &str,
) -> Result<Option<RunRecord>, SshError> {
    let out = ssh.run_capped(
        &format!("{launcher} status {} --json", quote(id)),
        b"",
        answer::JSON,
    )?;
    if out.code != ExitStatus::Success.code() {
        return Ok(None);
    }
    match answer::record(&out.stdout) {
        Ok((record, _)) if *record.run_id == *id => Ok(Some(record)),
        Ok((record, _)) => Err(SshError::Misbehaved(format!(
            "asked for run {id}, it answered with run {}",
            record.run_id
        ))),
        Err(why) => Err(SshError::Misbehaved(format!(
            "its `status {id} --json` is {why}"
        ))),
    }
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
    let mut tries = retry::START.start();
    while tries.next() {
        match ssh.run(command, password.as_bytes()) {
            Ok(out) if out.code == ExitStatus::Success.code() => return Ok(()),
            Err(SshError::Misbehaved(why)) => {
                return Err((Phase::Misbehaving, format!("starting the run: {why}")))
            }
            Ok(out) => {
                match remote_status(ssh, launcher, id) {
                    Ok(Some(_)) => return Ok(()),
                    Err(SshError::Misbehaved(why)) => return Err((Phase::Misbehaving, why)),
                    _ => {}
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
                tries.pause();
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
/// `on_iteration` which iteration it is in as that changes. A run still
/// going after `iterations` × `retry::RUN_PER_ITERATION` is given up on:
/// a node that answers "running" forever does not hold the fleet.
pub fn follow(
    ssh: &mut Ssh,
    name: &str,
    launcher: &str,
    id: &str,
    iterations: u32,
    progress: &Progress,
    on_iteration: &mut dyn FnMut(Option<u32>),
) -> Step<RunRecord> {
    let longest = retry::RUN_PER_ITERATION * iterations.max(1);
    let began = Instant::now();
    let mut wait = POLL_FIRST;
    let mut unreachable_since: Option<Instant> = None;
    let mut iteration = None;
    loop {
        thread::sleep(wait);
        if began.elapsed() > longest {
            return Err((
                Phase::Error,
                format!(
                    "run {id} still had not ended after {} ({} per iteration): no longer followed",
                    crate::clock::duration(longest.as_secs()),
                    crate::clock::duration(retry::RUN_PER_ITERATION.as_secs())
                ),
            ));
        }
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
            Err(SshError::Misbehaved(why)) => return Err((Phase::Misbehaving, why)),
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
/// made afresh, as plain data (`fetch.rs`). A link that keeps breaking
/// leaves it empty, and the report says so; a node whose run dir breaks a
/// cap misbehaves.
pub fn fetch_run(ssh: &mut Ssh, record: &RunRecord, local: &Utf8Path) -> Step<Fetched> {
    match fetch::run_dir(ssh, record.run_dir().as_str(), local) {
        Ok(fetched) => Ok(fetched),
        Err(FetchError::Link(why)) => Ok(Fetched {
            incomplete: Some(format!("the run dir could not be fetched: {why}")),
            ..Fetched::default()
        }),
        Err(FetchError::Misbehaved(why)) => Err((Phase::Misbehaving, why)),
        Err(FetchError::Local(why)) => Err((Phase::Error, why)),
    }
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
    // What this host saw: when the gate was started (or, for a gate an
    // earlier fleet run started, when this node's turn began) and when it
    // was seen to end. The node's times are placed inside, never outside.
    let seen_end = StepStart::now().unix();
    let seen_start = gate_started
        .or_else(|| {
            shared
                .snapshot()
                .node(&node.name)
                .started_unix
                .map(|s| s as f64)
        })
        .unwrap_or(seen_end);
    let local = plan.dir.join("nodes").join(&node.name);
    let fetched = fetch_run(ssh, &record, &local)?;
    let iterations = iteration_steps(&local, &fetched, &record, seen_start, seen_end);
    let iterations_passed = (!iterations.is_empty()).then(|| {
        iterations
            .iter()
            .filter(|s| s.outcome == Outcome::Passed)
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
    // Only what this host verified: the roster's key, which the bundle was
    // checked against here before upload and which the node was told to
    // require (`run --trust`). The node's own word on its signer is not
    // repeated as ours.
    let verified_by = plan.roster.trust.as_ref().map(|key| key.id());
    shared.update(&node.name, |n: &mut NodeState| {
        n.phase = phase;
        n.reason = reason.map(|r| answer::tame_str(&r));
        n.remote_run_dir = Some(answer::tame_str(record.run_dir().as_str()));
        n.iterations_passed = iterations_passed;
        n.iteration = None;
        n.tests = record.tests.clone();
        n.verified_by = verified_by;
        n.fetch_refused = fetched.refused.clone();
        n.fetch_incomplete = fetched.incomplete.clone();
        n.steps
            .retain(|s| !matches!(s.kind, StepKind::Iteration(_)));
        n.steps.extend(iterations);
        n.record = serde_json::to_value(&record).ok();
    });
    Ok(())
}

/// The gate's iterations, one step each, from the run dir fetched into
/// `dir`: `iteration-N.tap` says how iteration N went (passed: no failing
/// test, and at least one test), and its time on the node (a claim, from
/// the tar stream) when it ended; each began when the one before ended,
/// the first when the run did (run.json's `started_unix`, the node's clock
/// again). The node's clock only measures lengths, and those are clamped:
/// the steps lie between `seen_start` and `seen_end`, which this host saw.
fn iteration_steps(
    dir: &Utf8Path,
    fetched: &Fetched,
    record: &RunRecord,
    seen_start: f64,
    seen_end: f64,
) -> Vec<TimedStep> {
    let mut taps: Vec<(u32, &fetch::FetchedFile)> = fetched
        .files
        .iter()
        .filter_map(|f| {
            let n = f.path.strip_prefix("iteration-")?.strip_suffix(".tap")?;
            Some((n.parse().ok()?, f))
        })
        .filter(|(n, _)| (1..=record.iterations).contains(n))
        .collect();
    taps.sort_by_key(|(n, _)| *n);
    let run_started = record.started_unix as f64;
    let span = (seen_end - seen_start).max(0.0);
    let mut began = 0.0;
    let mut steps = Vec::new();
    for (n, file) in taps {
        let ended = answer::clamp_time(file.node_mtime as f64 - run_started, began, span);
        let text = fetch::read_text(&dir.join(&file.path), answer::RUN_DIR_BYTES);
        let counts = reports::parse_tap(&text);
        let outcome = if counts.failed == 0 && counts.total() > 0 {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let mut detail = format!("{} passed, {} failed", counts.passed, counts.failed);
        if counts.skipped > 0 {
            detail.push_str(&format!(", {} skipped", counts.skipped));
        }
        steps.push(TimedStep {
            kind: StepKind::Iteration(n),
            started_unix: seen_start + began,
            seconds: ended - began,
            outcome,
            detail: Some(detail),
        });
        began = ended;
    }
    steps
}
