//! The fleet's reports: `report.json` (the state, for machines), `report.md`
//! (a table a person reads), `report.html` (the same, with a timeline:
//! `html.rs`), `junit.xml` (one testsuite per node, and one per cross-node
//! suite).

use std::fmt::Write as _;

use anyhow::Context;
use camino::Utf8Path;

use super::state::{CrossOutcome, CrossResult, FleetState, NodeState, Outcome, Phase};
use super::view::{self, NodeRow};
use crate::printable::printable;
use crate::private_fs::Create;

/// The reports, as they are written into the fleet dir: the one list the
/// writer, the help and the closing line take.
pub const FILES: [&str; 4] = ["report.html", "report.md", "report.json", "junit.xml"];

/// "report.html, report.md, report.json and junit.xml".
pub fn files_in_words() -> String {
    let (last, rest) = FILES.split_last().expect("reports");
    format!("{} and {last}", rest.join(", "))
}

/// Each report's path in `dir`, comma-separated.
pub fn paths(dir: &Utf8Path) -> String {
    FILES
        .iter()
        .map(|f| dir.join(f).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes every report into the fleet dir, each by temp file and rename
/// inside it (never through a name another process left there).
pub fn write(dir: &Utf8Path, state: &FleetState) -> anyhow::Result<()> {
    let private = super::private_dir(dir, Create::No)?;
    for name in FILES {
        let bytes = match name {
            "report.json" => {
                let mut json = serde_json::to_vec_pretty(state)?;
                json.push(b'\n');
                json
            }
            "report.md" => markdown(state).into_bytes(),
            "report.html" => super::html::render(dir, state).into_bytes(),
            "junit.xml" => junit(state).into_bytes(),
            other => unreachable!("a report without a writer: {other}"),
        };
        private
            .write_atomic(name, &bytes, 0o644)
            .with_context(|| format!("cannot write {dir}/{name}"))?;
    }
    Ok(())
}

/// One line per node: a verdict a person reads first.
pub fn markdown(state: &FleetState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# archy-gate fleet report\n");
    let _ = writeln!(
        out,
        "{}. Bundle `{}` (sha256 `{}`), roster `{}`, started {}, updated {}.\n",
        view::verdict(state).0,
        state.bundle,
        state.bundle_sha256,
        state.roster,
        state.started,
        state.updated
    );
    let _ = writeln!(out, "| node | role | state | iterations passed | tests (pass/fail/skip) | failing tests | preflight findings | duration | upload |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for n in &state.nodes {
        let row = NodeRow::of(n);
        let tests = row
            .tests
            .map(|(p, f, s)| format!("{p}/{f}/{s}"))
            .unwrap_or_else(|| "-".into());
        let or_dash = |list: &[String]| match list.join("; ") {
            joined if joined.is_empty() => "-".to_string(),
            joined => joined,
        };
        let mut state_cell = match &n.reason {
            Some(r) if !matches!(n.phase, Phase::Passed) => {
                format!("**{}**: {}", row.phase, escape(r))
            }
            _ => format!("**{}**", row.phase),
        };
        // A wait the reason does not already tell (it tells a vain one).
        if let Some(waited) = row.waited.as_ref().filter(|_| n.phase != Phase::NotReady) {
            state_cell.push_str(&format!(" ({waited})"));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            n.name,
            row.role,
            state_cell,
            row.iterations,
            tests,
            escape(&or_dash(row.failing)),
            escape(&or_dash(row.findings)),
            row.duration,
            row.upload
        );
    }
    if !state.cross.is_empty() {
        let ran = state
            .cross
            .iter()
            .filter(|c| c.outcome != CrossOutcome::Skipped)
            .count();
        let passed = state
            .cross
            .iter()
            .filter(|c| c.outcome == CrossOutcome::Passed)
            .count();
        let _ = writeln!(
            out,
            "\n## Cross-node suites\n\n{passed} of {} passed, {} skipped.\n",
            state.cross.len(),
            state.cross.len() - ran
        );
        let _ = writeln!(
            out,
            "| suite | nodes | runs on | outcome | tests (pass/fail) | failing tests | duration |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for c in &state.cross {
            let outcome = match &c.reason {
                Some(r) => format!("**{}**: {}", c.outcome.word(), escape(r)),
                None => format!("**{}**", c.outcome.word()),
            };
            let (tests, took) =
                if matches!(c.outcome, CrossOutcome::Skipped | CrossOutcome::Pending) {
                    ("-".to_string(), "-".to_string())
                } else {
                    (
                        format!("{}/{}", c.tests_passed, c.tests_failed),
                        crate::clock::duration(c.seconds),
                    )
                };
            let failing = if c.failing.is_empty() {
                "-".to_string()
            } else {
                c.failing.join("; ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.suite,
                c.nodes.join(", "),
                c.runs_on,
                outcome,
                tests,
                escape(&failing),
                took
            );
        }
    }
    for c in &state.cross {
        let rows = super::view::step_rows(c);
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n### Scenario {}\n\n| step | node | role | outcome | attempts | took | passed after | values given | published | why |\n|---|---|---|---|---|---|---|---|---|---|",
            c.suite
        );
        for r in rows {
            let step = match r.kind {
                "tests" => r.step.to_string(),
                kind => format!("{} ({kind})", r.step),
            };
            let _ = writeln!(
                out,
                "| {step} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.node,
                r.role,
                r.outcome,
                r.attempts,
                r.took,
                r.passed_after,
                escape(&r.given),
                escape(&r.published),
                escape(r.reason.as_deref().unwrap_or("-"))
            );
        }
        // Each failed step: where, what it was given, and how its output ended.
        for s in c.steps.iter().filter(|s| !s.log_tail.is_empty()) {
            let given = if s.given.is_empty() {
                "no values".to_string()
            } else {
                format!("values {}", s.given.join(", "))
            };
            let _ = writeln!(
                out,
                "\nStep {} on {} (given {given}), the end of its log (`cross/{}/{}/{}/gate.log`):\n\n~~~\n{}\n~~~",
                s.step,
                s.node,
                c.suite,
                s.step,
                s.node,
                s.log_tail.join("\n").replace("~~~", "~ ~ ~")
            );
        }
    }
    // Which key this launcher verified the bundle's signature with, before
    // upload, and the nodes that ran it told to require that key. (What a
    // node says of its own check is its claim, and is not repeated here.)
    let mut keys: Vec<&str> = state
        .nodes
        .iter()
        .filter_map(|n| n.verified_by.as_deref())
        .collect();
    keys.dedup();
    for key in keys {
        let nodes: Vec<&str> = state
            .nodes
            .iter()
            .filter(|n| n.verified_by.as_deref() == Some(key))
            .map(|n| n.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "\nSignature verified here, before upload, with trusted key `{}`; run with `--trust` that key on: {}.",
            escape(key),
            nodes.join(", ")
        );
    }
    // What the nodes sent that was not kept: a node's run dir is plain data.
    let refused: Vec<&NodeState> = state
        .nodes
        .iter()
        .filter(|n| !n.fetch_refused.is_empty() || n.fetch_incomplete.is_some())
        .collect();
    if !refused.is_empty() {
        let _ = writeln!(out, "\n## Not kept from the nodes' run dirs\n");
        for n in refused {
            for why in n.fetch_incomplete.iter().chain(&n.fetch_refused) {
                let _ = writeln!(out, "- {}: {}", n.name, escape(why));
            }
        }
    }
    out
}

/// A node's string (a test name, a finding, a reason) in Markdown: its
/// control characters escaped, no line break, and a backslash before each
/// character Markdown gives a meaning that could turn it into something
/// else than text: HTML (`<`, `>`, `&`), links and images (`[`, `]`, `!`),
/// code (`` ` ``), emphasis (`*`, `_`, `~`) and the table's `|`.
fn escape(cell: &str) -> String {
    let text = printable(&cell.replace('\n', " ")).into_owned();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_~[]<>&|!".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn xml(text: &str) -> String {
    // XML 1.0 cannot hold most control characters at all.
    printable(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One JUnit testsuite being written: its testcases and their counts.
#[derive(Default)]
struct Suite {
    cases: String,
    tests: u32,
    failures: u32,
    skipped: u32,
}

/// How a testcase ended, for JUnit.
enum Case<'a> {
    Passed,
    Failed(&'a str),
    Skipped(Option<&'a str>),
}

impl Case<'_> {
    fn of(outcome: Outcome) -> Case<'static> {
        match outcome {
            Outcome::Passed => Case::Passed,
            Outcome::Failed | Outcome::Error => Case::Failed("failed"),
            Outcome::Skipped => Case::Skipped(None),
        }
    }
}

impl Suite {
    fn case(&mut self, class: &str, name: &str, ended: Case) {
        self.tests += 1;
        let _ = write!(
            self.cases,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(class),
            xml(name)
        );
        let _ = match ended {
            Case::Passed => writeln!(self.cases, "/>"),
            Case::Failed(message) => {
                self.failures += 1;
                writeln!(
                    self.cases,
                    "><failure message=\"{}\"/></testcase>",
                    xml(message)
                )
            }
            Case::Skipped(None) => {
                self.skipped += 1;
                writeln!(self.cases, "><skipped/></testcase>")
            }
            Case::Skipped(Some(message)) => {
                self.skipped += 1;
                writeln!(
                    self.cases,
                    "><skipped message=\"{}\"/></testcase>",
                    xml(message)
                )
            }
        };
    }

    fn finish(self, name: &str) -> String {
        format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n{}  </testsuite>\n",
            xml(name),
            self.tests,
            self.failures,
            self.skipped,
            self.cases
        )
    }
}

/// One testsuite per node: its gate's test results (each iteration's, as
/// read from its TAP when fetched), or a single testcase saying why it has
/// none; then one per cross suite.
pub fn junit(state: &FleetState) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"archy-gate fleet\">\n",
    );
    for n in state.nodes.iter().filter(|n| n.gate) {
        let mut suite = Suite::default();
        for iteration in &n.iteration_results {
            let class = format!("{}.iteration-{}", n.name, iteration.n);
            for test in &iteration.tests {
                suite.case(&class, &test.name, Case::of(test.outcome));
            }
        }
        if suite.tests == 0 {
            let why = format!(
                "{}: {}",
                n.phase.word(),
                n.reason.clone().unwrap_or_else(|| n.phase.word())
            );
            let ended = match n.phase {
                Phase::Passed => Case::Passed,
                Phase::Skipped | Phase::NotReady => Case::Skipped(Some(&why)),
                _ => Case::Failed(&why),
            };
            suite.case(&n.name, "gate", ended);
        }
        out.push_str(&suite.finish(&n.name));
    }
    for c in &state.cross {
        out.push_str(&cross_junit(c));
    }
    out.push_str("</testsuites>\n");
    out
}

/// A cross suite's testsuite: its tests (as its TAP said when fetched), or
/// one testcase saying why it has none.
fn cross_junit(c: &CrossResult) -> String {
    let class = format!("cross.{}", c.suite);
    let mut suite = Suite::default();
    // A scenario: each step on each node is a case too, so CI shows which
    // step failed where, and which were skipped or undone.
    for r in super::view::step_rows(c) {
        let why = r.reason.clone().unwrap_or_else(|| r.outcome.clone());
        let case = match r.outcome.as_str() {
            "passed" => Case::Passed,
            "skipped" | "pending" => Case::Skipped(Some(&why)),
            _ => Case::Failed(&why),
        };
        suite.case(
            &format!("{class}.step"),
            &format!("{} ({}) on {}", r.step, r.kind, r.node),
            case,
        );
    }
    for test in &c.tests {
        suite.case(&class, &test.name, Case::of(test.outcome));
    }
    if suite.tests == 0 {
        let why = c.reason.clone().unwrap_or_else(|| c.outcome.word());
        let failed = format!("{}: {why}", c.outcome.word());
        let ended = match c.outcome {
            CrossOutcome::Passed => Case::Passed,
            CrossOutcome::Skipped => Case::Skipped(Some(&why)),
            _ => Case::Failed(&failed),
        };
        suite.case(&class, "suite", ended);
    }
    suite.finish(&format!("cross/{}", c.suite))
}

#[cfg(test)]
mod tests {
    use super::junit;
    use crate::fleet::state::FleetState;

    /// junit.xml pinned byte for byte: a node's tests (as its iterations'
    /// TAP said), a node with none (not ready, unreachable), a cross suite skipped and one failed
    /// without a TAP; names escaped.
    #[test]
    fn junit_says_each_case_as_ci_readers_expect() {
        let node = |name: &str, phase: &str, reason: Option<&str>| {
            serde_json::json!({
                "name": name, "role": "fleet", "gate": true, "ssh": name, "phase": phase,
                "reason": reason, "iterations": 1, "preflight_findings": [], "connections": 1,
            })
        };
        let cross = |suite: &str, outcome: &str, reason: &str| {
            serde_json::json!({
                "suite": suite, "nodes": ["a", "b"], "runs_on": "a", "outcome": outcome,
                "reason": reason, "tests_passed": 0, "tests_failed": 0, "seconds": 0,
            })
        };
        let mut a = node("a", "failed", None);
        a["iteration_results"] = serde_json::json!([{
            "n": 1, "outcome": "failed",
            "tests": [
                { "name": "up", "outcome": "passed" },
                { "name": "lnd <runs>", "outcome": "failed" },
                { "name": "tor", "outcome": "skipped" },
            ],
        }]);
        let state: FleetState = serde_json::from_value(serde_json::json!({
            "roster": "fleet.toml", "bundle": "archy-gate", "bundle_sha256": "ab",
            "bundle_size": 1, "started": "t", "updated": "t",
            "nodes": [
                a,
                node("b", "not-ready", Some("bitcoin in IBD")),
                node("c", "unreachable", Some("ssh: refused")),
            ],
            "cross": [
                cross("fed", "skipped", "b not ready"),
                cross("mesh", "failed", "the run ended error"),
            ],
        }))
        .unwrap();
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="archy-gate fleet">
  <testsuite name="a" tests="3" failures="1" skipped="1">
    <testcase classname="a.iteration-1" name="up"/>
    <testcase classname="a.iteration-1" name="lnd &lt;runs&gt;"><failure message="failed"/></testcase>
    <testcase classname="a.iteration-1" name="tor"><skipped/></testcase>
  </testsuite>
  <testsuite name="b" tests="1" failures="0" skipped="1">
    <testcase classname="b" name="gate"><skipped message="not-ready: bitcoin in IBD"/></testcase>
  </testsuite>
  <testsuite name="c" tests="1" failures="1" skipped="0">
    <testcase classname="c" name="gate"><failure message="unreachable: ssh: refused"/></testcase>
  </testsuite>
  <testsuite name="cross/fed" tests="1" failures="0" skipped="1">
    <testcase classname="cross.fed" name="suite"><skipped message="b not ready"/></testcase>
  </testsuite>
  <testsuite name="cross/mesh" tests="1" failures="1" skipped="0">
    <testcase classname="cross.mesh" name="suite"><failure message="failed: the run ended error"/></testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(junit(&state), expected);
    }
}
