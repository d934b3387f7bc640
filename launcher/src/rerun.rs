//! `run --rerun-failed`: a partial run. Which tests it reruns (those that
//! failed in this node's latest run of the same bundle, by exact name from
//! that run's record), the bats `--filter` that selects exactly them, and
//! the one rule about its verdict: a partial run is never a gate pass.
//!
//! Why names from the record and not bats' own `--filter-status failed`:
//! that reads bats' run logs, which live beside the suite (a fresh unpack
//! has none), are written per bats call (run-gate.sh makes one per
//! iteration, so only the last iteration's failures would be remembered),
//! and could be left by a run of another bundle. The record holds every
//! iteration's failures of exactly the run it names.

use serde::{Deserialize, Serialize};

use crate::exit::{fail, ExitStatus};
use crate::printable::printable;
use crate::private_fs::PrivateDir;
use crate::run_id::RunId;
use crate::runs::{self, RunState};

/// What a partial run reran, recorded in its run.json (`rerun`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rerun {
    /// The run whose failed tests these are: this node's latest run of the
    /// same bundle (the whole file's sha256) in this work dir.
    pub of: RunId,
    /// How that run ended.
    pub of_state: RunState,
    /// That run was itself a rerun, of this run: the set is the tests that
    /// still failed in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of_rerun_of: Option<RunId>,
    /// The tests rerun, by exact name, as that run's record names them.
    pub tests: Vec<String>,
    /// The bats `--filter` that selects them: each name regex-escaped, the
    /// whole anchored, so no other test (a longer name, a name the
    /// unescaped one would match) runs.
    pub filter: String,
}

impl Rerun {
    /// Chooses what to rerun from the latest gate run of the bundle whose
    /// whole-file sha256 is `bundle_sha256` in `workdir` (taken under the
    /// node lock, so no run of it is still going). Refuses (exit 2, saying
    /// what to do) when there is no such run or it names no failed test;
    /// nothing is written either way.
    pub fn plan(workdir: &PrivateDir, bundle_sha256: &str) -> anyhow::Result<Rerun> {
        let (latest, ignored) = runs::latest_gate_run(workdir, bundle_sha256);
        for why in &ignored {
            eprintln!("note: ignored {why}");
        }
        let whole_gate = "run the whole gate (without --rerun-failed)";
        let Some(last) = latest else {
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "--rerun-failed: no earlier run of this bundle (sha256 {bundle_sha256}) \
                     in {}: there is nothing to rerun; {whole_gate} first",
                    workdir.path()
                ),
            ));
        };
        let state = last.current_state();
        let failing = last
            .tests
            .as_ref()
            .map(|t| t.failing.clone())
            .unwrap_or_default();
        if failing.is_empty() {
            let why = match (state, &last.rerun) {
                (RunState::Passed, _) => "passed: no test failed".to_string(),
                (RunState::Partial, Some(r)) => format!(
                    "reran the failed tests of run {} and they all passed: none still fails; \
                     a partial run is never a gate pass, so {whole_gate} to pass it",
                    r.of
                ),
                (state, _) => format!(
                    "ended {state} without naming a failed test{}: there is no test to \
                     rerun by name (`launcher status {}` shows why)",
                    last.message
                        .as_deref()
                        .map(|m| format!(" ({})", printable(m)))
                        .unwrap_or_default(),
                    last.run_id
                ),
            };
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "--rerun-failed: run {}, this node's latest run of this bundle, {why}; \
                     nothing to rerun: {whole_gate}",
                    last.run_id
                ),
            ));
        }
        Ok(Rerun {
            of: last.run_id.clone(),
            of_state: state,
            of_rerun_of: last.rerun.as_ref().map(|r| r.of.clone()),
            filter: filter(&failing),
            tests: failing,
        })
    }

    /// What the gate's entry gets after the operator's own arguments:
    /// run-gate.sh passes them to bats, where the last `--filter` is the one
    /// that counts.
    pub fn gate_args(&self) -> [String; 2] {
        ["--filter".into(), self.filter.clone()]
    }

    /// For people, as the run starts: which tests, from which run.
    pub fn announce(&self) -> String {
        let mut out = format!(
            "rerun: the {} of run {} ({}){}, by exact name; a partial run, never a gate pass:\n",
            tests(self.tests.len(), "failed test"),
            self.of,
            self.of_state,
            match &self.of_rerun_of {
                Some(first) => format!(", itself a rerun of run {first}: the tests still failing"),
                None => String::new(),
            }
        );
        for name in &self.tests {
            out.push_str(&format!("  rerun: {}\n", printable(name)));
        }
        out
    }

    /// The head of a partial run's summary line: "rerun of the 2 failed
    /// tests of run X: passed, a partial run and not a gate pass".
    pub fn verdict(&self, state: RunState) -> String {
        let head = format!(
            "rerun of the {} of run {}",
            tests(self.tests.len(), "failed test"),
            self.of
        );
        match state {
            RunState::Partial => {
                format!("{head}: passed, a partial run and not a gate pass")
            }
            state => format!("{head}: {state} (a partial run)"),
        }
    }
}

fn tests(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// The state a finished rerun is recorded with: where the whole gate would
/// have passed, a partial run is `partial`, which nothing counts as a pass.
pub fn settle(state: RunState, rerun: Option<&Rerun>) -> RunState {
    match (state, rerun) {
        (RunState::Passed, Some(_)) => RunState::Partial,
        (state, _) => state,
    }
}

/// One POSIX extended regex (bash's `=~`, which bats' `--filter` uses on a
/// test's description) matching exactly these names and nothing else.
fn filter(names: &[String]) -> String {
    let alternatives: Vec<String> = names.iter().map(|n| ere_escape(n)).collect();
    format!("^({})$", alternatives.join("|"))
}

/// `name` as a regex that matches it literally: a backslash before each of
/// ERE's special characters, and before no other (a backslash before an
/// ordinary one is undefined in POSIX, and glibc gives `\w`, `\<`, `\b`
/// meanings of their own).
fn ere_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if "\\^$.[]|()*+?{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_is_anchored_and_escapes_every_special_character() {
        let names = vec!["lnd".to_string(), r"a (b) [c] {1}+ ^x$ .|*? \d".to_string()];
        assert_eq!(
            filter(&names),
            r"^(lnd|a \(b\) \[c\] \{1\}\+ \^x\$ \.\|\*\? \\d)$"
        );
    }

    #[test]
    fn a_passed_rerun_is_partial_and_anything_else_keeps_its_state() {
        let rerun = Rerun {
            of: RunId::parse("r1").unwrap(),
            of_state: RunState::Failed,
            of_rerun_of: None,
            tests: vec!["t".into()],
            filter: "^(t)$".into(),
        };
        assert_eq!(settle(RunState::Passed, Some(&rerun)), RunState::Partial);
        assert_eq!(settle(RunState::Failed, Some(&rerun)), RunState::Failed);
        assert_eq!(settle(RunState::Passed, None), RunState::Passed);
        assert_eq!(RunState::Partial.exit_status(), ExitStatus::Failed);
    }
}
