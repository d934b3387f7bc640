//! A detached run on a node, driven from here: the one driver the gate
//! (`node.rs`) and the cross-node suites (`cross_phase.rs`) share. Start it
//! (`run --detach --json`, the password on stdin; the answer carries the
//! run's own preflight, so the fleet's preflight step is the run's), follow
//! it to its end by waiting on the node (`wait --json`, which returns the
//! moment the run ends or moves to its next iteration, and is asked again
//! after a broken link), then fetch its run dir as plain data.
//!
//! Every command here goes through `retry.rs`'s policies and `answer.rs`'s
//! caps: a node that answers too much, too slowly or not what was asked
//! ends as `misbehaving`, not in a loop.

use std::time::Instant;

use camino::Utf8Path;

use super::answer;
use super::fetch::{self, FetchError, Fetched};
use super::progress::Progress;
use super::retry::{self, FOLLOW_QUICK_ANSWER, FOLLOW_WAIT, LOST_AFTER};
use super::roster::Node;
use super::ssh::{quote, Pool, SessionOutput, Ssh, SshError};
use super::state::Phase;
use super::state::Shared;
use super::Plan;
use crate::exit::ExitStatus;
use crate::preflight;
use crate::runs::RunRecord;

/// Where a step stopped: the phase the node ends in, and why.
pub type StepResult<T> = Result<T, (Phase, String)>;

pub fn connect(ssh: &mut Ssh, name: &str, progress: &Progress) -> StepResult<()> {
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

/// Runs a command, its answer capped at `cap`, reconnecting with backoff
/// while the link is down (`retry::COMMAND`).
pub fn retry(
    ssh: &mut Ssh,
    command: &str,
    input: &[u8],
    cap: u64,
) -> Result<SessionOutput, NoAnswer> {
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

/// `launcher run --detach` as the fleet starts it on `node`: pinned to the
/// bundle, named by the fleet, the password on stdin; add what differs.
pub fn command(plan: &Plan, node: &Node, id: &str, iterations: u32) -> String {
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

/// The node's record of run `id`, if that run exists there: read under
/// `answer::JSON`, tamed (`answer::record`). A record that is not one is
/// the node's misbehaviour.
pub fn find(ssh: &mut Ssh, launcher: &str, id: &str) -> Result<Option<RunRecord>, SshError> {
    let out = ssh.run_capped(
        &format!("{launcher} status {} --json", quote(id)),
        b"",
        answer::JSON,
    )?;
    if out.code != ExitStatus::Success.code() {
        return Ok(None);
    }
    answer_for(id, &out.stdout, "status").map(Some)
}

/// A record the node sent for run `id`, parsed and tamed.
fn answer_for(id: &str, stdout: &[u8], asked: &str) -> Result<RunRecord, SshError> {
    match answer::record(stdout) {
        Ok((record, _)) if *record.run_id == *id => Ok(record),
        Ok((record, _)) => Err(SshError::Misbehaved(format!(
            "asked for run {id}, it answered with run {}",
            record.run_id
        ))),
        Err(why) => Err(SshError::Misbehaved(format!(
            "its `{asked} {id} --json` is {why}"
        ))),
    }
}

/// How a start ended on the node.
pub enum Started {
    /// The run is going; its preflight, when it ran one.
    Running(Option<preflight::Report>),
    /// Its preflight failed: nothing ran.
    NotReady(preflight::Report),
}

/// Starts run `id` with `command`, the password on its stdin, and reads the
/// run's preflight from its answer (the caller says what was started in
/// the reason of an error). A run that an earlier attempt started
/// (its answer lost with the link) is followed, never started twice:
/// whatever the node answers, if it has run `id`, it is ours.
pub fn start(
    ssh: &mut Ssh,
    launcher: &str,
    command: &str,
    id: &str,
    password: &str,
) -> StepResult<Started> {
    // A start whose answer was lost: the run's record has its preflight.
    let already = |ssh: &mut Ssh| -> StepResult<Option<Started>> {
        match find(ssh, launcher, id) {
            Ok(Some(record)) => Ok(Some(Started::Running(record.preflight))),
            Err(SshError::Misbehaved(why)) => Err((Phase::Misbehaving, why)),
            _ => Ok(None),
        }
    };
    let mut tries = retry::START.start();
    while tries.next() {
        match ssh.run_capped(command, password.as_bytes(), answer::JSON) {
            Ok(out) if out.code == ExitStatus::Success.code() => {
                return Ok(Started::Running(started_preflight(&out.stdout)?));
            }
            Err(SshError::Misbehaved(why)) => return Err((Phase::Misbehaving, why)),
            Ok(out) if out.code == ExitStatus::Preflight.code() => {
                return match started_preflight(&out.stdout)? {
                    Some(report) => Ok(Started::NotReady(report)),
                    None => Err((
                        Phase::NotReady,
                        format!("preflight failed at start: {}", last_line(&out.stderr)),
                    )),
                };
            }
            Ok(out) => {
                if let Some(started) = already(ssh)? {
                    return Ok(started);
                }
                return Err((
                    Phase::Error,
                    format!("the run did not start: {}", last_line(&out.stderr)),
                ));
            }
            Err(_) => {
                // Did it start before the link broke? Then follow it.
                tries.pause();
                if let Some(started) = already(ssh)? {
                    return Ok(started);
                }
            }
        }
    }
    Err((
        Phase::Unreachable,
        "the link kept breaking while starting the run".into(),
    ))
}

/// The `preflight` member of `run --detach --json`'s answer, tamed.
fn started_preflight(stdout: &[u8]) -> StepResult<Option<preflight::Report>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        preflight: Option<preflight::Report>,
    }
    let answer: Answer = answer::json(stdout).map_err(|why| {
        (
            Phase::Misbehaving,
            format!("its answer to `run --detach --json` is {why}"),
        )
    })?;
    Ok(answer.preflight)
}

/// Follows run `id` until it ends, riding out broken links: each session is
/// a `wait` on the node that returns when the run ends, moves past the
/// iteration last seen (told to `on_iteration`), or `retry::FOLLOW_WAIT` passes. A run
/// still going after `iterations` × `retry::RUN_PER_ITERATION` is given up
/// on: a node that answers "running" forever does not hold the fleet.
pub fn follow(
    ssh: &mut Ssh,
    name: &str,
    launcher: &str,
    id: &str,
    iterations: u32,
    progress: &Progress,
    on_iteration: &mut dyn FnMut(Option<u32>),
) -> StepResult<RunRecord> {
    let longest = retry::RUN_PER_ITERATION * iterations.max(1);
    let began = Instant::now();
    let mut unreachable_since: Option<Instant> = None;
    let mut tries = retry::COMMAND.start();
    let mut iteration = None;
    loop {
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
        let command = format!(
            "{launcher} wait {} --json --timeout {} --past-iteration {}",
            quote(id),
            FOLLOW_WAIT.as_secs(),
            iteration.unwrap_or(0)
        );
        let asked = Instant::now();
        let answered = ssh.run_capped(&command, b"", answer::JSON).and_then(|out| {
            match out.stdout.is_empty() {
                // No record at all: the node has no such run.
                true => Ok(None),
                false => answer_for(id, &out.stdout, "wait").map(Some),
            }
        });
        match answered {
            Ok(Some(record)) => {
                unreachable_since = None;
                tries.progressed();
                if record.state.is_final() {
                    return Ok(record);
                }
                if record.iteration != iteration {
                    iteration = record.iteration;
                    on_iteration(iteration);
                } else if asked.elapsed() < FOLLOW_QUICK_ANSWER {
                    // "Still running", at once and without news: not the
                    // `wait` we asked for. Don't spin on it.
                    tries.pause();
                }
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
                tries.pause();
            }
        }
    }
}

/// Copies a run's dir on the node (record, log, TAP, JUnit) into `local`,
/// made afresh, as plain data (`fetch.rs`). A link that keeps breaking
/// leaves it empty, and the report says so; a node whose run dir breaks a
/// cap misbehaves.
pub fn fetch(ssh: &mut Ssh, record: &RunRecord, local: &Utf8Path) -> StepResult<Fetched> {
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

/// A node of the roster by name (the roster was checked: it is there).
pub fn roster_node<'a>(plan: &'a Plan, name: &str) -> &'a Node {
    plan.roster.node(name).expect("a checked roster")
}

/// Opens (or reuses) `name`'s connection for `work`, then puts it back.
pub fn on_node<T>(
    plan: &Plan,
    shared: &Shared,
    pool: &Pool,
    progress: &Progress,
    name: &str,
    work: impl FnOnce(&mut Ssh) -> StepResult<T>,
) -> StepResult<T> {
    let node = roster_node(plan, name);
    let mut ssh = pool.take(node);
    let before = ssh.connections;
    let done = connect(&mut ssh, name, progress).and_then(|()| work(&mut ssh));
    let opened = ssh.connections - before;
    if opened > 0 {
        shared.update(name, |n| n.connections += opened);
    }
    pool.put(name, ssh);
    done
}

pub fn password(node: &Node) -> StepResult<crate::secret::Secret> {
    node.password
        .as_ref()
        .ok_or((Phase::Error, format!("{}: no password source", node.name)))?
        .read()
        .map_err(|e| (Phase::Error, format!("{}: password: {e}", node.name)))
}
