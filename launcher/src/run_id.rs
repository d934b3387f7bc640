//! Run ids: the name of one run's dir under `WORKDIR/runs/`. Made here (the
//! start time, then the pid, so ids sort by start) and checked here, whoever
//! names one: `run --run-id`, the fleet (`<fleet id>-<node>`), or a record
//! read back from disk.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// A run id that is safe as one path component: letters, digits, '.', '_'
/// and '-', at most 128 bytes, never hidden ('.', '..').
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A new id for a run starting at `unix`.
    pub fn generate(unix: u64) -> RunId {
        RunId(format!(
            "{}-{}",
            crate::clock::compact(unix),
            std::process::id()
        ))
    }

    /// A caller's id, or what is wrong with it (to follow the flag's name).
    pub fn parse(text: &str) -> Result<RunId, String> {
        let valid = !text.is_empty()
            && text.len() <= 128
            && !text.starts_with('.')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if valid {
            Ok(RunId(text.to_string()))
        } else {
            Err(format!(
                "{text:?}: use letters, digits, '.', '_' and '-' (not first '.'), at most 128"
            ))
        }
    }
}

impl Deref for RunId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(text: String) -> Result<RunId, String> {
        RunId::parse(&text)
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::RunId;

    #[test]
    fn only_one_plain_path_component_is_an_id() {
        for good in [
            "nightly",
            "20261128T043012Z-4242",
            "a.b_c-d",
            "fleet-1-n228",
        ] {
            assert!(RunId::parse(good).is_ok(), "{good}");
        }
        let long = "x".repeat(129);
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ü", long.as_str()] {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_generated_id_parses() {
        let id = RunId::generate(1_764_000_000);
        assert_eq!(RunId::parse(&id), Ok(id.clone()));
    }

    #[test]
    fn a_record_with_a_bad_id_does_not_load() {
        assert!(serde_json::from_str::<RunId>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<RunId>("\"ok-1\"").is_ok());
    }
}
