//! One node's way through a fleet run, on its one SSH connection: connect,
//! upload, preflight, start the gate detached (password on stdin), poll
//! with backoff across reconnects, fetch the run's record and reports.
//! Every step lands in the shared state, upload, preflight and each of the
//! gate's iterations timed for the timeline; a restarted run resumes a node
//! whose gate is already running instead of starting it twice.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::roster::Node;
use super::ssh::{quote, Ssh, SshError};
use super::state::{NodeState, Phase, Shared, Step as TimedStep, StepKind, StepStart, Verdict};
use super::upload;
use super::Plan;
use crate::reports;

const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(15);
/// How long a node may stay unreachable while its gate runs before we give up.
const LOST_AFTER: Duration = Duration::from_secs(30 * 60);
/// First connection: attempts before the node counts as unreachable.
const CONNECT_ATTEMPTS: u32 = 3;

fn say(node: &str, message: &str) {
    eprintln!("[{node}] {message}");
}

/// Carries one node as far as it goes; records where it ended.
pub fn drive(plan: &Plan, node: &Node, shared: &Shared, control_dir: &std::path::Path) {
    let name = node.name.clone();
    let mut ssh = Ssh::new(
        &node.ssh,
        &node.ssh_options,
        plan.roster.ssh_config.as_deref(),
        control_dir,
        &name,
    );
    let outcome = steps(plan, node, shared, &mut ssh);
    let connections = ssh.connections;
    ssh.close();
    shared.update(&name, |n| {
        n.connections += connections;
        n.ended_unix = Some(crate::clock::now_unix());
        if let Err((phase, reason)) = outcome {
            n.phase = phase;
            n.reason = Some(reason);
        }
    });
    let state = shared.snapshot();
    let n = state.node(&name);
    say(
        &name,
        &format!(
            "{}{}",
            n.phase.word(),
            n.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
    );
}

type Step<T> = Result<T, (Phase, String)>;

fn steps(plan: &Plan, node: &Node, shared: &Shared, ssh: &mut Ssh) -> Step<()> {
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
    connect(ssh, name)?;
    // Before anything there runs: the dir it runs from must be ours alone.
    super::remote_dir::make_private(ssh, &node.remote_path).map_err(|why| (Phase::Error, why))?;

    let previous = shared.snapshot().node(name).clone();
    let remote = node.remote_path.clone();
    let launcher = quote(&remote);

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
            say(name, &format!("resuming run {id}"));
            id
        }
        None => {
            shared.update(name, |n| n.phase = Phase::Uploading);
            let began = StepStart::now();
            let mut last_shown = 0u64;
            let mut progress = |done: u64, total: u64| {
                let step = total / 4;
                if step > 0 && (done >= last_shown + step || done == total) {
                    last_shown = done;
                    say(
                        name,
                        &format!(
                            "uploading {} of {}",
                            crate::human::size(done),
                            crate::human::size(total)
                        ),
                    );
                }
            };
            let stats = upload::upload(
                ssh,
                &plan.bundle,
                &plan.bundle_sha256,
                &remote,
                &mut progress,
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
                say(name, "the node already has this bundle");
            } else if stats.resent > 0 {
                say(
                    name,
                    &format!("upload resumed: {} of {} re-sent", stats.resent, stats.size),
                );
            }
            shared.update(name, |n| {
                n.upload = Some(stats);
                n.phase = Phase::Preflight;
            });

            let began = StepStart::now();
            let preflight_error = |why: String| {
                let step = began.ended(StepKind::Preflight, Verdict::Error, Some(why));
                shared.update(name, |n| n.steps.push(step));
            };
            let pre = retry(
                ssh,
                &format!(
                    "{launcher} preflight --json --password-stdin --host {}",
                    quote(&node.host)
                ),
                password.expose().as_bytes(),
            )
            .map_err(|e| {
                preflight_error(e.clone());
                (Phase::Unreachable, format!("preflight: {e}"))
            })?;
            let report: Value = serde_json::from_slice(&pre.stdout).map_err(|_| {
                let why = format!("preflight printed no JSON: {}", pre.stderr.trim());
                preflight_error(why.clone());
                (Phase::Error, why)
            })?;
            let findings: Vec<String> = report["checks"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|c| c["verdict"] == "fail")
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["id"].as_str().unwrap_or("?"),
                        c["reason"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let checks = report["checks"].as_array().map_or(0, Vec::len);
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
                n.preflight = Some(report.clone());
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
            gate_started = Some(StepStart::now().unix());
            start(plan, ssh, node, &launcher, &id, password.expose())?;
            say(name, &format!("gate started: run {id}"));
            id
        }
    };
    shared.update(name, |n| n.phase = Phase::Running);
    let record = poll(ssh, name, &launcher, &run_id)?;
    finish(plan, node, shared, ssh, &run_id, record, gate_started)
}

/// The upload in a few words, for the timeline.
fn upload_detail(stats: &super::state::UploadStats) -> String {
    let size = crate::human::size;
    if stats.skipped {
        "already there".into()
    } else if stats.resent > 0 {
        format!("sent {}, {} re-sent", size(stats.sent), size(stats.resent))
    } else {
        format!("sent {}", size(stats.sent))
    }
}

fn connect(ssh: &mut Ssh, name: &str) -> Step<()> {
    let mut last = String::new();
    for attempt in 0..CONNECT_ATTEMPTS {
        match ssh.connect() {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = e.to_string();
                if attempt + 1 < CONNECT_ATTEMPTS {
                    say(name, &format!("cannot connect ({last}); trying again"));
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
fn retry(ssh: &mut Ssh, command: &str, input: &[u8]) -> Result<super::ssh::Output, String> {
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
fn remote_status(ssh: &mut Ssh, launcher: &str, id: &str) -> Result<Option<Value>, SshError> {
    let out = ssh.run(&format!("{launcher} status {} --json", quote(id)), b"")?;
    Ok((out.code == 0)
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten())
}

fn start(
    plan: &Plan,
    ssh: &mut Ssh,
    node: &Node,
    launcher: &str,
    id: &str,
    password: &str,
) -> Step<()> {
    let mut command = format!(
        "{launcher} run --detach --json --password-stdin --sha256 {} --run-id {} --iterations {} --host {}",
        plan.bundle_sha256,
        quote(id),
        node.iterations,
        quote(&node.host)
    );
    if node.allow_destructive {
        command.push_str(" --allow-destructive");
    }
    if let Some(key) = &plan.roster.trust {
        command.push_str(&format!(" --trust {}", quote(&key.to_base64())));
    }
    let mut backoff = Duration::from_secs(1);
    for _ in 0..6 {
        match ssh.run(&command, password.as_bytes()) {
            Ok(out) if out.code == 0 => return Ok(()),
            // Ours, started by an earlier attempt whose answer was lost.
            Ok(out) if out.code == 5 && out.stderr.contains(&format!("run {id} holds")) => {
                return Ok(())
            }
            Ok(out) if out.code == 4 => {
                return Err((
                    Phase::NotReady,
                    format!("preflight failed at start: {}", last_line(&out.stderr)),
                ))
            }
            Ok(out) => {
                return Err((
                    Phase::Error,
                    format!("the gate did not start: {}", last_line(&out.stderr)),
                ))
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
        "the link kept breaking while starting the gate".into(),
    ))
}

/// The line of a remote command's stderr that says what went wrong.
fn last_line(text: &str) -> String {
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

/// Polls the run until it ends, riding out broken links.
fn poll(ssh: &mut Ssh, name: &str, launcher: &str, id: &str) -> Step<Value> {
    let mut wait = POLL_FIRST;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        thread::sleep(wait);
        match remote_status(ssh, launcher, id) {
            Ok(Some(record)) => {
                unreachable_since = None;
                let state = record["state"].as_str().unwrap_or("").to_string();
                if !["starting", "running"].contains(&state.as_str()) {
                    return Ok(record);
                }
                wait = (wait * 2).min(POLL_MAX);
            }
            Ok(None) => return Err((Phase::Error, format!("the node has no run {id}"))),
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > LOST_AFTER {
                    return Err((
                        Phase::Unreachable,
                        format!("lost the node while its gate ran: {e}"),
                    ));
                }
                say(name, "link down; reconnecting");
                wait = (wait * 2).min(POLL_MAX);
            }
        }
    }
}

/// Fetches the run dir (record, log, TAP, JUnit) and settles the node.
fn finish(
    plan: &Plan,
    node: &Node,
    shared: &Shared,
    ssh: &mut Ssh,
    id: &str,
    record: Value,
    gate_started: Option<f64>,
) -> Step<()> {
    let workdir = record["workdir"].as_str().unwrap_or("").to_string();
    let run_dir = format!("{workdir}/runs/{id}");
    let local = plan.dir.join("nodes").join(&node.name);
    let _ = std::fs::remove_dir_all(&local);
    std::fs::create_dir_all(&local).map_err(|e| (Phase::Error, e.to_string()))?;
    if let Ok(out) = retry(ssh, &format!("cd {} && tar cf - .", quote(&run_dir)), b"") {
        if out.code == 0 {
            let mut archive = tar::Archive::new(out.stdout.as_slice());
            let _ = archive.unpack(&local);
        }
    }
    let iterations = iteration_steps(&local, &record, gate_started);
    let iterations_passed = (!iterations.is_empty()).then(|| {
        iterations
            .iter()
            .filter(|s| s.outcome == Verdict::Passed)
            .count() as u32
    });
    let state = record["state"].as_str().unwrap_or("").to_string();
    let tests: Option<reports::TestCounts> = serde_json::from_value(record["tests"].clone()).ok();
    let phase = match state.as_str() {
        "passed" => Phase::Passed,
        "failed" => Phase::Failed,
        "interrupted" => Phase::Interrupted,
        _ => Phase::Error,
    };
    let reason = match (&tests, phase) {
        (Some(t), Phase::Failed) if !t.failing.is_empty() => {
            Some(format!("failed: {}", t.failing.join("; ")))
        }
        (_, Phase::Error) => Some(format!(
            "the run ended {state}: {}",
            record["message"].as_str().unwrap_or("")
        )),
        _ => None,
    };
    shared.update(&node.name, |n: &mut NodeState| {
        n.phase = phase;
        n.reason = reason;
        n.remote_run_dir = Some(run_dir.clone());
        n.iterations_passed = iterations_passed;
        n.tests = tests;
        n.verified_by = record["bundle"]["signed_by"].as_str().map(str::to_string);
        n.steps
            .retain(|s| !matches!(s.kind, StepKind::Iteration(_)));
        n.steps.extend(iterations);
        n.record = Some(record);
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
    dir: &camino::Utf8Path,
    record: &Value,
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
    let run_started = record["started_unix"].as_f64().unwrap_or(0.0);
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
