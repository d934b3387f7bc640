//! The fleet run's state on disk (`state.json` in the fleet dir), written
//! after every step of every node: `fleet status` reads it while a run goes
//! on, and a restarted `fleet run` picks up from it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::roster::{Cross, Role};
pub use crate::outcome::Outcome;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Pending,
    Connecting,
    Uploading,
    Preflight,
    Running,
    Passed,
    Failed,
    Interrupted,
    /// Preflight failed: not the build's fault.
    NotReady,
    /// Not ready, and checked again until it is (`--wait-ready`).
    Waiting,
    Unreachable,
    /// Its answers broke the fleet's bounds (too long, too slow, not what
    /// was asked): the node may be compromised, and is not followed further.
    Misbehaving,
    /// Not run: not a gate target, or a primary did not pass.
    Skipped,
    Error,
}

impl Phase {
    /// Finished in a way a restarted run keeps.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Phase::Passed | Phase::Failed | Phase::Interrupted | Phase::Skipped
        )
    }

    pub fn word(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UploadStats {
    pub size: u64,
    /// Bytes handed to ssh, over all attempts.
    pub sent: u64,
    /// Bytes sent more than once (after a broken upload).
    pub resent: u64,
    pub attempts: u32,
    /// The node already had this bundle.
    pub skipped: bool,
    pub seconds: u64,
}

impl UploadStats {
    /// The upload in a few words, the same on every page and the timeline.
    pub fn words(&self) -> String {
        let size = crate::human::size;
        if self.skipped {
            "already there".into()
        } else if self.resent > 0 {
            format!(
                "sent {}, resumed ({} re-sent)",
                size(self.sent),
                size(self.resent)
            )
        } else {
            format!("sent {}", size(self.sent))
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub role: Role,
    pub gate: bool,
    pub ssh: String,
    pub phase: Phase,
    /// Why the node is where it is, in one line.
    pub reason: Option<String>,
    pub iterations: u32,
    pub iterations_passed: Option<u32>,
    pub tests: Option<crate::reports::TestCounts>,
    pub run_id: Option<String>,
    pub remote_run_dir: Option<String>,
    pub upload: Option<UploadStats>,
    /// The failing preflight checks (id: reason).
    pub preflight_findings: Vec<String>,
    pub preflight: Option<crate::preflight::Report>,
    /// The trusted key that verified the bundle's signature on the node.
    #[serde(default)]
    pub verified_by: Option<String>,
    /// The node's run.json once the gate ended.
    pub record: Option<crate::runs::RunRecord>,
    pub connections: u32,
    pub started_unix: Option<u64>,
    pub ended_unix: Option<u64>,
    /// Bytes of the bundle on the node so far, while it uploads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<u64>,
    /// The iteration the node's gate is in, while it runs (from its run.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// The node's timed steps, in the order they began: the report's timeline.
    #[serde(default)]
    pub steps: Vec<TimedStep>,
    /// Entries of the node's run dir that were not kept (symlinks, devices,
    /// odd names…), each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch_refused: Vec<String>,
    /// Why the run dir was not fetched whole, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_incomplete: Option<String>,
    /// Each iteration's tests, as its TAP said (read once, when fetched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iteration_results: Vec<IterationResult>,
    /// How long it waited to be ready (`--wait-ready`), once it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_wait: Option<ReadyWait>,
}

/// A node's wait for readiness: from the first check that found it not
/// ready to the one that found it ready, or to the end of the time given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyWait {
    /// When the first check found it not ready (this host's clock).
    pub started_unix: u64,
    /// Checks made, the first included.
    pub checks: u32,
    pub seconds: u64,
    /// Found ready (its gate then ran); false: it was not by the end.
    pub ready: bool,
}

impl ReadyWait {
    /// "waited 1m 20s for readiness (4 checks)".
    pub fn words(&self) -> String {
        format!(
            "{} {} for readiness ({} check{})",
            if self.ready {
                "waited"
            } else {
                "waited in vain"
            },
            crate::clock::duration(self.seconds),
            self.checks,
            if self.checks == 1 { "" } else { "s" }
        )
    }
}

impl NodeState {
    /// A node no step has reached yet: `phase`, and nothing else known.
    pub fn new(
        name: &str,
        role: Role,
        gate: bool,
        ssh: &str,
        iterations: u32,
        phase: Phase,
    ) -> Self {
        NodeState {
            name: name.to_string(),
            role,
            gate,
            ssh: ssh.to_string(),
            phase,
            reason: None,
            iterations,
            iterations_passed: None,
            tests: None,
            run_id: None,
            remote_run_dir: None,
            upload: None,
            preflight_findings: Vec::new(),
            preflight: None,
            verified_by: None,
            record: None,
            connections: 0,
            started_unix: None,
            ended_unix: None,
            uploaded: None,
            iteration: None,
            iteration_results: Vec::new(),
            steps: Vec::new(),
            fetch_refused: Vec::new(),
            fetch_incomplete: None,
            ready_wait: None,
        }
    }
}

/// One iteration of a node's gate, test by test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationResult {
    pub n: u32,
    pub outcome: Outcome,
    pub tests: Vec<TestResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// How long it took, when its TAP line said (bats' `--timing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// A failed test's diagnostic lines from its TAP, capped (`fetch::tap_tests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
}

/// One timed step of a node's way through the fleet run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedStep {
    pub kind: StepKind,
    /// When it began: unix seconds, with a fraction, on this host's clock.
    pub started_unix: f64,
    pub seconds: f64,
    pub outcome: Outcome,
    /// What happened, in a few words ("sent 4.1 MiB", "12 passed, 1 failed").
    #[serde(default)]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Upload,
    Preflight,
    /// The gate's iteration N (from 1).
    Iteration(u32),
    /// A cross-node suite, by name, that this node took part in.
    Cross(String),
}

/// When a step began: an `Instant` for its length, unix time for the timeline.
#[derive(Clone, Copy, Debug)]
pub struct StepStart {
    at: Instant,
    unix: f64,
}

impl StepStart {
    pub fn now() -> StepStart {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        StepStart {
            at: Instant::now(),
            unix,
        }
    }

    pub fn unix(self) -> f64 {
        self.unix
    }

    /// The step that began here and ends now.
    pub fn ended(self, kind: StepKind, outcome: Outcome, detail: Option<String>) -> TimedStep {
        TimedStep {
            kind,
            started_unix: self.unix,
            seconds: self.at.elapsed().as_secs_f64(),
            outcome,
            detail,
        }
    }
}

/// How a cross-node suite ended; `pending` and `running` only while the
/// fleet runs (state.json), never in a finished report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossOutcome {
    Passed,
    Failed,
    Skipped,
    Pending,
    Running,
}

impl CrossOutcome {
    pub fn word(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// One `[[cross]]` suite of the fleet's third phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrossResult {
    pub suite: String,
    pub nodes: Vec<String>,
    pub runs_on: String,
    pub outcome: CrossOutcome,
    /// Why it was skipped or failed, in one line.
    pub reason: Option<String>,
    pub tests_passed: u64,
    pub tests_failed: u64,
    pub seconds: u64,
    /// The run on `runs_on`, once started: a restarted fleet follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix: Option<u64>,
    /// Its tests, as its TAP said (read once, when fetched).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
    /// It has a scenario (steps across nodes), not just its run.sh.
    #[serde(default)]
    pub scenario: bool,
    /// Each step on each node it ran on, in the order they were set out
    /// (a suite without a scenario: one step, `suite`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ScenarioStepRun>,
    /// The values its steps published, checked, as handed to later steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

/// One step of a scenario on one node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioStepRun {
    pub step: String,
    /// tests, cleanup, fault or heal.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub outcome: CrossOutcome,
    /// Runs started for it (more than one: an `eventually` step).
    pub attempts: u32,
    /// From its first attempt's start to its last one's end, seen here.
    pub seconds: f64,
    /// How long it took to pass, from its first attempt (when it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_after_secs: Option<f64>,
    /// When its first attempt started, this host's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix: Option<f64>,
    /// When its last run's gate began and ended, the node's own clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_started_unix: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ended_unix: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The names of the values it was given, and of those it published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tests_passed: u64,
    pub tests_failed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// A failed step's last lines of output (its fetched gate.log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl ScenarioStepRun {
    /// A step set out on a node, not started.
    pub fn pending(step: &crate::scenario::Step, node: &str, role: Option<String>) -> Self {
        ScenarioStepRun {
            step: step.name.clone(),
            kind: step.kind_word().into(),
            stage: step.stage.clone(),
            node: node.to_string(),
            role,
            outcome: CrossOutcome::Pending,
            attempts: 0,
            seconds: 0.0,
            passed_after_secs: None,
            started_unix: None,
            node_started_unix: None,
            node_ended_unix: None,
            run_id: None,
            given: Vec::new(),
            published: Vec::new(),
            reason: None,
            tests_passed: 0,
            tests_failed: 0,
            failing: Vec::new(),
            log_tail: Vec::new(),
        }
    }
}

impl CrossResult {
    /// The result a suite starts from, before anything is known.
    pub fn pending(c: &Cross) -> CrossResult {
        CrossResult {
            suite: c.suite.clone(),
            nodes: c.node_names(),
            runs_on: c.runs_on.clone(),
            outcome: CrossOutcome::Pending,
            reason: None,
            tests_passed: 0,
            tests_failed: 0,
            seconds: 0,
            run_id: None,
            failing: Vec::new(),
            started_unix: None,
            tests: Vec::new(),
            scenario: false,
            steps: Vec::new(),
            values: Default::default(),
        }
    }

    /// Finished in a way a restarted run keeps (a skip is looked at again:
    /// the node that was not ready may be now).
    pub fn is_settled(&self) -> bool {
        matches!(self.outcome, CrossOutcome::Passed | CrossOutcome::Failed)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetState {
    pub roster: Utf8PathBuf,
    pub bundle: Utf8PathBuf,
    pub bundle_sha256: String,
    pub bundle_size: u64,
    pub started: String,
    pub updated: String,
    pub nodes: Vec<NodeState>,
    /// The cross-node suites, run once every gate target passed.
    #[serde(default)]
    pub cross: Vec<CrossResult>,
}

pub const STATE_FILE: &str = "state.json";

impl FleetState {
    pub fn load(dir: &Utf8Path) -> anyhow::Result<FleetState> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
        serde_json::from_slice(&text).with_context(|| format!("{path} is not a fleet state"))
    }

    pub fn save(&mut self, dir: &Utf8Path) -> anyhow::Result<()> {
        self.updated = crate::clock::rfc3339(crate::clock::now_unix());
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        crate::atomic_file::write(&dir.join(STATE_FILE), &text, 0o644)
    }

    pub fn cross(&self, suite: &str) -> Option<&CrossResult> {
        self.cross.iter().find(|c| c.suite == suite)
    }

    pub fn node(&self, name: &str) -> &NodeState {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("known node")
    }
}

/// Told of every change, with the state as it now is.
pub type Listener = Arc<dyn Fn(&FleetState) + Send + Sync>;

/// The state shared by the node workers; every change is saved at once.
#[derive(Clone)]
pub struct Shared {
    pub dir: Utf8PathBuf,
    state: Arc<Mutex<FleetState>>,
    listener: Option<Listener>,
}

impl Shared {
    pub fn new(dir: Utf8PathBuf, state: FleetState) -> Shared {
        Shared {
            dir,
            state: Arc::new(Mutex::new(state)),
            listener: None,
        }
    }

    /// Calls `listener` after every change (the progress lines: a phase
    /// shorter than their refresh is still told).
    pub fn with_listener(mut self, listener: Listener) -> Shared {
        self.listener = Some(listener);
        self
    }

    fn saved(&self, state: &mut FleetState) {
        if let Err(e) = state.save(&self.dir) {
            eprintln!("warning: {e:#}");
        }
        if let Some(listener) = &self.listener {
            listener(state);
        }
    }

    /// Changes one node's state and saves the whole.
    pub fn update(&self, name: &str, change: impl FnOnce(&mut NodeState)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(node) = state.nodes.iter_mut().find(|n| n.name == name) {
            change(node);
        }
        self.saved(&mut state);
    }

    /// Changes one cross suite's result (adding it if new) and saves the whole.
    pub fn update_cross(&self, fresh: &CrossResult, change: impl FnOnce(&mut CrossResult)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let at = match state.cross.iter().position(|c| c.suite == fresh.suite) {
            Some(at) => at,
            None => {
                state.cross.push(fresh.clone());
                state.cross.len() - 1
            }
        };
        change(&mut state.cross[at]);
        self.saved(&mut state);
    }

    pub fn snapshot(&self) -> FleetState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
