//! `fleet report --from-runs DIR --out FLEETDIR`: the fleet's state built
//! from run dirs fetched by other means (the `archy.gate` Ansible
//! collection), so that a playbook's runs get the same report.md/json,
//! junit.xml and report.html as `fleet run`'s.
//!
//! `DIR/NODE/` holds what came from node NODE (its run dir, or the
//! `start.json` answer of a run that was not ready): node data, read by
//! the rule every node's answer is read by. Each dir is walked without
//! following anything into a tar stream, which `fetch.rs` unpacks into
//! `FLEETDIR/nodes/NODE/` exactly as it does a node's (plain names, regular
//! files and dirs, under the caps); the record is parsed and tamed by
//! `answer.rs`; the node's times are clamped to what the controller saw.
//! `DIR/NODE.json` beside it is the controller's own word (the node's role,
//! ssh destination, the bundle it uploaded, when it started and saw the run
//! end), written by the collection's action plugin, never by the node.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use super::answer;
use super::fetch::{self, FetchError, Fetched};
use super::node;
use super::roster::{check_node_name, Role};
use super::state::{FleetState, NodeState, Phase};
use crate::exit::{fail, ExitStatus};
use crate::private_fs::Create;

/// The controller's facts about one node's run (`DIR/NODE.json`).
#[derive(Debug, Default, Deserialize)]
struct Controller {
    role: Option<Role>,
    ssh: Option<String>,
    bundle: Option<String>,
    bundle_sha256: Option<String>,
    bundle_size: Option<u64>,
    /// When the controller started the run, and when it saw it end.
    started_unix: Option<f64>,
    ended_unix: Option<f64>,
    iterations: Option<u32>,
}

/// The state, with each node's run fetched into `out/nodes/NODE/`.
pub fn build(
    runs: &Utf8Path,
    out: &Utf8Path,
    bundle: Option<&Utf8Path>,
) -> anyhow::Result<FleetState> {
    let usage = |msg: String| fail(ExitStatus::Usage, msg);
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(runs).map_err(|e| usage(format!("--from-runs {runs}: {e}")))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        check_node_name(&name).map_err(|why| {
            usage(format!(
                "--from-runs {runs}: {:?} is no node's dir: a node name must {why}",
                crate::printable::printable(&name)
            ))
        })?;
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        return Err(usage(format!(
            "--from-runs {runs}: no node dirs (DIR/NODE/, as the archy.gate collection fetches them)"
        )));
    }
    let fleet_dir = super::private_dir(out, Create::Yes)?;
    fleet_dir
        .ensure_dir("nodes")
        .map_err(|e| fail(ExitStatus::Environment, e.to_string()))?;
    let now = crate::clock::now_unix();
    let mut nodes = Vec::new();
    let mut facts = Vec::new();
    for name in &names {
        let controller = controller(&runs.join(format!("{name}.json")))?;
        let local = out.join("nodes").join(name);
        let fetched = fetch_local(&runs.join(name), &local);
        nodes.push(node_state(name, &controller, &local, fetched, now as f64));
        facts.push(controller);
    }
    let (bundle_path, sha, size) = match bundle {
        Some(path) => {
            let opened = crate::bundle::Bundle::open(path)?;
            let sha = crate::digest::to_hex(&opened.check_digests(None)?.whole_sha256);
            (path.to_owned(), sha, opened.len)
        }
        None => {
            let first = facts.iter().find(|f| f.bundle_sha256.is_some());
            (
                Utf8PathBuf::from(
                    first
                        .and_then(|f| f.bundle.clone())
                        .unwrap_or_else(|| "(not named: give --bundle)".into()),
                ),
                first
                    .and_then(|f| f.bundle_sha256.clone())
                    .unwrap_or_default(),
                first.and_then(|f| f.bundle_size).unwrap_or(0),
            )
        }
    };
    let started = nodes
        .iter()
        .filter_map(|n| n.started_unix)
        .min()
        .unwrap_or(now);
    let mut state = FleetState {
        roster: runs.to_owned(),
        bundle: bundle_path,
        bundle_sha256: sha,
        bundle_size: size,
        started: crate::clock::rfc3339(started),
        updated: crate::clock::rfc3339(now),
        nodes,
        cross: Vec::new(),
    };
    state.save(out)?;
    Ok(state)
}

/// The controller's file: ours, so an unreadable one is an error, and a
/// missing one leaves the node's role and times unknown.
fn controller(path: &Utf8Path) -> anyhow::Result<Controller> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{path}: not the archy.gate collection's node facts")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Controller::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
    }
}

/// `dir` walked without following anything, as a tar stream: regular
/// files (read under the run dir's cap), dirs, and every other kind as an
/// entry of its kind, which `fetch.rs` then names and refuses.
fn tar_of(dir: &Utf8Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut budget = answer::RUN_DIR_BYTES + 1;
    let mut entries = 0usize;
    walk(&mut builder, dir, "", 0, &mut budget, &mut entries)?;
    builder.into_inner()
}

fn walk(
    builder: &mut tar::Builder<Vec<u8>>,
    dir: &Utf8Path,
    prefix: &str,
    depth: usize,
    budget: &mut u64,
    entries: &mut usize,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for os_name in names {
        // Past the cap, the stream says so by its size alone; stop reading.
        *entries += 1;
        if *entries > answer::RUN_DIR_ENTRIES + 1 || *budget == 0 {
            break;
        }
        let name = os_name.to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, format!("{rel}/"), std::io::empty())?;
            if depth < 2 {
                walk(
                    builder,
                    &path,
                    &format!("{rel}/"),
                    depth + 1,
                    budget,
                    entries,
                )?;
            }
        } else if kind.is_file() {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)?;
            let mut bytes = Vec::new();
            file.take(*budget).read_to_end(&mut bytes)?;
            *budget -= bytes.len() as u64;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, &rel, &bytes[..])?;
        } else {
            let entry_type = if kind.is_symlink() {
                tar::EntryType::Symlink
            } else if kind.is_fifo() {
                tar::EntryType::Fifo
            } else if kind.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Char
            };
            header.set_entry_type(entry_type);
            header.set_size(0);
            builder.append_data(&mut header, &rel, std::io::empty())?;
        }
    }
    Ok(())
}

/// A node's dir under DIR, unpacked into `local` by `fetch.rs`'s rule.
fn fetch_local(dir: &Utf8Path, local: &Utf8Path) -> Result<Fetched, (Phase, String)> {
    let stream = tar_of(dir).map_err(|e| (Phase::Error, format!("cannot read {dir}: {e}")))?;
    match fetch::from_stream(&mut &stream[..], local) {
        Ok(fetched) => Ok(fetched),
        Err(FetchError::Misbehaved(why)) => Err((Phase::Misbehaving, why)),
        Err(FetchError::Local(why) | FetchError::Link(why)) => Err((Phase::Error, why)),
    }
}

/// The not-ready answer `run --detach --json` gave, when that is all there is.
#[derive(Deserialize)]
struct StartAnswer {
    #[serde(default)]
    preflight: Option<crate::preflight::Report>,
}

fn node_state(
    name: &str,
    controller: &Controller,
    local: &Utf8Path,
    fetched: Result<Fetched, (Phase, String)>,
    now: f64,
) -> NodeState {
    let mut n = NodeState::new(
        name,
        controller.role.unwrap_or(Role::Fleet),
        true,
        &answer::tame_str(controller.ssh.as_deref().unwrap_or(name)),
        controller.iterations.unwrap_or(1),
        Phase::Error,
    );
    n.started_unix = controller.started_unix.map(|t| t as u64);
    n.ended_unix = controller.ended_unix.map(|t| t as u64);
    let fetched = match fetched {
        Ok(f) => f,
        Err((phase, why)) => {
            n.phase = phase;
            n.reason = Some(answer::tame_str(&why));
            return n;
        }
    };
    n.fetch_refused = fetched.refused.clone();
    let record_text = fetch::read_text(&local.join("run.json"), answer::JSON);
    if record_text.is_empty() {
        let start = fetch::read_text(&local.join("start.json"), answer::JSON);
        match answer::json::<StartAnswer>(start.as_bytes()) {
            Ok(StartAnswer {
                preflight: Some(report),
            }) => {
                let findings: Vec<String> = report
                    .failed()
                    .into_iter()
                    .map(|c| format!("{}: {}", c.id, c.reason))
                    .collect();
                n.phase = Phase::NotReady;
                n.reason = Some(answer::tame_str(&findings.join("; ")));
                n.preflight_findings = findings;
                n.preflight = Some(report);
            }
            _ => {
                n.reason = Some("no run.json (nor a not-ready start.json) was fetched".into());
            }
        }
        return n;
    }
    let record = match answer::record(record_text.as_bytes()) {
        Ok((record, _)) => record,
        Err(why) => {
            n.phase = Phase::Misbehaving;
            n.reason = Some(format!("its run.json is {why}"));
            return n;
        }
    };
    if !record.state.is_final() {
        n.phase = Phase::Error;
        n.reason = Some(format!("its run had not ended: {}", record.state));
        return n;
    }
    // What the controller saw bounds the node's times; without its word,
    // the node's own start and end, no later than now.
    let seen_start = controller
        .started_unix
        .unwrap_or(record.started_unix as f64)
        .min(now);
    let seen_end = answer::clamp_time(
        controller
            .ended_unix
            .or(record.ended_unix)
            .unwrap_or(seen_start),
        seen_start,
        now,
    );
    let (steps, results) = node::iterations(local, &fetched, &record, seen_start, seen_end);
    let (phase, reason) = node::settled(&record);
    n.phase = phase;
    n.reason = reason.map(|r| answer::tame_str(&r));
    n.iterations = record.iterations;
    n.iterations_passed = (!steps.is_empty()).then(|| {
        steps
            .iter()
            .filter(|s| s.outcome == crate::outcome::Outcome::Passed)
            .count() as u32
    });
    n.run_id = Some(answer::tame_str(&record.run_id));
    n.remote_run_dir = Some(answer::tame_str(record.run_dir().as_str()));
    n.tests = record.tests.clone();
    n.preflight = record.preflight.clone();
    n.started_unix.get_or_insert(seen_start as u64);
    n.ended_unix.get_or_insert(seen_end as u64);
    n.steps = steps;
    n.iteration_results = results;
    n.record = Some(record);
    n
}
