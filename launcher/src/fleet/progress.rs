//! What a person watching `fleet run` sees: one line per node (phase,
//! upload bytes, iteration i/N, elapsed) and per cross suite, drawn from
//! the fleet's state. On a terminal the lines are redrawn in place
//! (indicatif's MultiProgress); otherwise each line is printed, timestamped,
//! only when it says something new, so a CI log stays short. `fleet status`
//! prints the same lines from state.json.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::state::{CrossOutcome, CrossResult, FleetState, NodeState, Phase};
use super::view;
use crate::printable::printable;

/// How often the lines are brought up to date.
pub const REFRESH_LIVE: Duration = Duration::from_millis(200);
pub const REFRESH_PLAIN: Duration = Duration::from_secs(1);

fn elapsed(start: Option<u64>, end: Option<u64>, now: u64) -> String {
    match start {
        Some(s) => crate::clock::duration(end.unwrap_or(now).saturating_sub(s)),
        None => "-".into(),
    }
}

/// One node's line: name, what it does, how long it has been at it.
pub fn node_line(n: &NodeState, bundle_size: u64, cross: &[CrossResult], now: u64) -> String {
    format!(
        "{} {} [{}]",
        n.name,
        view::node_now(n, bundle_size, cross),
        elapsed(n.started_unix, n.ended_unix, now)
    )
}

/// One cross suite's line.
pub fn cross_line(c: &CrossResult, now: u64) -> String {
    let end = (c.outcome != CrossOutcome::Running).then(|| c.started_unix.map(|s| s + c.seconds));
    format!(
        "{} [{}]",
        view::cross_now(c),
        elapsed(c.started_unix, end.flatten(), now)
    )
}

/// Every line, for `fleet status`.
pub fn lines(state: &FleetState, now: u64) -> Vec<String> {
    let mut out: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.gate)
        .map(|n| node_line(n, state.bundle_size, &state.cross, now))
        .collect();
    out.extend(state.cross.iter().map(|c| cross_line(c, now)));
    out
}

enum Drawing {
    /// Redrawn in place on the terminal.
    Live {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
    /// Printed when they change.
    Plain {
        last: HashMap<String, String>,
        on_stderr: bool,
    },
}

/// The lines on stdout while the fleet runs. Cloned into every node's
/// worker for `event`; `refresh` redraws from the state.
#[derive(Clone)]
pub struct Progress {
    mode: Arc<Mutex<Drawing>>,
}

impl Progress {
    /// Live when stdout is a terminal, plain lines otherwise; on stderr
    /// instead when stdout carries something else (`--events -`).
    pub fn new(on_stderr: bool) -> Progress {
        let terminal = if on_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let mode = if terminal {
            let target = if on_stderr {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::stdout()
            };
            Drawing::Live {
                multi: MultiProgress::with_draw_target(target),
                bars: HashMap::new(),
            }
        } else {
            Drawing::Plain {
                last: HashMap::new(),
                on_stderr,
            }
        };
        Progress {
            mode: Arc::new(Mutex::new(mode)),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(*self.lock(), Drawing::Live { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Drawing> {
        self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something that happened to a node, once (a reconnect, a resumed run).
    pub fn event(&self, node: &str, message: &str) {
        let line = format!("{node}: {}", printable(message));
        match &*self.lock() {
            Drawing::Live { multi, .. } => {
                let _ = multi.println(line);
            }
            Drawing::Plain { on_stderr, .. } => plain(&line, *on_stderr),
        }
    }

    /// Brings every line up to date with `state`.
    pub fn refresh(&self, state: &FleetState) {
        let now = crate::clock::now_unix();
        let mut rows: Vec<(String, String, String)> = state
            .nodes
            .iter()
            .filter(|n| n.gate)
            .map(|n| {
                // Plain lines follow an upload by quarters, not by chunk.
                let change = match n.phase {
                    Phase::Uploading => format!(
                        "uploading {}",
                        n.uploaded.unwrap_or(0) * 4 / state.bundle_size.max(1)
                    ),
                    _ => view::node_now(n, state.bundle_size, &state.cross),
                };
                (
                    n.name.clone(),
                    change,
                    node_line(n, state.bundle_size, &state.cross, now),
                )
            })
            .collect();
        rows.extend(state.cross.iter().map(|c| {
            (
                format!("cross {}", c.suite),
                view::cross_now(c),
                cross_line(c, now),
            )
        }));
        match &mut *self.lock() {
            Drawing::Live { multi, bars } => {
                for (key, _, line) in rows {
                    let bar = bars.entry(key).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {wide_msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar
                    });
                    bar.set_message(line);
                    bar.tick();
                }
            }
            Drawing::Plain { last, on_stderr } => {
                for (key, change, line) in rows {
                    if last.get(&key) != Some(&change) {
                        last.insert(key, change);
                        plain(&line, *on_stderr);
                    }
                }
            }
        }
    }

    /// The state changed: plain lines say so at once (a phase may end
    /// before the next refresh); live lines wait for theirs.
    pub fn changed(&self, state: &FleetState) {
        if !self.is_live() {
            self.refresh(state);
        }
    }

    /// The last lines stay on the terminal; nothing more is drawn.
    pub fn finish(&self, state: &FleetState) {
        self.refresh(state);
        if let Drawing::Live { bars, .. } = &*self.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}

/// A plain line: UTC time, then the line.
fn plain(line: &str, on_stderr: bool) {
    let now = crate::clock::rfc3339(crate::clock::now_unix());
    let time = now.get(11..19).unwrap_or(&now);
    if on_stderr {
        eprintln!("{time} {line}");
    } else {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{time} {line}");
        let _ = out.flush();
    }
}
