//! One node's gate through a fleet run, on its one SSH connection: connect,
//! upload, then the detached run (`remote_run.rs`: started with its own
//! preflight, followed, fetched), and the node settled from its record.
//! Every step lands in the shared state, upload, preflight and each of the
//! gate's iterations timed for the timeline; a restarted run resumes a node
//! whose gate is already running instead of starting it twice.

use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::answer;
use super::fetch::{self, Fetched};
use super::progress::Progress;
use super::remote_run::{self, Started, StepResult};
use super::roster::Node;
use super::ssh::{quote, Ssh, SshError};
use super::state::{
    IterationResult, NodeState, Outcome, Phase, ReadyWait, Shared, StepKind, StepStart, TimedStep,
};
use super::upload;
use super::Plan;
use crate::reports;
use crate::runs::{RunRecord, RunState};

/// How often the upload's progress is written to the state.
const UPLOAD_SAVE_EVERY: Duration = Duration::from_millis(250);

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
) -> StepResult<()> {
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
    remote_run::connect(ssh, name, progress)?;
    // Before anything there runs: the dir it runs from must be ours alone.
    super::remote_dir::make_private(ssh, &node.remote_path)?;

    let previous = shared.snapshot().node(name).clone();
    let launcher = quote(&node.remote_path);

    // A gate this fleet already started here: follow it, never start another.
    let resumed = match &previous.run_id {
        Some(id) => match remote_run::find(ssh, &launcher, id) {
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
            upload_step(plan, node, shared, ssh, progress)?;
            let (id, at) = start_step(plan, node, shared, ssh, &launcher, password.expose())?;
            gate_started = Some(at);
            progress.event(name, &format!("gate started: run {id}"));
            id
        }
    };
    shared.update(name, |n| n.phase = Phase::Running);
    let record = remote_run::follow(
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

/// Puts the bundle on the node (resumed, or skipped when it is there), timed
/// for the timeline.
fn upload_step(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    progress: &Progress,
) -> StepResult<()> {
    let name = &node.name;
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
        Some(stats.words()),
    );
    // A node checked again for readiness had its upload step already.
    shared.update(name, |n| {
        if n.ready_wait.is_none() {
            n.steps.push(step)
        }
    });
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
    Ok(())
}

/// Starts the gate detached; its own preflight is the node's preflight
/// step. The run's id, and when this host started it.
fn start_step(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    launcher: &str,
    password: &str,
) -> StepResult<(String, f64)> {
    let name = &node.name;
    // The run's own preflight is the fleet's preflight step: one
    // per node. Its time covers what `run` does first on the node
    // (verify, unpack or reuse, preflight).
    let id = format!("{}-{}", plan.fleet_id, name);
    shared.update(name, |n| n.run_id = Some(id.clone()));
    let command = remote_run::command(plan, node, &id, node.iterations);
    let began = StepStart::now();
    let started =
        remote_run::start(ssh, launcher, &command, &id, password).map_err(|(phase, why)| {
            // The start is the node's preflight step.
            let why = format!("preflight: {why}");
            let step = began.ended(StepKind::Preflight, Outcome::Error, Some(why.clone()));
            shared.update(name, |n| n.steps.push(step));
            (phase, why)
        })?;
    let (report, ready) = match started {
        Started::Running(report) => (report, true),
        Started::NotReady(report) => (Some(report), false),
    };
    let findings: Vec<String> = report
        .iter()
        .flat_map(|r| r.failed())
        .map(|c| format!("{}: {}", c.id, c.reason))
        .collect();
    let checks = report.as_ref().map_or(0, |r| r.checks.len());
    let mut step = if ready {
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
        if plan.wait_ready.is_some() {
            count_check(n, ready);
            // The wait is one preflight step on the timeline, from the
            // first check to this one, not one step per check.
            if let Some(wait) = &n.ready_wait {
                if let Some(at) = n.steps.iter().position(|s| s.kind == StepKind::Preflight) {
                    let first = n.steps.remove(at);
                    step.seconds += step.started_unix - first.started_unix;
                    step.started_unix = first.started_unix;
                }
                let detail = step.detail.take().unwrap_or_default();
                step.detail = Some(format!("{detail}; {}", wait.words()));
            }
        }
        n.preflight = report;
        n.preflight_findings = findings.clone();
        n.steps.push(step);
        if !ready {
            // Nothing ran: there is no run to resume.
            n.run_id = None;
        }
    });
    if !ready {
        return Err((Phase::NotReady, findings.join("; ")));
    }
    Ok((id, began.unix()))
}

/// Fetches the gate's run dir and settles the node.
fn finish(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    record: RunRecord,
    gate_started: Option<f64>,
) -> StepResult<()> {
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
    let fetched = remote_run::fetch(ssh, &record, &local)?;
    let (iterations, results) = iterations(&local, &fetched, &record, seen_start, seen_end);
    let iterations_passed = (!iterations.is_empty()).then(|| {
        iterations
            .iter()
            .filter(|s| s.outcome == Outcome::Passed)
            .count() as u32
    });
    let (phase, reason) = settled(&record);
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
        n.iteration_results = results;
        n.record = Some(record);
    });
    Ok(())
}

/// The node's phase, and why, from its ended run's record (also for runs
/// fetched by other means: `from_runs.rs`).
pub(super) fn settled(record: &RunRecord) -> (Phase, Option<String>) {
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
    (phase, reason)
}

/// The gate's iterations, from the run dir fetched into `dir`: each one's
/// tests from its `iteration-N.tap` (passed: no failing test, and at least
/// one test), read once here; its times from the record, where the node's
/// launcher wrote when it saw each begin and end. The node's clock only
/// measures lengths, and those are clamped: the end of the last iteration
/// is placed when this host saw the run end (`seen_end`), and no step lies
/// outside `seen_start`..`seen_end`, which this host saw.
pub(super) fn iterations(
    dir: &Utf8Path,
    fetched: &Fetched,
    record: &RunRecord,
    seen_start: f64,
    seen_end: f64,
) -> (Vec<TimedStep>, Vec<IterationResult>) {
    let mut taps: Vec<(u32, &fetch::FetchedFile)> = fetched
        .files
        .iter()
        .filter_map(|f| Some((reports::iteration_of(&f.path)?, f)))
        .filter(|(n, _)| (1..=record.iterations).contains(n))
        .collect();
    taps.sort_by_key(|(n, _)| *n);
    let node_end = record
        .iteration_times
        .iter()
        .filter_map(|t| t.ended_unix)
        .fold(f64::NAN, f64::max);
    let offset = seen_end - node_end;
    let place = |node_time: Option<f64>, earliest: f64| -> f64 {
        match node_time {
            Some(t) if offset.is_finite() => answer::clamp_time(t + offset, earliest, seen_end),
            _ => earliest,
        }
    };
    let mut earliest = seen_start;
    let mut steps = Vec::new();
    let mut results = Vec::new();
    for (n, file) in taps {
        let times = record.iteration_times.iter().find(|t| t.n == n);
        let began = place(times.map(|t| t.started_unix), earliest);
        let ended = place(times.and_then(|t| t.ended_unix), began);
        earliest = ended;
        let tests = fetch::tap_tests(&dir.join(&file.path));
        let count = |o: Outcome| tests.iter().filter(|t| t.outcome == o).count();
        let (passed, failed, skipped) = (
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Skipped),
        );
        let outcome = if failed == 0 && passed + skipped > 0 {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let mut detail = format!("{passed} passed, {failed} failed");
        if skipped > 0 {
            detail.push_str(&format!(", {skipped} skipped"));
        }
        steps.push(TimedStep {
            kind: StepKind::Iteration(n),
            started_unix: began,
            seconds: ended - began,
            outcome,
            detail: Some(detail),
        });
        results.push(IterationResult { n, outcome, tests });
    }
    (steps, results)
}

/// One more readiness check under `--wait-ready`: the first that finds the
/// node not ready starts its wait; the one that finds it ready ends it.
fn count_check(n: &mut NodeState, ready: bool) {
    let now = crate::clock::now_unix();
    match &mut n.ready_wait {
        Some(wait) if !wait.ready => {
            wait.checks += 1;
            wait.seconds = now.saturating_sub(wait.started_unix);
            wait.ready = ready;
        }
        Some(_) => {}
        None if ready => {}
        None => {
            n.ready_wait = Some(ReadyWait {
                started_unix: now,
                checks: 1,
                seconds: 0,
                ready: false,
            })
        }
    }
}

/// After a drive, under `--wait-ready`: a node found not ready waits (its
/// phase says so) and is checked again at the returned instant, until the
/// time given is up; then it stays not ready, saying how long it waited.
pub fn wait_for_ready(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    progress: &Progress,
) -> Option<Instant> {
    let wait = plan.wait_ready?;
    let snapshot = shared.snapshot();
    let n = snapshot.node(&node.name);
    if n.phase != Phase::NotReady {
        return None;
    }
    let since = n.ready_wait.as_ref()?.started_unix;
    let waited = crate::clock::now_unix().saturating_sub(since);
    let left = wait.total.as_secs().saturating_sub(waited);
    let findings = n.preflight_findings.join("; ");
    if left == 0 {
        shared.update(&node.name, |n| {
            let words = n
                .ready_wait
                .as_ref()
                .map(ReadyWait::words)
                .unwrap_or_default();
            n.reason = Some(answer::tame_str(&format!(
                "still not ready: {words}, up to {} (--wait-ready): {findings}",
                crate::clock::duration(wait.total.as_secs())
            )));
        });
        progress.event(
            &node.name,
            "not ready by the end of --wait-ready: giving up",
        );
        return None;
    }
    let next = wait.every.min(Duration::from_secs(left));
    shared.update(&node.name, |n| {
        n.phase = Phase::Waiting;
        n.reason = Some(answer::tame_str(&format!(
            "not ready, checked again every {} for up to {} ({} so far): {findings}",
            crate::clock::duration(wait.every.as_secs()),
            crate::clock::duration(wait.total.as_secs()),
            crate::clock::duration(waited)
        )));
    });
    Some(Instant::now() + next)
}
