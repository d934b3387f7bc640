//! How a thing ended, in one vocabulary for a test, a fleet step and a
//! report: passed, failed, skipped, or could not be carried out. A run's
//! life (`runs::RunState`), a node's place in the fleet (`fleet::state::Phase`)
//! and a preflight check's verdict say more than this, and map onto it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Nothing to do (the bundle was already there), or not run.
    Skipped,
    /// It could not be carried out (a lost link, no answer).
    Error,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}
