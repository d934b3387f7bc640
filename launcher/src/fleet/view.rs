//! What the reports show, made once from the fleet's state: the verdict
//! line, a row per node (its words: role, phase, iterations, tests, upload,
//! duration, why), what a node or a cross suite is doing now (the progress
//! lines and `fleet status`), and each failing test with where it is in the
//! node's log. report.md, report.html and the progress lines render these;
//! none of them words a node's state on its own.

use camino::Utf8Path;

use super::state::{CrossOutcome, CrossResult, FleetState, NodeState, Phase, ScenarioStepRun};
use crate::human;
use crate::outcome::Outcome;
use crate::printable::printable;
use crate::reports;

/// The longest reason a progress line shows; the report has the whole of it.
const REASON_MAX: usize = 100;
/// The most of a node's gate.log read for the failing tests' lines.
const LOG_LIMIT: u64 = 32 << 20;
/// Lines of a failing test's output kept under it.
const EXCERPT_LINES: usize = 14;
const EXCERPT_WIDTH: usize = 240;

/// "3 of 4 gate nodes passed[, 1 of 2 cross-node suites passed]", and
/// whether that is all of them.
pub fn verdict(state: &FleetState) -> (String, bool) {
    let gate: Vec<&NodeState> = state.nodes.iter().filter(|n| n.gate).collect();
    let passed = gate.iter().filter(|n| n.phase == Phase::Passed).count();
    let cross_passed = state
        .cross
        .iter()
        .filter(|c| c.outcome == CrossOutcome::Passed)
        .count();
    let mut text = format!("{passed} of {} gate nodes passed", gate.len());
    if !state.cross.is_empty() {
        text.push_str(&format!(
            ", {cross_passed} of {} cross-node suites passed",
            state.cross.len()
        ));
    }
    let good = passed == gate.len() && cross_passed == state.cross.len();
    (text, good)
}

/// The fleet's verdict by kind of shortfall; the exit status tells them
/// apart (commands/fleet.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetVerdict {
    /// Every gate node passed, and no cross suite failed.
    Passed,
    /// Nothing failed, but not every gate node passed: some were not ready
    /// (or not run: left out by --limit/--only, behind a primary that was
    /// not ready).
    Incomplete,
    /// A gate or a cross suite failed, or a node could not be carried
    /// through (unreachable, misbehaving, an error).
    Failed,
}

impl FleetVerdict {
    /// The exit status that says it: 0, 4 (as `run` does for a node that
    /// is not ready), 1.
    pub fn status(self) -> crate::exit::ExitStatus {
        use crate::exit::ExitStatus;
        match self {
            FleetVerdict::Passed => ExitStatus::Success,
            FleetVerdict::Incomplete => ExitStatus::Preflight,
            FleetVerdict::Failed => ExitStatus::Failed,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            FleetVerdict::Passed => "passed",
            FleetVerdict::Incomplete => "incomplete",
            FleetVerdict::Failed => "failed",
        }
    }
}

/// The verdict, and what did not pass ("n2 failed", "cross suite x failed").
/// A skipped node or suite fails nothing by itself: what made it skip
/// already counts.
pub fn judge(state: &FleetState) -> (FleetVerdict, Vec<String>) {
    let mut failed = false;
    let mut short = Vec::new();
    for n in state
        .nodes
        .iter()
        .filter(|n| n.gate && n.phase != Phase::Passed)
    {
        short.push(format!("{} {}", n.name, n.phase.word()));
        if !matches!(n.phase, Phase::NotReady | Phase::Waiting | Phase::Skipped) {
            failed = true;
        }
    }
    for c in &state.cross {
        if matches!(
            c.outcome,
            CrossOutcome::Failed | CrossOutcome::Running | CrossOutcome::Pending
        ) {
            short.push(format!("cross suite {} {}", c.suite, c.outcome.word()));
            failed = true;
        }
    }
    let verdict = if failed {
        FleetVerdict::Failed
    } else if short.is_empty() {
        FleetVerdict::Passed
    } else {
        FleetVerdict::Incomplete
    };
    (verdict, short)
}

/// One node as every report shows it. Strings are the node's as kept
/// (escaped at arrival); each renderer escapes them again for its format.
pub struct NodeRow<'a> {
    pub role: &'static str,
    pub phase: String,
    /// "2 of 5", or "-" when no iteration ended.
    pub iterations: String,
    /// (passed, failed, skipped), when the run counted any.
    pub tests: Option<(u64, u64, u64)>,
    pub failing: &'a [String],
    pub findings: &'a [String],
    /// The upload in words ("sent 4.1 MiB"), or "-".
    pub upload: String,
    /// How long the node took, or "-".
    pub duration: String,
    /// Why the node is where it is, unless the row already says it (its
    /// failing tests, or its preflight findings, which it then counts).
    pub reason: Option<String>,
    /// How long it waited to be ready (`--wait-ready`), when it did.
    pub waited: Option<String>,
}

impl<'a> NodeRow<'a> {
    pub fn of(n: &'a NodeState) -> NodeRow<'a> {
        let failing: &[String] = n.tests.as_ref().map_or(&[], |t| t.failing.as_slice());
        let findings = n.preflight_findings.as_slice();
        let reason = match n.reason.as_deref() {
            Some(_) if matches!(n.phase, Phase::Passed | Phase::Failed) && n.tests.is_some() => {
                None
            }
            Some(r) if !findings.is_empty() && r == findings.join("; ") => Some(format!(
                "{} preflight check{} failed",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" }
            )),
            r => r.map(str::to_string),
        };
        NodeRow {
            role: n.role.word(),
            phase: n.phase.word(),
            iterations: match n.iterations_passed {
                Some(p) => format!("{p} of {}", n.iterations),
                None => "-".into(),
            },
            tests: n.tests.as_ref().map(|t| (t.passed, t.failed, t.skipped)),
            failing,
            findings,
            upload: n.upload.as_ref().map_or_else(|| "-".into(), |u| u.words()),
            duration: match (n.started_unix, n.ended_unix) {
                (Some(s), Some(e)) if e >= s => crate::clock::duration(e - s),
                _ => "-".into(),
            },
            reason,
            waited: n.ready_wait.as_ref().map(|w| w.words()),
        }
    }
}

/// One step of a scenario on one node, as every report shows it.
pub struct StepRow<'a> {
    pub step: &'a str,
    pub kind: &'a str,
    pub node: &'a str,
    pub role: &'a str,
    pub outcome: String,
    /// "3", or "-" when it never started.
    pub attempts: String,
    /// From its first attempt to its end, or "-".
    pub took: String,
    /// How long it took to pass (an `eventually` step's figure), or "-".
    pub passed_after: String,
    /// Value names it was given and it published, or "-".
    pub given: String,
    pub published: String,
    /// Why it failed or was skipped, with its failing tests.
    pub reason: Option<String>,
}

impl<'a> StepRow<'a> {
    pub fn of(s: &'a ScenarioStepRun) -> StepRow<'a> {
        let secs = |t: f64| format!("{t:.1}s");
        let names = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let started = s.attempts > 0;
        let reason = match (&s.reason, s.failing.is_empty()) {
            (Some(r), _) => Some(r.clone()),
            (None, false) => Some(format!("failed: {}", s.failing.join("; "))),
            (None, true) => None,
        };
        StepRow {
            step: &s.step,
            kind: &s.kind,
            node: &s.node,
            role: s.role.as_deref().unwrap_or("-"),
            outcome: s.outcome.word(),
            attempts: if started {
                s.attempts.to_string()
            } else {
                "-".into()
            },
            took: if started { secs(s.seconds) } else { "-".into() },
            passed_after: s.passed_after_secs.map_or_else(|| "-".into(), secs),
            given: names(&s.given),
            published: names(&s.published),
            reason,
        }
    }
}

/// The steps of a scenario suite (none for a suite that has no scenario).
pub fn step_rows(c: &CrossResult) -> Vec<StepRow<'_>> {
    if !c.scenario {
        return Vec::new();
    }
    c.steps.iter().map(StepRow::of).collect()
}

fn short(text: &str) -> String {
    let text = printable(&text.replace('\n', " ")).into_owned();
    if text.chars().count() <= REASON_MAX {
        text
    } else {
        let cut: String = text.chars().take(REASON_MAX - 1).collect();
        format!("{cut}…")
    }
}

/// What a node is doing, without the elapsed time (the progress lines' words:
/// the part that, when it changes, is worth a plain line).
pub fn node_now(n: &NodeState, bundle_size: u64, cross: &[CrossResult]) -> String {
    let mut out = n.phase.word();
    match n.phase {
        Phase::Uploading => out.push_str(&format!(
            " {}/{}",
            human::size(n.uploaded.unwrap_or(0)),
            human::size(bundle_size)
        )),
        Phase::Running => match n.iteration {
            Some(i) => out.push_str(&format!(" iteration {i}/{}", n.iterations)),
            None => out.push_str(&format!(" ({} iteration(s))", n.iterations)),
        },
        Phase::Passed | Phase::Failed => {
            if let Some(p) = n.iterations_passed {
                out.push_str(&format!(" ({p}/{} iterations passed)", n.iterations));
            }
        }
        _ => {}
    }
    if let Some(reason) = &n.reason {
        if n.phase != Phase::Passed {
            out.push_str(&format!(": {}", short(reason)));
        }
    }
    for c in cross
        .iter()
        .filter(|c| c.runs_on == n.name && c.outcome == CrossOutcome::Running)
    {
        out.push_str(&format!("; running cross suite {}", c.suite));
    }
    out
}

/// A cross suite as it is now: the progress lines' words.
pub fn cross_now(c: &CrossResult) -> String {
    let mut out = format!(
        "cross {} ({}) on {}: {}",
        c.suite,
        c.nodes.join(", "),
        c.runs_on,
        c.outcome.word()
    );
    if matches!(c.outcome, CrossOutcome::Passed | CrossOutcome::Failed) {
        out.push_str(&format!(
            ", {} passed, {} failed",
            c.tests_passed, c.tests_failed
        ));
    }
    if let Some(reason) = &c.reason {
        out.push_str(&format!(": {}", short(reason)));
    }
    // A scenario under way: the steps going now, where, and which attempt.
    if c.scenario && c.outcome == CrossOutcome::Running {
        let now: Vec<String> = c
            .steps
            .iter()
            .filter(|s| s.outcome == CrossOutcome::Running)
            .map(|s| match s.attempts {
                0 | 1 => format!("{} on {}", s.step, s.node),
                n => format!("{} on {} (attempt {n})", s.step, s.node),
            })
            .collect();
        if !now.is_empty() {
            out.push_str(&format!("; step {}", now.join(", ")));
        }
    }
    out
}

/// A failing test's result line in a node's gate.log.
#[derive(Debug)]
pub struct LogFailure {
    pub name: String,
    pub iteration: Option<u32>,
    /// 1-based.
    pub line: usize,
    /// The result line and the diagnostics after it.
    pub excerpt: Vec<String>,
}

/// The failing tests of the node's fetched gate.log in `dir` (the fleet
/// dir), each where it is: one read of the log per node.
pub fn log_failures(dir: &Utf8Path, node: &str) -> Vec<LogFailure> {
    let log = super::fetch::read_text(
        &dir.join("nodes").join(node).join(crate::runs::LOG),
        LOG_LIMIT,
    );
    failures_in(&log)
}

/// The failing result lines of `log` (TAP `not ok`), with the iteration
/// each fell in (run-gate.sh's `# iteration N of M` lines) and bats'
/// diagnostic lines (`# …`) after each.
fn failures_in(log: &str) -> Vec<LogFailure> {
    let lines: Vec<&str> = log.lines().collect();
    let mut iteration = None;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(n) = reports::iteration_line(line) {
            iteration = Some(n);
            continue;
        }
        if !line.starts_with("not ok ") {
            continue;
        }
        for (name, outcome) in reports::tap_results(line) {
            if outcome != Outcome::Failed {
                continue;
            }
            let mut excerpt = vec![line.to_string()];
            for more in &lines[i + 1..] {
                if excerpt.len() >= EXCERPT_LINES
                    || !more.starts_with('#')
                    || reports::iteration_line(more).is_some()
                {
                    break;
                }
                excerpt.push(more.to_string());
            }
            for l in &mut excerpt {
                if l.chars().count() > EXCERPT_WIDTH {
                    *l = l.chars().take(EXCERPT_WIDTH).collect::<String>() + "…";
                }
            }
            out.push(LogFailure {
                name,
                iteration,
                line: i + 1,
                excerpt,
            });
        }
    }
    out
}
