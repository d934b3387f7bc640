//! report.html's timeline: each gate node's steps (upload, preflight, each
//! iteration, the cross-node suites it took part in) as bars on one time
//! axis, in inline SVG, with where phase 2 and the cross-node suites began.
//! Times are the ones the fleet state holds, already clamped to what this
//! host saw; the axis copes with wild ones an older state may hold.

use std::fmt::Write as _;

use super::{escape, seconds, short, tone};
use crate::fleet::state::{FleetState, NodeState, Outcome, StepKind, TimedStep};

// The timeline's geometry, in SVG user units (= CSS pixels).
const WIDTH: f64 = 1180.0;
const LABEL: f64 = 170.0;
const RIGHT: f64 = 24.0;
const ROW: f64 = 34.0;
const BAR: f64 = 20.0;
const TOP: f64 = 40.0;

/// A step's fill: the kind when it went well, the outcome when not.
fn fill(step: &TimedStep) -> &'static str {
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
pub(super) fn render(out: &mut String, state: &FleetState) {
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
        .filter(|n| n.role != crate::fleet::roster::Role::Primary)
        .filter_map(|n| n.started_unix)
        .min();
    let has_primaries = nodes
        .iter()
        .any(|n| n.role == crate::fleet::roster::Role::Primary && n.started_unix.is_some());
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
