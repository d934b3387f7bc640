//! The fleet's reports: `report.json` (the state and the flakiness matrix,
//! for machines), `report.md` (a table a person reads, then the flaky and
//! the always-failing tests), `report.html` (the same, with a timeline and
//! the matrix drawn: `html/`), `junit.xml` (one testsuite per node, a
//! testcase per test over its iterations, flaky ones marked as surefire and
//! nextest mark them; and one per cross-node suite).

use std::fmt::Write as _;

use anyhow::Context;
use camino::Utf8Path;

use super::matrix::{Mark, Matrix, TestOnNode, TestVerdict};
use super::state::{
    CrossOutcome, CrossResult, FleetState, NodeState, Outcome, Phase, StepKind, TestResult,
};
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
            "report.json" => json(state)?,
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

/// report.json: the state as state.json has it, and `matrix` (tests ×
/// gate nodes × iterations, each test's verdict on each node: `matrix.rs`).
pub fn json(state: &FleetState) -> anyhow::Result<Vec<u8>> {
    let mut value = serde_json::to_value(state)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("matrix".into(), serde_json::to_value(Matrix::of(state))?);
    }
    let mut json = serde_json::to_vec_pretty(&value)?;
    json.push(b'\n');
    Ok(json)
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
    flaky_and_failing(&mut out, &Matrix::of(state));
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

/// The flaky tests, then the always-failing ones, each on its node: two
/// lists, because a flake and a broken test call for different work.
fn flaky_and_failing(out: &mut String, matrix: &Matrix) {
    if matrix.tests.is_empty() {
        return;
    }
    let flaky = matrix.with(TestVerdict::Flaky);
    let _ = writeln!(
        out,
        "\n## Flaky tests\n\nPassed in some iterations and failed in others, on the same node.\n"
    );
    if flaky.is_empty() {
        let _ = writeln!(out, "None.");
    } else {
        let _ = writeln!(
            out,
            "| test | node | failed in | passed in |\n|---|---|---|---|"
        );
        for (test, on) in flaky {
            let passed: Vec<String> = on.marked(Mark::Pass).iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                escape(test),
                escape(&on.node),
                on.failed_in_words(),
                passed.join(", ")
            );
        }
    }
    let failing = matrix.with(TestVerdict::Failing);
    let _ = writeln!(
        out,
        "\n## Always failing\n\nFailed, and never passed, on the node.\n"
    );
    if failing.is_empty() {
        let _ = writeln!(out, "None.");
    } else {
        let _ = writeln!(out, "| test | node | failed in |\n|---|---|---|");
        for (test, on) in failing {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                escape(test),
                escape(&on.node),
                on.failed_in_words()
            );
        }
    }
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

/// Lines of a node's output as XML text: each line as [`xml`] has it, the
/// line breaks kept.
fn xml_lines(lines: &[String]) -> String {
    lines.iter().map(|l| xml(l)).collect::<Vec<_>>().join("\n")
}

/// Seconds as JUnit's schema takes them (surefire's `SUREFIRE_TIME`: at
/// most three decimals).
fn junit_secs(secs: f64) -> String {
    format!("{:.3}", secs.max(0.0))
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

/// What a suite's testsuite element says of itself beside its counts.
struct SuiteHead<'a> {
    name: String,
    /// The whole suite's length, when known.
    seconds: Option<f64>,
    /// When it began, unix seconds on this host's clock.
    began: Option<f64>,
    hostname: &'a str,
}

impl Suite {
    fn open(&mut self, class: &str, name: &str, time: Option<f64>) {
        self.tests += 1;
        let _ = write!(
            self.cases,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(class),
            xml(name)
        );
        if let Some(secs) = time {
            let _ = write!(self.cases, " time=\"{}\"", junit_secs(secs));
        }
    }

    fn case(&mut self, class: &str, name: &str, ended: Case) {
        self.open(class, name, None);
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

    /// A gate test over a node's iterations: one testcase. Failed in every
    /// iteration it ran: a `<failure>` with the first failure's output,
    /// then a `<rerunFailure>` per further failed iteration (surefire's
    /// reruns). Flaky: still a `<failure>` (the gate needs every iteration
    /// green), saying "flaky", and a `<flakyFailure>` per failed iteration,
    /// as nextest and surefire mark a flaky test. Every failed iteration's
    /// output is in `<system-out>` too, each headed by its iteration.
    fn gate_test(&mut self, class: &str, test: &str, on: &TestOnNode, runs: &[(u32, &TestResult)]) {
        let timed: Vec<u64> = runs.iter().filter_map(|(_, t)| t.ms).collect();
        let time = (!timed.is_empty()).then(|| timed.iter().sum::<u64>() as f64 / 1000.0);
        self.open(class, test, time);
        let failed: Vec<&(u32, &TestResult)> = runs
            .iter()
            .filter(|(_, t)| matches!(t.outcome, Outcome::Failed | Outcome::Error))
            .collect();
        let (kind, message, interim) = match on.verdict {
            TestVerdict::Passed => {
                let _ = writeln!(self.cases, "/>");
                return;
            }
            TestVerdict::Skipped | TestVerdict::NotRun => {
                self.skipped += 1;
                let _ = writeln!(
                    self.cases,
                    "><skipped message=\"skipped in every iteration\"/></testcase>"
                );
                return;
            }
            TestVerdict::Flaky => (
                "flaky",
                format!("flaky: failed in {}", on.failed_in_words()),
                "flakyFailure",
            ),
            TestVerdict::Failing => (
                "failed",
                format!("failed in {}", on.failed_in_words()),
                "rerunFailure",
            ),
        };
        self.failures += 1;
        let output = |t: &TestResult| xml_lines(&t.output);
        let _ = write!(
            self.cases,
            ">\n      <failure type=\"{kind}\" message=\"{}\"",
            xml(&message)
        );
        let _ = match failed.first().map(|(_, t)| output(t)) {
            Some(first) if !first.is_empty() => writeln!(self.cases, ">{first}</failure>"),
            _ => writeln!(self.cases, "/>"),
        };
        // A rerun is every failure after the first; a flake, every failure.
        let skip = usize::from(on.verdict == TestVerdict::Failing);
        for (n, t) in failed.iter().skip(skip) {
            let _ = writeln!(
                self.cases,
                "      <{interim} type=\"failed\" message=\"iteration {n}\"><system-out>{}</system-out></{interim}>",
                output(t)
            );
        }
        let mut all = Vec::new();
        for (n, t) in &failed {
            all.push(format!("# iteration {n}: not ok {}", t.name));
            all.extend(t.output.iter().cloned());
        }
        let _ = writeln!(
            self.cases,
            "      <system-out>{}</system-out>\n    </testcase>",
            xml_lines(&all)
        );
    }

    fn finish(self, head: SuiteHead) -> String {
        let mut attrs = format!(
            "name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\"",
            xml(&head.name),
            self.tests,
            self.failures,
            self.skipped
        );
        if let Some(secs) = head.seconds {
            let _ = write!(attrs, " time=\"{}\"", junit_secs(secs));
        }
        if let Some(began) = head.began {
            let _ = write!(
                attrs,
                " timestamp=\"{}\"",
                crate::clock::rfc3339(began.max(0.0) as u64)
            );
        }
        let _ = write!(attrs, " hostname=\"{}\"", xml(head.hostname));
        format!("  <testsuite {attrs}>\n{}  </testsuite>\n", self.cases)
    }
}

/// One testsuite per gate node (its tests over its iterations, as read
/// from each iteration's TAP when fetched, or a single testcase saying why
/// it has none), then one per cross suite. JUnit's testcase has no
/// timestamp (the schema CI tools use has none), so the testsuite carries
/// it: when the node's first iteration began, on this host's clock. No
/// result is an `<error>`: `errors` is always 0.
pub fn junit(state: &FleetState) -> String {
    let matrix = Matrix::of(state);
    let mut suites = Vec::new();
    let mut totals = (0, 0);
    for n in state.nodes.iter().filter(|n| n.gate) {
        let mut suite = Suite::default();
        for row in &matrix.tests {
            let Some(on) = row.nodes.iter().find(|t| t.node == n.name) else {
                continue;
            };
            let runs: Vec<(u32, &TestResult)> = n
                .iteration_results
                .iter()
                .filter_map(|i| Some((i.n, i.tests.iter().find(|t| t.name == row.test)?)))
                .collect();
            if !runs.is_empty() {
                suite.gate_test(&n.name, &row.test, on, &runs);
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
        let iterations: Vec<_> = n
            .steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Iteration(_)))
            .collect();
        let head = SuiteHead {
            name: n.name.clone(),
            seconds: (!iterations.is_empty()).then(|| iterations.iter().map(|s| s.seconds).sum()),
            began: iterations
                .first()
                .map(|s| s.started_unix)
                .or(n.started_unix.map(|s| s as f64)),
            hostname: &n.name,
        };
        totals.0 += suite.tests;
        totals.1 += suite.failures;
        suites.push(suite.finish(head));
    }
    for c in &state.cross {
        let (suite, head) = cross_junit(c);
        totals.0 += suite.tests;
        totals.1 += suite.failures;
        suites.push(suite.finish(head));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"archy-gate fleet\" tests=\"{}\" failures=\"{}\" errors=\"0\">\n{}</testsuites>\n",
        totals.0,
        totals.1,
        suites.concat()
    )
}

/// A cross suite's testsuite: its tests (as its TAP said when fetched), or
/// one testcase saying why it has none.
fn cross_junit(c: &CrossResult) -> (Suite, SuiteHead<'_>) {
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
    let ran = !matches!(c.outcome, CrossOutcome::Skipped | CrossOutcome::Pending);
    let head = SuiteHead {
        name: format!("cross/{}", c.suite),
        seconds: ran.then_some(c.seconds as f64),
        began: c.started_unix.map(|s| s as f64),
        hostname: &c.runs_on,
    };
    (suite, head)
}

#[cfg(test)]
mod tests {
    use super::junit;
    use crate::fleet::state::FleetState;

    /// junit.xml pinned byte for byte: a node's tests over its two
    /// iterations (as their TAP said: a pass with times, a flaky test, one
    /// failed in both, one skipped), a node with none (not ready,
    /// unreachable), a cross suite skipped and one failed without a TAP;
    /// names and output escaped.
    #[test]
    fn junit_says_each_case_as_ci_readers_expect() {
        let node = |name: &str, phase: &str, reason: Option<&str>| {
            serde_json::json!({
                "name": name, "role": "fleet", "gate": true, "ssh": name, "phase": phase,
                "reason": reason, "iterations": 2, "preflight_findings": [], "connections": 1,
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
                { "name": "up", "outcome": "passed", "ms": 12 },
                { "name": "lnd <runs>", "outcome": "failed", "ms": 3051,
                  "output": ["# (in test file tests/10.bats, line 9)", "#   `[ -e <x> ]' failed"] },
                { "name": "tor", "outcome": "skipped" },
                { "name": "btc", "outcome": "failed" },
            ],
        }, {
            "n": 2, "outcome": "failed",
            "tests": [
                { "name": "up", "outcome": "passed", "ms": 10 },
                { "name": "lnd <runs>", "outcome": "passed", "ms": 2000 },
                { "name": "tor", "outcome": "skipped" },
                { "name": "btc", "outcome": "failed", "output": ["# boom & bust"] },
            ],
        }]);
        a["steps"] = serde_json::json!([
            { "kind": "upload", "started_unix": 1767225590.0, "seconds": 2.0, "outcome": "passed" },
            { "kind": { "iteration": 1 }, "started_unix": 1767225600.4, "seconds": 4.5, "outcome": "failed" },
            { "kind": { "iteration": 2 }, "started_unix": 1767225604.9, "seconds": 3.2505, "outcome": "failed" },
        ]);
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
<testsuites name="archy-gate fleet" tests="8" failures="4" errors="0">
  <testsuite name="a" tests="4" failures="2" errors="0" skipped="1" time="7.751" timestamp="2026-01-01T00:00:00Z" hostname="a">
    <testcase classname="a" name="up" time="0.022"/>
    <testcase classname="a" name="lnd &lt;runs&gt;" time="5.051">
      <failure type="flaky" message="flaky: failed in iteration 1 of 2"># (in test file tests/10.bats, line 9)
#   `[ -e &lt;x&gt; ]' failed</failure>
      <flakyFailure type="failed" message="iteration 1"><system-out># (in test file tests/10.bats, line 9)
#   `[ -e &lt;x&gt; ]' failed</system-out></flakyFailure>
      <system-out># iteration 1: not ok lnd &lt;runs&gt;
# (in test file tests/10.bats, line 9)
#   `[ -e &lt;x&gt; ]' failed</system-out>
    </testcase>
    <testcase classname="a" name="tor"><skipped message="skipped in every iteration"/></testcase>
    <testcase classname="a" name="btc">
      <failure type="failed" message="failed in iterations 1 and 2 of 2"/>
      <rerunFailure type="failed" message="iteration 2"><system-out># boom &amp; bust</system-out></rerunFailure>
      <system-out># iteration 1: not ok btc
# iteration 2: not ok btc
# boom &amp; bust</system-out>
    </testcase>
  </testsuite>
  <testsuite name="b" tests="1" failures="0" errors="0" skipped="1" hostname="b">
    <testcase classname="b" name="gate"><skipped message="not-ready: bitcoin in IBD"/></testcase>
  </testsuite>
  <testsuite name="c" tests="1" failures="1" errors="0" skipped="0" hostname="c">
    <testcase classname="c" name="gate"><failure message="unreachable: ssh: refused"/></testcase>
  </testsuite>
  <testsuite name="cross/fed" tests="1" failures="0" errors="0" skipped="1" hostname="a">
    <testcase classname="cross.fed" name="suite"><skipped message="b not ready"/></testcase>
  </testsuite>
  <testsuite name="cross/mesh" tests="1" failures="1" errors="0" skipped="0" time="0.000" hostname="a">
    <testcase classname="cross.mesh" name="suite"><failure message="failed: the run ended error"/></testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(junit(&state), expected);
    }
}
