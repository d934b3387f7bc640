//! `report.html`: the fleet run for a person, at a glance. One file that
//! needs nothing else: inline CSS and SVG, no script, no font, no URL
//! outside the fleet dir (its only links are to the nodes' fetched
//! `gate.log`s, relative). A table per fleet phase with a row per node, the
//! failing tests with their lines in the node's log, a timeline of each
//! node's steps, and the tests x nodes x iterations matrix (`grid`). Every string a node or a bundle controls is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use camino::Utf8Path;

use super::state::{CrossOutcome, CrossResult, FleetState, NodeState, Phase};
mod grid;
mod timeline;

use super::view::{self, LogFailure, NodeRow};

use crate::human;
use crate::printable::printable;

/// Text (or an attribute's value) for HTML: control characters shown
/// escaped, as everywhere a person reads a node's strings, then the five
/// characters HTML gives a meaning.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every byte but ASCII letters and digits percent-encoded: safe in a path
/// segment and in a text fragment (where `-`, `,` and `&` mean something).
fn percent(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn log_href(node: &str) -> String {
    format!("nodes/{}/{}", percent(node), crate::runs::LOG)
}

fn seconds(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        crate::clock::duration(secs.round() as u64)
    }
}

/// `text`, cut to `max` characters with an ellipsis: a label that must fit.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// The CSS class of a node's phase: its colour everywhere.
fn tone(phase: Phase) -> &'static str {
    match phase {
        Phase::Passed => "good",
        Phase::Failed | Phase::Error | Phase::Unreachable | Phase::Misbehaving => "bad",
        Phase::NotReady | Phase::Interrupted => "warn",
        Phase::Skipped => "quiet",
        Phase::Pending
        | Phase::Connecting
        | Phase::Uploading
        | Phase::Preflight
        | Phase::Waiting
        | Phase::Running => "busy",
    }
}

fn cross_tone(outcome: CrossOutcome) -> &'static str {
    match outcome {
        CrossOutcome::Passed => "good",
        CrossOutcome::Failed => "bad",
        CrossOutcome::Skipped | CrossOutcome::Pending | CrossOutcome::Running => "quiet",
    }
}

fn badge(tone: &str, word: &str) -> String {
    format!("<span class=\"badge {tone}\">{}</span>", escape(word))
}

const STYLE: &str = include_str!("style.css");

/// The whole page. `dir` is the fleet dir: the nodes' logs are read from
/// it, and the page's links are relative to it.
pub fn render(dir: &Utf8Path, state: &FleetState) -> String {
    let failures: BTreeMap<String, Vec<LogFailure>> = state
        .nodes
        .iter()
        .filter(|n| n.tests.as_ref().is_some_and(|t| t.failed > 0))
        .map(|n| (n.name.clone(), view::log_failures(dir, &n.name)))
        .collect();
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>archy-gate fleet: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&view::verdict(state).0)
    );
    header(&mut out, state);
    timeline::render(&mut out, state);
    grid::render(&mut out, &super::matrix::Matrix::of(state), &failures);
    let primaries: Vec<&NodeState> = state
        .nodes
        .iter()
        .filter(|n| n.gate && n.role == super::roster::Role::Primary)
        .collect();
    let rest: Vec<&NodeState> = state
        .nodes
        .iter()
        .filter(|n| n.gate && n.role != super::roster::Role::Primary)
        .collect();
    node_table(
        &mut out,
        "primaries",
        "Phase 1",
        "Primary nodes",
        "They go first; the rest start only once every primary passed.",
        &primaries,
        &failures,
    );
    node_table(
        &mut out,
        "rest",
        "Phase 2",
        "The rest of the fleet",
        "Every other gate target, once the primaries passed.",
        &rest,
        &failures,
    );
    cross_table(&mut out, &state.cross);
    listed(&mut out, state);
    failing_section(&mut out, state, &failures);
    let _ = writeln!(
        out,
        "<footer>Written by archy-gate. Beside this file: <code>report.json</code> (the same numbers, \
         for machines), <code>report.md</code>, <code>junit.xml</code>, and each node's fetched run \
         in <code>nodes/NAME/</code> (<code>run.json</code>, <code>gate.log</code>, TAP and JUnit).</footer>\n</body>\n</html>"
    );
    out
}

fn header(out: &mut String, state: &FleetState) {
    let (text, good) = view::verdict(state);
    let verdict = if good { "good" } else { "bad" };
    let _ = writeln!(out, "<header>\n<h1>archy-gate fleet report</h1>");
    let _ = writeln!(
        out,
        "<div class=\"verdict {verdict}\" data-k=\"verdict\">{}</div>",
        escape(&text)
    );
    let bundle_name = state.bundle.file_name().unwrap_or(state.bundle.as_str());
    let _ = writeln!(
        out,
        "<p class=\"meta\">Bundle <code>{}</code>, {} ({} bytes), sha256 <code title=\"{}\">{}</code></p>",
        escape(bundle_name),
        human::size(state.bundle_size),
        state.bundle_size,
        escape(&state.bundle_sha256),
        escape(state.bundle_sha256.get(..16).unwrap_or(&state.bundle_sha256)),
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">Roster <code>{}</code>; started {}, updated {}</p>",
        escape(state.roster.as_str()),
        escape(&state.started),
        escape(&state.updated)
    );
    // How many nodes ended in each phase, in a fixed order.
    let mut counts: Vec<(Phase, usize)> = Vec::new();
    for n in &state.nodes {
        match counts.iter_mut().find(|(p, _)| *p == n.phase) {
            Some((_, c)) => *c += 1,
            None => counts.push((n.phase, 1)),
        }
    }
    counts.sort_by_key(|(p, _)| order(*p));
    out.push_str("<div class=\"chips\">");
    for (phase, count) in counts {
        let _ = write!(
            out,
            "<span class=\"chip {}\" data-phase-count=\"{}\">{count} {}</span>",
            tone(phase),
            phase.word(),
            phase.word()
        );
    }
    out.push_str("</div>\n</header>\n");
}

fn order(p: Phase) -> u8 {
    match p {
        Phase::Passed => 0,
        Phase::Failed => 1,
        Phase::Error => 2,
        Phase::Unreachable | Phase::Misbehaving => 3,
        Phase::NotReady | Phase::Waiting => 4,
        Phase::Interrupted => 5,
        Phase::Running => 6,
        Phase::Preflight => 7,
        Phase::Uploading => 8,
        Phase::Connecting => 9,
        Phase::Pending => 10,
        Phase::Skipped => 11,
    }
}

fn node_table(
    out: &mut String,
    key: &str,
    step: &str,
    title: &str,
    lead: &str,
    nodes: &[&NodeState],
    failures: &BTreeMap<String, Vec<LogFailure>>,
) {
    let _ = writeln!(
        out,
        "<section data-phase=\"{key}\">\n<h2><span class=\"step\">{step}</span>{title}</h2>\n<p class=\"lead\">{lead}</p>"
    );
    if nodes.is_empty() {
        out.push_str("<p class=\"none\">No node in this phase.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>node</th><th>result</th><th class=\"num\">iterations passed</th>\
         <th>tests</th><th>preflight</th><th>upload</th><th class=\"num\">time</th></tr></thead>\n",
    );
    for n in nodes {
        node_rows(out, n, failures.get(&n.name).map(Vec::as_slice));
    }
    out.push_str("</table>\n</section>\n");
}

/// A node's row, and under it a row of its failing tests when it has any:
/// one `<tbody>` per node.
fn node_rows(out: &mut String, n: &NodeState, failures: Option<&[LogFailure]>) {
    let row = NodeRow::of(n);
    let _ = write!(
        out,
        "<tbody data-node=\"{0}\" id=\"node-{0}\"><tr><td class=\"name\">{0}<span class=\"sub\">{1} · {2}</span></td>",
        escape(&n.name),
        row.role,
        escape(&n.ssh)
    );
    // A wait the reason does not already tell (it tells a vain one).
    let waited = row
        .waited
        .as_deref()
        .filter(|_| n.phase != Phase::NotReady)
        .map(|w| {
            format!(
                "<span class=\"reason\" data-k=\"waited\">{}</span>",
                escape(w)
            )
        });
    let _ = write!(
        out,
        "<td data-k=\"phase\">{}{}{}</td>",
        badge(tone(n.phase), &row.phase),
        row.reason
            .as_deref()
            .map(|r| format!("<span class=\"reason\">{}</span>", escape(r)))
            .unwrap_or_default(),
        waited.unwrap_or_default()
    );
    let _ = write!(
        out,
        "<td class=\"num big\" data-k=\"iterations\">{}</td>",
        row.iterations
    );
    match row.tests {
        Some((passed, failed, skipped)) => {
            let _ = write!(
                out,
                "<td class=\"tests\"><span data-k=\"passed\">{passed}</span> passed<br><span class=\"{}\"><span data-k=\"failed\">{failed}</span> failed</span><br><span data-k=\"skipped\">{skipped}</span> skipped</td>",
                if failed > 0 { "fails" } else { "" },
            );
        }
        None => out.push_str("<td class=\"tests\" data-k=\"tests\">-</td>"),
    }
    out.push_str("<td data-k=\"preflight\">");
    if !row.findings.is_empty() {
        out.push_str("<ul class=\"plain\">");
        for f in row.findings {
            let _ = write!(out, "<li>{}</li>", escape(f));
        }
        out.push_str("</ul>");
    } else if let Some(report) = &n.preflight {
        let _ = write!(out, "all {} checks passed", report.checks.len());
    } else {
        out.push('-');
    }
    out.push_str("</td>");
    out.push_str("<td data-k=\"upload\">");
    out.push_str(&escape(&row.upload));
    if let Some(u) = &n.upload {
        let _ = write!(
            out,
            "<span class=\"sub\">{} bytes sent in {} attempt{}</span>",
            u.sent,
            u.attempts,
            if u.attempts == 1 { "" } else { "s" }
        );
    }
    out.push_str("</td>");
    let _ = writeln!(
        out,
        "<td class=\"num\" data-k=\"time\">{}</td></tr>",
        row.duration
    );
    if !row.failing.is_empty() {
        out.push_str(
            "<tr class=\"detail\"><td></td><td colspan=\"6\" data-k=\"failing\"><span class=\"label\">failing tests</span><ul class=\"plain\">",
        );
        for name in row.failing {
            let _ = write!(out, "<li data-test=\"{0}\"><b>{0}</b>", escape(name));
            let seen = failures
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter(|(_, f)| &f.name == name);
            for (k, (index, f)) in seen.enumerate() {
                out.push_str(if k == 0 { " — " } else { ", " });
                let _ = write!(
                    out,
                    "<a href=\"{}#:~:text={}\">gate.log:{}</a> (<a href=\"#fail-{}-{index}\">{}</a>)",
                    log_href(&n.name),
                    percent(&f.excerpt[0]),
                    f.line,
                    escape(&n.name),
                    f.iteration
                        .map(|i| format!("iteration {i}"))
                        .unwrap_or_else(|| "output".into())
                );
            }
            out.push_str("</li>");
        }
        out.push_str("</ul></td></tr>\n");
    }
    if !n.fetch_refused.is_empty() || n.fetch_incomplete.is_some() {
        out.push_str(
            "<tr class=\"detail\"><td></td><td colspan=\"6\" data-k=\"not-kept\"><span class=\"label\">not kept from its run dir</span><ul class=\"plain\">",
        );
        for why in n.fetch_incomplete.iter().chain(&n.fetch_refused) {
            let _ = write!(out, "<li>{}</li>", escape(why));
        }
        out.push_str("</ul></td></tr>\n");
    }
    out.push_str("</tbody>\n");
}

fn cross_table(out: &mut String, cross: &[CrossResult]) {
    out.push_str(
        "<section data-phase=\"cross\">\n<h2><span class=\"step\">Phase 3</span>Cross-node suites</h2>\n\
         <p class=\"lead\">Suites that span several nodes, run once every gate target passed.</p>\n",
    );
    if cross.is_empty() {
        out.push_str(
            "<p class=\"none\">No cross-node suite ran in this fleet run.</p>\n</section>\n",
        );
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>suite</th><th>result</th><th>runs on</th><th>nodes</th>\
         <th class=\"num\">tests passed</th><th class=\"num\">failed</th><th class=\"num\">time</th></tr></thead>\n",
    );
    for c in cross {
        let _ = write!(
            out,
            "<tbody data-suite=\"{0}\"><tr><td class=\"name\">{0}</td><td data-k=\"outcome\">{1}{2}</td>\
             <td data-k=\"runs-on\">{3}</td><td data-k=\"nodes\">{4}</td>\
             <td class=\"num\" data-k=\"passed\">{5}</td><td class=\"num{6}\" data-k=\"failed\">{7}</td>\
             <td class=\"num\" data-k=\"time\">{8}</td></tr>",
            escape(&c.suite),
            badge(cross_tone(c.outcome), &c.outcome.word()),
            c.reason
                .as_deref()
                .map(|r| format!("<span class=\"reason\">{}</span>", escape(r)))
                .unwrap_or_default(),
            escape(&c.runs_on),
            escape(&c.nodes.join(", ")),
            c.tests_passed,
            if c.tests_failed > 0 { " bad" } else { "" },
            c.tests_failed,
            if c.outcome == CrossOutcome::Skipped {
                "-".into()
            } else {
                seconds(c.seconds as f64)
            }
        );
        scenario_steps(out, c);
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n</section>\n");
}

/// A scenario's steps under its suite's row: one line per step and node,
/// in the order they were set out, with attempts, how long it took to pass,
/// and the values it was given and published (names only).
fn scenario_steps(out: &mut String, c: &CrossResult) {
    let rows = super::view::step_rows(c);
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "<tr class=\"steps\"><td colspan=\"7\"><table class=\"steps\">\
         <thead><tr><th>step</th><th>node</th><th>result</th><th class=\"num\">attempts</th>\
         <th class=\"num\">took</th><th class=\"num\">passed after</th><th>given</th><th>published</th></tr></thead>\n",
    );
    for r in rows {
        let kind = match r.kind {
            "tests" => String::new(),
            kind => format!("<span class=\"sub\">{kind}</span>"),
        };
        let tone = match r.outcome.as_str() {
            "passed" => "good",
            "failed" => "bad",
            _ => "quiet",
        };
        let _ = writeln!(
            out,
            "<tr data-step=\"{0}\" data-node=\"{1}\"><td class=\"name\">{0}{kind}</td>\
             <td>{1}<span class=\"sub\">{2}</span></td><td data-s=\"outcome\">{3}{4}</td>\
             <td class=\"num\" data-s=\"attempts\">{5}</td><td class=\"num\" data-s=\"took\">{6}</td>\
             <td class=\"num\" data-s=\"passed-after\">{7}</td><td data-s=\"given\">{8}</td>\
             <td data-s=\"published\">{9}</td></tr>",
            escape(r.step),
            escape(r.node),
            escape(r.role),
            badge(tone, &r.outcome),
            r.reason
                .as_deref()
                .map(|why| format!("<span class=\"reason\">{}</span>", escape(why)))
                .unwrap_or_default(),
            r.attempts,
            r.took,
            r.passed_after,
            escape(&r.given),
            escape(&r.published),
        );
    }
    out.push_str("</table></td></tr>\n");
}

/// Nodes in the roster that are no gate target.
fn listed(out: &mut String, state: &FleetState) {
    let listed: Vec<&NodeState> = state.nodes.iter().filter(|n| !n.gate).collect();
    if listed.is_empty() {
        return;
    }
    out.push_str(
        "<section data-phase=\"listed\">\n<h2>Listed, not gate targets</h2>\n\
         <p class=\"lead\">In the roster with <code>gate = false</code>: nothing ran there.</p>\n\
         <table class=\"narrow\">\n<thead><tr><th>node</th><th>result</th></tr></thead>\n",
    );
    for n in listed {
        let _ = writeln!(
            out,
            "<tbody data-node=\"{0}\"><tr><td class=\"name\">{0}<span class=\"sub\">{1} · {2}</span></td><td data-k=\"phase\">{3}</td></tr></tbody>",
            escape(&n.name),
            n.role.word(),
            escape(&n.ssh),
            badge(tone(n.phase), &n.phase.word())
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// Each failing result line with the output bats printed under it.
fn failing_section(
    out: &mut String,
    state: &FleetState,
    failures: &BTreeMap<String, Vec<LogFailure>>,
) {
    if failures.values().all(Vec::is_empty) {
        return;
    }
    out.push_str(
        "<section data-phase=\"failures\">\n<h2>Failing tests</h2>\n\
         <p class=\"lead\">Each failing result as the node's log has it, with what the test printed.</p>\n",
    );
    for n in &state.nodes {
        for (index, f) in failures.get(&n.name).into_iter().flatten().enumerate() {
            let _ = writeln!(
                out,
                "<div class=\"failure\" id=\"fail-{0}-{index}\"><h3>{0} · {1} · {2} · <a href=\"{3}#:~:text={4}\">gate.log line {5}</a></h3>\n<pre>{6}</pre></div>",
                escape(&n.name),
                f.iteration
                    .map(|i| format!("iteration {i}"))
                    .unwrap_or_else(|| "output".into()),
                escape(&f.name),
                log_href(&n.name),
                percent(&f.excerpt[0]),
                f.line,
                f.excerpt
                    .iter()
                    .map(|l| escape(l))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::roster::Role;
    use crate::fleet::state::{
        CrossResult, IterationResult, Outcome, StepKind, TestResult, TimedStep, UploadStats,
    };
    use crate::reports::TestCounts;

    fn node(name: &str, role: Role, phase: Phase) -> NodeState {
        let mut n = NodeState::new(name, role, true, &format!("root@{name}"), 2, phase);
        n.connections = 1;
        n.started_unix = Some(1_000);
        n.ended_unix = Some(1_030);
        n
    }

    fn step(kind: StepKind, at: f64, secs: f64, outcome: Outcome) -> TimedStep {
        TimedStep {
            kind,
            started_unix: at,
            seconds: secs,
            outcome,
            detail: None,
        }
    }

    /// A fleet with a hostile node name and test name, a failing node
    /// with its log, and two cross-node suites.
    fn fleet(dir: &Utf8Path) -> FleetState {
        let mut prim = node("prim", Role::Primary, Phase::Passed);
        prim.iterations_passed = Some(2);
        prim.tests = Some(TestCounts {
            passed: 14,
            ..TestCounts::default()
        });
        prim.upload = Some(UploadStats {
            size: 4_000_000,
            sent: 4_000_000,
            attempts: 1,
            ..UploadStats::default()
        });
        prim.steps = vec![
            step(StepKind::Upload, 1_000.5, 2.0, Outcome::Passed),
            step(StepKind::Preflight, 1_002.5, 1.0, Outcome::Passed),
            step(StepKind::Iteration(1), 1_004.0, 10.0, Outcome::Passed),
            step(StepKind::Iteration(2), 1_014.0, 10.0, Outcome::Passed),
            step(
                StepKind::Cross("<pair>".into()),
                1_040.0,
                5.0,
                Outcome::Failed,
            ),
        ];
        let mut bad = node("bad<script>&", Role::Fleet, Phase::Failed);
        bad.started_unix = Some(1_030);
        bad.ended_unix = Some(1_050);
        bad.iterations_passed = Some(0);
        bad.tests = Some(TestCounts {
            passed: 12,
            failed: 2,
            skipped: 0,
            failing: vec!["every package is <healthy> & \"up\"".into()],
            sources: Vec::new(),
        });
        let run = |n: u32, second: Outcome| IterationResult {
            n,
            outcome: Outcome::Failed,
            tests: vec![
                TestResult {
                    name: "health".into(),
                    outcome: Outcome::Passed,
                    ms: None,
                    output: Vec::new(),
                },
                TestResult {
                    name: "every package is <healthy> & \"up\"".into(),
                    outcome: second,
                    ms: None,
                    output: Vec::new(),
                },
            ],
        };
        bad.iteration_results = vec![run(1, Outcome::Failed), run(2, Outcome::Failed)];
        bad.steps = vec![
            step(StepKind::Iteration(1), 1_031.0, 9.0, Outcome::Failed),
            step(StepKind::Iteration(2), 1_040.0, 9.0, Outcome::Failed),
        ];
        let log_dir = dir.join("nodes").join("bad<script>&");
        std::fs::create_dir_all(&log_dir).unwrap();
        std::fs::write(
            log_dir.join("gate.log"),
            "# iteration 1 of 2\n1..7\nok 1 health\nnot ok 2 every package is <healthy> & \"up\"\n# (in test file tests/10.bats, line 9)\n#   `false' failed\n# lnd: \x1b[31mstopped\nok 3 more\n# iteration 2 of 2\nnot ok 2 every package is <healthy> & \"up\"\n",
        )
        .unwrap();
        let mut syncing = node("syncing", Role::Fleet, Phase::NotReady);
        syncing.started_unix = Some(1_030);
        syncing.ended_unix = Some(1_033);
        syncing.steps = vec![
            step(StepKind::Upload, 1_030.2, 1.5, Outcome::Skipped),
            step(StepKind::Preflight, 1_031.7, 1.0, Outcome::Failed),
        ];
        syncing.reason = Some("bitcoin-synced: in initial block download".into());
        syncing.preflight_findings = vec!["bitcoin-synced: in initial block download".into()];
        let mut listed = node("dev1", Role::Dev, Phase::Skipped);
        listed.gate = false;
        listed.started_unix = None;
        listed.ended_unix = None;
        FleetState {
            roster: "fleet.toml".into(),
            bundle: "out/archy-gate".into(),
            bundle_sha256: "ab".repeat(32),
            bundle_size: 4_000_000,
            started: "2026-01-01T00:00:00Z".into(),
            updated: "2026-01-01T00:01:00Z".into(),
            nodes: vec![prim, bad, syncing, listed],
            cross: vec![
                CrossResult {
                    suite: "<pair>".into(),
                    nodes: vec!["prim".into(), "bad<script>&".into()],
                    runs_on: "prim".into(),
                    outcome: CrossOutcome::Failed,
                    reason: Some("channel <open> failed".into()),
                    tests_passed: 3,
                    tests_failed: 1,
                    seconds: 5,
                    run_id: Some("f-1-x-prim".into()),
                    failing: vec!["peer <b> answers".into()],
                    started_unix: Some(1_767_225_630),
                    tests: Vec::new(),
                    scenario: false,
                    steps: Vec::new(),
                    values: Default::default(),
                },
                CrossResult {
                    suite: "payments".into(),
                    nodes: vec!["prim".into(), "syncing".into()],
                    runs_on: "prim".into(),
                    outcome: CrossOutcome::Skipped,
                    reason: Some("syncing is not-ready".into()),
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
                },
            ],
        }
    }

    fn rendered() -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8Path::from_path(dir.path()).unwrap();
        render(path, &fleet(path))
    }

    #[test]
    fn nothing_outside_the_file_is_fetched() {
        let html = rendered();
        for outside in [
            "http:", "https:", "src=", "url(", "@import", "<script", "<link", "<iframe", "<object",
            "<embed", "//",
        ] {
            assert!(!html.contains(outside), "{outside} in the report");
        }
        // The only links: within the page, or to a node's fetched log.
        for href in html.split("href=\"").skip(1) {
            assert!(
                href.starts_with('#') || href.starts_with("nodes/"),
                "{}",
                &href[..href.len().min(80)]
            );
        }
    }

    #[test]
    fn every_node_string_is_escaped() {
        let html = rendered();
        assert!(!html.contains("<script"), "a node name became markup");
        assert!(!html.contains("<healthy>"));
        assert!(!html.contains("<pair>"));
        assert!(!html.contains("<open>"));
        assert!(!html.contains('\x1b'), "a control character got through");
        assert!(html.contains("bad&lt;script&gt;&amp;"));
        assert!(html.contains("every package is &lt;healthy&gt; &amp; &quot;up&quot;"));
        assert!(html.contains("\\x1b[31mstopped"));
        // The log link names the node's dir percent-encoded.
        assert!(html.contains("href=\"nodes/bad%3Cscript%3E%26/gate.log#:~:text=not%20ok%202"));
    }

    #[test]
    fn failing_tests_link_to_their_lines_in_each_iteration() {
        let html = rendered();
        assert!(
            html.contains(
                ">gate.log:4</a> (<a href=\"#fail-bad&lt;script&gt;&amp;-0\">iteration 1</a>)"
            ),
            "{html}"
        );
        assert!(html.contains(
            ">gate.log:10</a> (<a href=\"#fail-bad&lt;script&gt;&amp;-1\">iteration 2</a>)"
        ));
        // The excerpt: the result line and bats' diagnostics under it, no more.
        let excerpt = html
            .split("id=\"fail-bad&lt;script&gt;&amp;-0\"")
            .nth(1)
            .unwrap();
        let pre = &excerpt[excerpt.find("<pre>").unwrap()..excerpt.find("</pre>").unwrap()];
        assert!(pre.contains("tests/10.bats, line 9"), "{pre}");
        assert!(!pre.contains("ok 3 more"), "{pre}");
    }

    /// The matrix: a square per iteration, each failed one linked to its
    /// failure on the page (by iteration, as the log says it).
    #[test]
    fn each_failed_square_links_to_its_failure() {
        let html = rendered();
        let grid = html.split("data-phase=\"matrix\"").nth(1).unwrap();
        let grid = &grid[..grid.find("</section>").unwrap()];
        let row = grid
            .split("<tr data-test=\"every package is &lt;healthy&gt; &amp; &quot;up&quot;\">")
            .nth(1)
            .unwrap();
        let row = &row[..row.find("</tr>").unwrap()];
        let bad = row
            .split("data-cell=\"bad&lt;script&gt;&amp;\" data-verdict=\"failing\"")
            .nth(1)
            .unwrap();
        for (i, index, line) in [(1, 0, 4), (2, 1, 10)] {
            assert!(
                bad.contains(&format!(
                    "<a class=\"c fail\" data-i=\"{i}\" data-mark=\"fail\" href=\"#fail-bad&lt;script&gt;&amp;-{index}\" title=\"iteration {i}: failed, gate.log line {line}\">"
                )),
                "{bad}"
            );
        }
        assert!(bad.contains("<b class=\"tag\">failing</b>"), "{bad}");
        // The primary ran no test the matrix knows: not run, twice.
        assert!(
            row.contains("data-cell=\"prim\" data-verdict=\"not-run\""),
            "{row}"
        );
        assert!(grid.contains("0 tests flaky"), "{grid}");
        assert!(grid.contains("1 test always failing"), "{grid}");
    }

    #[test]
    fn every_phase_and_node_has_its_place() {
        let html = rendered();
        for phase in [
            "primaries",
            "rest",
            "cross",
            "listed",
            "timeline",
            "matrix",
            "failures",
        ] {
            assert!(html.contains(&format!("data-phase=\"{phase}\"")), "{phase}");
        }
        for name in ["prim", "bad&lt;script&gt;&amp;", "syncing", "dev1"] {
            assert!(
                html.contains(&format!("<tbody data-node=\"{name}\"")),
                "{name}"
            );
        }
        // The timeline has the gate nodes, not the listed one.
        for name in ["prim", "bad&lt;script&gt;&amp;", "syncing"] {
            assert!(html.contains(&format!("<g data-node=\"{name}\"")), "{name}");
        }
        assert!(!html.contains("<g data-node=\"dev1\""));
        assert!(html.contains("1 of 3 gate nodes passed, 0 of 2 cross-node suites passed"));
    }

    #[test]
    fn cross_node_suites_get_their_table() {
        let html = rendered();
        let cross = html.split("data-phase=\"cross\"").nth(1).unwrap();
        let cross = &cross[..cross.find("</section>").unwrap()];
        assert!(
            cross.contains("<tbody data-suite=\"&lt;pair&gt;\">"),
            "{cross}"
        );
        assert!(cross.contains("channel &lt;open&gt; failed"));
        assert!(cross.contains("<td data-k=\"runs-on\">prim</td><td data-k=\"nodes\">prim, bad&lt;script&gt;&amp;</td>"));
        assert!(cross.contains("data-k=\"passed\">3</td>"));
        assert!(cross.contains("data-k=\"failed\">1</td>"));
        assert!(cross.contains("<tbody data-suite=\"payments\">"));
        assert!(cross.contains(">skipped</span>"));
        assert!(cross.contains("syncing is not-ready"));
        // The suite's step on its node's timeline row, after the phase mark.
        assert!(html.contains("data-step=\"cross: &lt;pair&gt;\" data-outcome=\"failed\""));
        assert!(html.contains(">cross-node suites</text>"));
    }

    #[test]
    fn an_older_state_without_steps_or_cross_still_renders() {
        // Its own temp dir: `fleet` writes a node's log beneath it.
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8Path::from_path(dir.path()).unwrap();
        let mut state = fleet(path);
        let mut json = serde_json::to_value(&state).unwrap();
        json.as_object_mut().unwrap().remove("cross");
        for n in json["nodes"].as_array_mut().unwrap() {
            n.as_object_mut().unwrap().remove("steps");
        }
        state = serde_json::from_value(json).unwrap();
        assert!(state.cross.is_empty());
        let html = render(path, &state);
        assert!(html.contains("No cross-node suite ran"));
        assert!(html.contains("<g data-node=\"prim\""));
    }
}
