//! `fleet run --events`: every change of the fleet's state as one JSON line,
//! written as it happens, for CI and dashboards that would otherwise scrape
//! the progress lines; `fleet status --events` replays the changes a
//! state.json still holds. An event is a difference between two saved
//! states, so each change is told once, in the order it was saved (the
//! state is saved under one lock). The schema: docs/EVENTS.md.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use anyhow::Context;
use camino::Utf8Path;
use serde_json::{json, Map, Value};

use super::state::{CrossResult, FleetState, NodeState, Phase, StepKind, TimedStep};
use super::view;
use super::Plan;

/// The schema's name and version, in the first event.
pub const SCHEMA: &str = "archy-gate.fleet-events/1";

/// Where the events go.
pub enum Stream {
    Stdout,
    File(File),
}

impl Stream {
    /// `-` is stdout; a file is made (or emptied) for us alone: the events
    /// name nodes, tests and reasons.
    pub fn open(path: &Utf8Path) -> anyhow::Result<Stream> {
        if path.as_str() == "-" {
            return Ok(Stream::Stdout);
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("--events: cannot write {path}"))?;
        Ok(Stream::File(file))
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, Stream::Stdout)
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                writeln!(out, "{line}")?;
                out.flush()
            }
            Stream::File(file) => {
                // One write per line: a reader tailing the file never sees half.
                file.write_all(format!("{line}\n").as_bytes())?;
                file.flush()
            }
        }
    }
}

/// The events of one fleet run, as its state changes.
pub struct Writer {
    inner: Mutex<Inner>,
}

struct Inner {
    stream: Stream,
    last: FleetState,
    seq: u64,
    broken: bool,
}

impl Inner {
    fn emit(&mut self, event: Value, time: f64) {
        self.seq += 1;
        let line = stamp(event, self.seq, time).to_string();
        if self.broken {
            return;
        }
        if let Err(e) = self.stream.write_line(&line) {
            eprintln!("warning: --events: {e}; no more events are written");
            self.broken = true;
        }
    }
}

impl Writer {
    /// Starts the stream with the run's `start` event: the fleet as it
    /// stands before any node is touched.
    pub fn start(stream: Stream, plan: &Plan, state: &FleetState) -> Writer {
        let mut inner = Inner {
            stream,
            last: state.clone(),
            seq: 0,
            broken: false,
        };
        let mut start = start_event(state);
        start["fleet_id"] = json!(plan.fleet_id);
        start["selected"] = json!(plan.selected);
        inner.emit(start, now());
        Writer {
            inner: Mutex::new(inner),
        }
    }

    /// The state was saved: tells what changed since the last one.
    pub fn changed(&self, state: &FleetState) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let time = now();
        for (event, _) in between(&inner.last, state) {
            inner.emit(event, time);
        }
        inner.last = state.clone();
    }

    /// The run ended: the last changes, then the verdict.
    pub fn finish(&self, state: &FleetState) {
        self.changed(state);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.emit(verdict_event(state), now());
    }
}

/// The events a state still holds, as `fleet status --events` prints them:
/// from a fleet of pending nodes to this state, each at the time the state
/// gives it (a step's end, a node's end), in time order. The passing
/// phases a node went through are not kept, so only its last is told.
pub fn replay(state: &FleetState) -> Vec<String> {
    let mut blank = state.clone();
    for n in &mut blank.nodes {
        *n = pending(n);
    }
    for c in &mut blank.cross {
        *c = CrossResult {
            outcome: super::state::CrossOutcome::Pending,
            steps: Vec::new(),
            tests: Vec::new(),
            reason: None,
            ..c.clone()
        };
    }
    let known: Vec<f64> = state
        .nodes
        .iter()
        .flat_map(|n| n.steps.iter().map(|s| s.started_unix))
        .chain(
            state
                .nodes
                .iter()
                .filter_map(|n| n.started_unix.map(|s| s as f64)),
        )
        .collect();
    let first = known.iter().copied().fold(f64::INFINITY, f64::min);
    let first = if first.is_finite() { first } else { 0.0 };
    let mut events: Vec<(Value, f64)> = between(&blank, state)
        .into_iter()
        .map(|(e, t)| (e, t.unwrap_or(first)))
        .collect();
    // Stable: the changes of one moment keep the order they were made in.
    events.sort_by(|a, b| a.1.total_cmp(&b.1));
    let last = events.last().map_or(first, |e| e.1);
    let mut out = vec![(start_event(state), first)];
    out.extend(events);
    if state.nodes.iter().all(|n| !is_active(n.phase)) {
        out.push((verdict_event(state), last));
    }
    out.into_iter()
        .enumerate()
        .map(|(i, (event, time))| stamp(event, i as u64 + 1, time).to_string())
        .collect()
}

fn is_active(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Connecting | Phase::Uploading | Phase::Preflight | Phase::Running | Phase::Waiting
    )
}

/// A node as it stands before the run touched it.
fn pending(n: &NodeState) -> NodeState {
    NodeState {
        phase: if n.gate {
            Phase::Pending
        } else {
            Phase::Skipped
        },
        reason: None,
        iteration: None,
        steps: Vec::new(),
        iteration_results: Vec::new(),
        ready_wait: None,
        ..n.clone()
    }
}

fn now() -> f64 {
    crate::clock::now_unix_f64()
}

/// `seq` and `time` first, then the event's own fields.
fn stamp(event: Value, seq: u64, time: f64) -> Value {
    let mut out = Map::new();
    out.insert("seq".into(), json!(seq));
    out.insert("time".into(), json!((time * 1000.0).round() / 1000.0));
    if let Value::Object(fields) = event {
        out.extend(fields);
    }
    Value::Object(out)
}

fn start_event(state: &FleetState) -> Value {
    let nodes: Vec<Value> = state
        .nodes
        .iter()
        .map(|n| json!({ "name": n.name, "role": n.role.word(), "gate": n.gate, "iterations": n.iterations }))
        .collect();
    json!({
        "event": "start",
        "schema": SCHEMA,
        "roster": state.roster,
        "bundle": state.bundle,
        "bundle_sha256": state.bundle_sha256,
        "nodes": nodes,
        "cross": state.cross.iter().map(|c| c.suite.clone()).collect::<Vec<_>>(),
    })
}

fn verdict_event(state: &FleetState) -> Value {
    let (verdict, short) = view::judge(state);
    json!({
        "event": "verdict",
        "verdict": verdict.word(),
        "exit": verdict.status().code(),
        "text": view::verdict(state).0,
        "not_passed": short,
    })
}

fn step_name(kind: &StepKind) -> (&'static str, Value) {
    match kind {
        StepKind::Upload => ("upload", Value::Null),
        StepKind::Preflight => ("preflight", Value::Null),
        StepKind::Iteration(n) => ("iteration", json!(n)),
        StepKind::Cross(suite) => ("cross", json!(suite)),
    }
}

fn step_event(node: &str, s: &TimedStep) -> Value {
    let (step, which) = step_name(&s.kind);
    let mut e = json!({
        "event": "step",
        "node": node,
        "step": step,
        "outcome": s.outcome.word(),
        "started": (s.started_unix * 1000.0).round() / 1000.0,
        "seconds": (s.seconds * 1000.0).round() / 1000.0,
        "detail": s.detail,
    });
    match &s.kind {
        StepKind::Iteration(_) => e["iteration"] = which,
        StepKind::Cross(_) => e["suite"] = which,
        _ => {}
    }
    e
}

/// What changed from `before` to `after`, each change with the time the
/// state gives it, if any.
fn between(before: &FleetState, after: &FleetState) -> Vec<(Value, Option<f64>)> {
    let mut out = Vec::new();
    for n in &after.nodes {
        let was = before.nodes.iter().find(|b| b.name == n.name);
        node_changes(was, n, &mut out);
    }
    for c in &after.cross {
        let was = before.cross.iter().find(|b| b.suite == c.suite);
        cross_changes(was, c, &mut out);
    }
    out
}

fn node_changes(was: Option<&NodeState>, n: &NodeState, out: &mut Vec<(Value, Option<f64>)>) {
    let name = n.name.as_str();
    if n.iteration.is_some() && was.and_then(|w| w.iteration) != n.iteration {
        out.push((
            json!({ "event": "iteration", "node": name, "iteration": n.iteration, "of": n.iterations }),
            None,
        ));
    }
    if let Some(wait) = &n.ready_wait {
        if was.and_then(|w| w.ready_wait.as_ref()) != Some(wait) {
            out.push((
                json!({
                    "event": "ready-check", "node": name, "checks": wait.checks,
                    "waited_secs": wait.seconds, "ready": wait.ready,
                }),
                Some((wait.started_unix + wait.seconds) as f64),
            ));
        }
    }
    for s in &n.steps {
        if !was.is_some_and(|w| w.steps.contains(s)) {
            out.push((step_event(name, s), Some(s.started_unix + s.seconds)));
        }
    }
    for r in &n.iteration_results {
        if was.is_some_and(|w| w.iteration_results.contains(r)) {
            continue;
        }
        let at = n
            .steps
            .iter()
            .find(|s| s.kind == StepKind::Iteration(r.n))
            .map(|s| s.started_unix + s.seconds);
        for t in &r.tests {
            out.push((
                json!({
                    "event": "test", "node": name, "iteration": r.n,
                    "test": t.name, "outcome": t.outcome.word(),
                }),
                at,
            ));
        }
    }
    let changed = match was {
        Some(w) => w.phase != n.phase || w.reason != n.reason,
        None => true,
    };
    if changed {
        out.push((
            json!({ "event": "phase", "node": name, "phase": n.phase.word(), "reason": n.reason }),
            n.ended_unix.or(n.started_unix).map(|t| t as f64),
        ));
    }
}

fn cross_changes(was: Option<&CrossResult>, c: &CrossResult, out: &mut Vec<(Value, Option<f64>)>) {
    let suite = c.suite.as_str();
    for s in &c.steps {
        let before = was.and_then(|w| {
            w.steps
                .iter()
                .find(|b| b.step == s.step && b.node == s.node)
        });
        let changed = match before {
            Some(b) => b.outcome != s.outcome || b.attempts != s.attempts,
            None => true,
        };
        if changed {
            out.push((
                json!({
                    "event": "cross-step", "suite": suite, "step": s.step, "kind": s.kind,
                    "node": s.node, "outcome": s.outcome.word(), "attempts": s.attempts,
                    "reason": s.reason,
                }),
                s.started_unix.map(|t| t + s.seconds),
            ));
        }
    }
    let end = c.started_unix.map(|t| (t + c.seconds) as f64);
    for t in &c.tests {
        if !was.is_some_and(|w| w.tests.contains(t)) {
            out.push((
                json!({ "event": "cross-test", "suite": suite, "test": t.name, "outcome": t.outcome.word() }),
                end,
            ));
        }
    }
    let changed = match was {
        Some(w) => w.outcome != c.outcome || w.reason != c.reason,
        None => true,
    };
    if changed {
        out.push((
            json!({
                "event": "cross", "suite": suite, "outcome": c.outcome.word(), "reason": c.reason,
                "tests_passed": c.tests_passed, "tests_failed": c.tests_failed,
            }),
            end,
        ));
    }
}
