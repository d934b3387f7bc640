//! `report.html`: the fleet run for a person, at a glance. One file that
//! needs nothing else: inline CSS and SVG, no script, no font, no URL
//! outside the fleet dir (its only links are to the nodes' fetched
//! `gate.log`s, relative). A table per fleet phase with a row per node, the
//! failing tests with their lines in the node's log, and a timeline of each
//! node's steps. Every string a node or a bundle controls is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use camino::Utf8Path;

use super::state::{
    CrossOutcome, CrossResult, FleetState, NodeState, Outcome, Phase, Step, StepKind,
};
use crate::human;
use crate::printable::printable;
use crate::reports;

/// The most of a node's gate.log read for the failing tests' lines.
const LOG_LIMIT: u64 = 32 << 20;
/// Lines of a failing test's output shown under it.
const EXCERPT_LINES: usize = 14;
const EXCERPT_WIDTH: usize = 240;

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

/// A failing test's result line in a node's gate.log.
#[derive(Debug)]
struct LogFailure {
    name: String,
    iteration: Option<u32>,
    /// 1-based.
    line: usize,
    /// The result line and the diagnostics after it.
    excerpt: Vec<String>,
}

/// The failing result lines of `log` (TAP `not ok`), with the iteration
/// each fell in (run-gate.sh's `# iteration N of M` lines) and bats'
/// diagnostic lines (`# …`) after each.
fn log_failures(log: &str) -> Vec<LogFailure> {
    let lines: Vec<&str> = log.lines().collect();
    let mut iteration = None;
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(n) = line
            .strip_prefix("# iteration ")
            .and_then(|rest| rest.split_once(" of "))
            .and_then(|(n, _)| n.parse().ok())
        {
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
                    || more.starts_with("# iteration ")
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

fn read_log(dir: &Utf8Path, node: &str) -> String {
    super::fetch::read_text(
        &dir.join("nodes").join(node).join(crate::runs::LOG),
        LOG_LIMIT,
    )
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

fn role(n: &NodeState) -> String {
    format!("{:?}", n.role).to_lowercase()
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

const STYLE: &str = r#"
:root { --good:#15803d; --bad:#b91c1c; --warn:#b45309; --quiet:#6b7280; --busy:#1d4ed8;
  --line:#e5e7eb; --ink:#111827; --soft:#4b5563; }
* { box-sizing: border-box; }
body { margin: 0; padding: 28px 36px 48px; color: var(--ink); background: #f8fafc;
  font: 14px/1.45 system-ui, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0; }
h2 .step { color: var(--soft); font-weight: 600; margin-right: 6px; }
header, section { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 22px; margin: 0 0 18px; }
.verdict { font-size: 20px; font-weight: 700; margin: 8px 0 6px; }
.verdict.good { color: var(--good); } .verdict.bad { color: var(--bad); }
.meta { color: var(--soft); margin: 2px 0; }
.meta code, td code { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; }
.chips { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; }
.chip { border-radius: 999px; padding: 2px 12px; font-weight: 600; border: 1px solid; }
.chip.good { color: var(--good); border-color: #86efac; background: #f0fdf4; }
.chip.bad { color: var(--bad); border-color: #fca5a5; background: #fef2f2; }
.chip.warn { color: var(--warn); border-color: #fcd34d; background: #fffbeb; }
.chip.quiet { color: var(--quiet); border-color: #d1d5db; background: #f9fafb; }
.chip.busy { color: var(--busy); border-color: #93c5fd; background: #eff6ff; }
.lead { color: var(--soft); margin: 2px 0 12px; }
table { border-collapse: collapse; width: 100%; }
table.narrow { width: auto; min-width: 40%; }
th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--soft); border-bottom: 2px solid var(--line); padding: 6px 10px; white-space: nowrap; }
td { padding: 8px 10px; vertical-align: top; }
tbody + tbody { border-top: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num.bad, .fails { color: var(--bad); font-weight: 700; }
td.big { font-size: 15px; font-weight: 700; }
td.tests { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.detail td { padding-top: 0; }
.label { display: block; font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--bad); font-weight: 700; margin-bottom: 2px; }
td.name { font-weight: 700; white-space: nowrap; }
.sub { display: block; color: var(--soft); font-size: 12px; font-weight: 400; }
.badge { display: inline-block; border-radius: 6px; padding: 1px 8px; font-weight: 700;
  font-size: 12.5px; color: #fff; white-space: nowrap; }
.badge.good { background: var(--good); } .badge.bad { background: var(--bad); }
.badge.warn { background: #d97706; } .badge.quiet { background: #9ca3af; }
.badge.busy { background: var(--busy); }
.reason { display: block; margin-top: 4px; color: var(--soft); max-width: 52ch; }
ul.plain { margin: 0; padding-left: 16px; }
ul.plain li { margin: 0 0 3px; }
a { color: #1d4ed8; }
.none { color: var(--soft); font-style: italic; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 8px; color: var(--soft); font-size: 12.5px; }
.legend i { display: inline-block; width: 14px; height: 10px; border-radius: 2px; margin-right: 5px; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
.failure { margin: 0 0 14px; }
.failure h3 { font-size: 14px; margin: 0 0 4px; }
pre { background: #0f172a; color: #e2e8f0; border-radius: 8px; padding: 10px 12px; margin: 0;
  overflow-x: auto; font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; }
footer { color: var(--soft); font-size: 12.5px; }
@media print { body { background: #fff; padding: 0; } header, section { break-inside: avoid; } }
"#;

/// The whole page. `dir` is the fleet dir: the nodes' logs are read from
/// it, and the page's links are relative to it.
pub fn render(dir: &Utf8Path, state: &FleetState) -> String {
    let failures: BTreeMap<String, Vec<LogFailure>> = state
        .nodes
        .iter()
        .filter(|n| n.tests.as_ref().is_some_and(|t| t.failed > 0))
        .map(|n| (n.name.clone(), log_failures(&read_log(dir, &n.name))))
        .collect();
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>archy-gate fleet: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&summary(state).0)
    );
    header(&mut out, state);
    timeline(&mut out, state);
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

/// The verdict line, and its tone.
fn summary(state: &FleetState) -> (String, &'static str) {
    let gate: Vec<&NodeState> = state.nodes.iter().filter(|n| n.gate).collect();
    let passed = gate.iter().filter(|n| n.phase == Phase::Passed).count();
    let cross_bad = state
        .cross
        .iter()
        .filter(|c| c.outcome != CrossOutcome::Passed)
        .count();
    let mut text = format!("{passed} of {} gate nodes passed", gate.len());
    if !state.cross.is_empty() {
        let _ = write!(
            text,
            ", {} of {} cross-node suites passed",
            state.cross.len() - cross_bad,
            state.cross.len()
        );
    }
    let good = passed == gate.len() && cross_bad == 0;
    (text, if good { "good" } else { "bad" })
}

fn header(out: &mut String, state: &FleetState) {
    let (text, verdict) = summary(state);
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
        Phase::NotReady => 4,
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
    let _ = write!(
        out,
        "<tbody data-node=\"{0}\" id=\"node-{0}\"><tr><td class=\"name\">{0}<span class=\"sub\">{1} · {2}</span></td>",
        escape(&n.name),
        role(n),
        escape(&n.ssh)
    );
    // The reason, unless it only repeats the failing tests or the
    // preflight findings shown beside it.
    let findings = n.preflight_findings.join("; ");
    let reason = match n.reason.as_deref() {
        Some(_) if matches!(n.phase, Phase::Passed | Phase::Failed) && n.tests.is_some() => None,
        Some(r) if !findings.is_empty() && r == findings => Some(format!(
            "{} preflight check{} failed",
            n.preflight_findings.len(),
            if n.preflight_findings.len() == 1 {
                ""
            } else {
                "s"
            }
        )),
        r => r.map(str::to_string),
    };
    let _ = write!(
        out,
        "<td data-k=\"phase\">{}{}</td>",
        badge(tone(n.phase), &n.phase.word()),
        reason
            .map(|r| format!("<span class=\"reason\">{}</span>", escape(&r)))
            .unwrap_or_default()
    );
    let iterations = match n.iterations_passed {
        Some(p) => format!("{p} of {}", n.iterations),
        None => "-".into(),
    };
    let _ = write!(
        out,
        "<td class=\"num big\" data-k=\"iterations\">{iterations}</td>"
    );
    match &n.tests {
        Some(t) => {
            let _ = write!(
                out,
                "<td class=\"tests\"><span data-k=\"passed\">{}</span> passed<br><span class=\"{}\"><span data-k=\"failed\">{}</span> failed</span><br><span data-k=\"skipped\">{}</span> skipped</td>",
                t.passed,
                if t.failed > 0 { "fails" } else { "" },
                t.failed,
                t.skipped
            );
        }
        None => out.push_str("<td class=\"tests\" data-k=\"tests\">-</td>"),
    }
    out.push_str("<td data-k=\"preflight\">");
    if !n.preflight_findings.is_empty() {
        out.push_str("<ul class=\"plain\">");
        for f in &n.preflight_findings {
            let _ = write!(out, "<li>{}</li>", escape(f));
        }
        out.push_str("</ul>");
    } else if let Some(checks) = n
        .preflight
        .as_ref()
        .and_then(|p| p["checks"].as_array().map(Vec::len))
    {
        let _ = write!(out, "all {checks} checks passed");
    } else {
        out.push('-');
    }
    out.push_str("</td>");
    out.push_str("<td data-k=\"upload\">");
    match &n.upload {
        Some(u) => {
            let what = if u.skipped {
                "already there".to_string()
            } else if u.resent > 0 {
                format!(
                    "sent {}, resumed ({} re-sent)",
                    human::size(u.sent),
                    human::size(u.resent)
                )
            } else {
                format!("sent {}", human::size(u.sent))
            };
            let _ = write!(
                out,
                "{what}<span class=\"sub\">{} bytes sent in {} attempt{}</span>",
                u.sent,
                u.attempts,
                if u.attempts == 1 { "" } else { "s" }
            );
        }
        None => out.push('-'),
    }
    out.push_str("</td>");
    let time = match (n.started_unix, n.ended_unix) {
        (Some(s), Some(e)) if e >= s => crate::clock::duration(e - s),
        _ => "-".into(),
    };
    let _ = writeln!(out, "<td class=\"num\" data-k=\"time\">{time}</td></tr>");
    if let Some(t) = n.tests.as_ref().filter(|t| !t.failing.is_empty()) {
        out.push_str(
            "<tr class=\"detail\"><td></td><td colspan=\"6\" data-k=\"failing\"><span class=\"label\">failing tests</span><ul class=\"plain\">",
        );
        for name in &t.failing {
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
        let _ = writeln!(
            out,
            "<tbody data-suite=\"{0}\"><tr><td class=\"name\">{0}</td><td data-k=\"outcome\">{1}{2}</td>\
             <td data-k=\"runs-on\">{3}</td><td data-k=\"nodes\">{4}</td>\
             <td class=\"num\" data-k=\"passed\">{5}</td><td class=\"num{6}\" data-k=\"failed\">{7}</td>\
             <td class=\"num\" data-k=\"time\">{8}</td></tr></tbody>",
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
    }
    out.push_str("</table>\n</section>\n");
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
            role(n),
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

// The timeline's geometry, in SVG user units (= CSS pixels).
const WIDTH: f64 = 1180.0;
const LABEL: f64 = 170.0;
const RIGHT: f64 = 24.0;
const ROW: f64 = 34.0;
const BAR: f64 = 20.0;
const TOP: f64 = 40.0;

/// A step's fill: the kind when it went well, the outcome when not.
fn fill(step: &Step) -> &'static str {
    match (&step.kind, step.outcome) {
        (_, Outcome::Error) => "#4b5563",
        (StepKind::Upload, Outcome::Skipped) => "#93c5fd",
        (StepKind::Upload, _) => "#2563eb",
        (StepKind::Preflight, Outcome::Passed) => "#7c3aed",
        (StepKind::Preflight, _) => "#f59e0b",
        (StepKind::Iteration(_), Outcome::Passed) => "#16a34a",
        (StepKind::Iteration(_), _) => "#dc2626",
        (StepKind::Cross(_), Outcome::Passed) => "#0d9488",
        (StepKind::Cross(_), Outcome::Skipped) => "#d1d5db",
        (StepKind::Cross(_), _) => "#dc2626",
    }
}

fn step_name(kind: &StepKind) -> String {
    match kind {
        StepKind::Upload => "upload".into(),
        StepKind::Preflight => "preflight".into(),
        StepKind::Iteration(n) => format!("iteration {n}"),
        StepKind::Cross(suite) => format!("cross: {suite}"),
    }
}

/// The shortest label that fits `width`, if any does.
fn fitting_label(kind: &StepKind, width: f64) -> Option<String> {
    let candidates: Vec<String> = match kind {
        StepKind::Upload => vec!["upload".into(), "up".into()],
        StepKind::Preflight => vec!["preflight".into(), "pre".into()],
        StepKind::Iteration(n) => vec![format!("iteration {n}"), format!("#{n}"), n.to_string()],
        StepKind::Cross(suite) => vec![suite.clone()],
    };
    candidates
        .into_iter()
        .find(|c| c.chars().count() as f64 * 6.6 + 8.0 <= width)
}

/// A round step for the axis: about six ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0, 43200.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 8.0)
        .unwrap_or(86400.0)
}

fn tick_label(secs: f64) -> String {
    if secs == 0.0 {
        "0".into()
    } else {
        crate::clock::duration(secs as u64)
    }
}

/// Each gate node's steps on one time axis: upload, preflight, each
/// iteration, cross-node suites; where phase 2 and the cross-node suites
/// began.
fn timeline(out: &mut String, state: &FleetState) {
    let nodes: Vec<&NodeState> = state.nodes.iter().filter(|n| n.gate).collect();
    out.push_str("<section data-phase=\"timeline\">\n<h2>Timeline</h2>\n");
    let starts = nodes
        .iter()
        .flat_map(|n| {
            n.started_unix
                .map(|s| s as f64)
                .into_iter()
                .chain(n.steps.iter().map(|s| s.started_unix))
        })
        .fold(f64::INFINITY, f64::min);
    let ends = nodes
        .iter()
        .flat_map(|n| {
            n.ended_unix
                .map(|s| s as f64)
                .into_iter()
                .chain(n.steps.iter().map(|s| s.started_unix + s.seconds))
        })
        .fold(f64::NEG_INFINITY, f64::max);
    if !starts.is_finite() {
        out.push_str("<p class=\"none\">No node has started yet.</p>\n</section>\n");
        return;
    }
    let t0 = starts;
    // A state.json an older launcher wrote may hold a node's wild times:
    // the axis spans what it spans, its ticks never more than a few.
    let span = (ends - t0).max(1.0);
    let _ = writeln!(
        out,
        "<p class=\"lead\">Each gate node's steps, {} from the first node's start to the last one's end. Hover a bar for its numbers.</p>",
        crate::clock::duration(span.round() as u64)
    );
    let plot = WIDTH - LABEL - RIGHT;
    let x = |t: f64| LABEL + (t - t0).max(0.0) / span * plot;
    let height = TOP + ROW * nodes.len() as f64 + 8.0;
    let _ = writeln!(
        out,
        "<svg role=\"img\" aria-label=\"timeline of the fleet run\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" style=\"max-width:100%;height:auto\">"
    );
    // The axis: a grid line and a label per tick.
    let tick = tick_step(span).max(span / 8.0);
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let px = x(t0 + t);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{height}\" stroke=\"#e5e7eb\"/><text x=\"{px:.1}\" y=\"{}\" font-size=\"11\" fill=\"#6b7280\" text-anchor=\"middle\">{}</text>",
            TOP - 20.0,
            TOP - 26.0,
            tick_label(t)
        );
        t += tick;
    }
    // Where the later phases began.
    let phase2 = nodes
        .iter()
        .filter(|n| n.role != super::roster::Role::Primary)
        .filter_map(|n| n.started_unix)
        .min();
    let has_primaries = nodes
        .iter()
        .any(|n| n.role == super::roster::Role::Primary && n.started_unix.is_some());
    let cross_start = nodes
        .iter()
        .flat_map(|n| n.steps.iter())
        .filter(|s| matches!(s.kind, StepKind::Cross(_)))
        .map(|s| s.started_unix)
        .fold(f64::INFINITY, f64::min);
    let mut marks = Vec::new();
    if let (Some(p2), true) = (phase2, has_primaries) {
        marks.push((p2 as f64, "phase 2"));
    }
    if cross_start.is_finite() {
        marks.push((cross_start, "cross-node suites"));
    }
    for (at, label) in marks {
        let px = x(at);
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{}\" x2=\"{px:.1}\" y2=\"{height}\" stroke=\"#334155\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"11\" font-weight=\"700\" fill=\"#334155\">{label}</text>",
            TOP - 18.0,
            px + 4.0,
            TOP - 6.0
        );
    }
    for (row, n) in nodes.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let bar_y = y + (ROW - BAR) / 2.0;
        let _ = writeln!(out, "<g data-node=\"{}\">", escape(&n.name));
        if row % 2 == 1 {
            let _ = writeln!(
                out,
                "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{ROW}\" fill=\"#f8fafc\"/>"
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"13\" font-weight=\"700\" fill=\"#111827\">{}<title>{}</title></text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" font-weight=\"700\" fill=\"{}\">{}</text>",
            y + ROW / 2.0 + 4.5,
            escape(&short(&n.name, 13)),
            escape(&n.name),
            LABEL - 10.0,
            y + ROW / 2.0 + 4.0,
            match tone(n.phase) {
                "good" => "#15803d",
                "bad" => "#b91c1c",
                "warn" => "#b45309",
                "busy" => "#1d4ed8",
                _ => "#6b7280",
            },
            n.phase.word()
        );
        // The node's whole stay: connected, waiting on the gate, fetching.
        if let Some(s) = n.started_unix {
            let end = n.ended_unix.map(|e| e as f64).unwrap_or(ends).max(s as f64);
            let (x1, x2) = (x(s as f64), x(end));
            let _ = writeln!(
                out,
                "<rect x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" fill=\"#e2e8f0\"><title>{}: {} from start to end</title></rect>",
                bar_y + 3.0,
                (x2 - x1).max(2.0),
                BAR - 6.0,
                escape(&n.name),
                crate::clock::duration((end - s as f64).round() as u64)
            );
        } else {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-style=\"italic\" fill=\"#6b7280\">not started{}</text>",
                LABEL + 4.0,
                y + ROW / 2.0 + 4.0,
                n.reason
                    .as_deref()
                    .map(|r| format!(": {}", escape(r)))
                    .unwrap_or_default()
            );
        }
        for step in &n.steps {
            let x1 = x(step.started_unix);
            let w = (x(step.started_unix + step.seconds) - x1).max(3.0);
            let label = fitting_label(&step.kind, w);
            let _ = write!(
                out,
                "<rect data-step=\"{}\" data-outcome=\"{}\" x=\"{x1:.1}\" y=\"{bar_y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"3\" fill=\"{}\"><title>{} · {} · {} · {}{}</title></rect>",
                escape(&step_name(&step.kind)),
                step.outcome.word(),
                fill(step),
                escape(&n.name),
                escape(&step_name(&step.kind)),
                step.outcome.word(),
                seconds(step.seconds),
                step.detail
                    .as_deref()
                    .map(|d| format!(" · {}", escape(d)))
                    .unwrap_or_default()
            );
            if let Some(label) = label {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#fff\" text-anchor=\"middle\" pointer-events=\"none\">{}</text>",
                    x1 + w / 2.0,
                    bar_y + BAR / 2.0 + 4.0,
                    escape(&label)
                );
            }
            out.push('\n');
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n<div class=\"legend\">");
    for (color, what) in [
        ("#2563eb", "upload"),
        ("#93c5fd", "upload: already there"),
        ("#7c3aed", "preflight passed"),
        ("#f59e0b", "preflight failed (not ready)"),
        ("#16a34a", "iteration passed"),
        ("#dc2626", "iteration or suite failed"),
        ("#0d9488", "cross-node suite passed"),
        ("#4b5563", "error"),
        ("#e2e8f0", "connected, waiting"),
    ] {
        let _ = write!(
            out,
            "<span><i style=\"background:{color}\"></i>{what}</span>"
        );
    }
    out.push_str("</div>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::roster::Role;
    use crate::fleet::state::{CrossResult, UploadStats};
    use crate::reports::TestCounts;

    fn node(name: &str, role: Role, phase: Phase) -> NodeState {
        NodeState {
            name: name.into(),
            role,
            gate: true,
            ssh: format!("root@{name}"),
            phase,
            reason: None,
            iterations: 2,
            iterations_passed: None,
            tests: None,
            run_id: None,
            remote_run_dir: None,
            upload: None,
            uploaded: None,
            iteration: None,
            preflight_findings: Vec::new(),
            preflight: None,
            verified_by: None,
            record: None,
            connections: 1,
            started_unix: Some(1_000),
            ended_unix: Some(1_030),
            steps: Vec::new(),
            fetch_refused: Vec::new(),
            fetch_incomplete: None,
        }
    }

    fn step(kind: StepKind, at: f64, secs: f64, outcome: Outcome) -> Step {
        Step {
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

    #[test]
    fn every_phase_and_node_has_its_place() {
        let html = rendered();
        for phase in [
            "primaries",
            "rest",
            "cross",
            "listed",
            "timeline",
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
        let mut state = fleet(Utf8Path::new("/nonexistent"));
        let mut json = serde_json::to_value(&state).unwrap();
        json.as_object_mut().unwrap().remove("cross");
        for n in json["nodes"].as_array_mut().unwrap() {
            n.as_object_mut().unwrap().remove("steps");
        }
        state = serde_json::from_value(json).unwrap();
        assert!(state.cross.is_empty());
        let html = render(Utf8Path::new("/nonexistent"), &state);
        assert!(html.contains("No cross-node suite ran"));
        assert!(html.contains("<g data-node=\"prim\""));
    }
}
