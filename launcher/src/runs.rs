//! Run records: `<workdir>/runs/<run-id>/` holds `run.json` (this module's
//! [`RunRecord`]), `gate.log`, and whatever TAP or JUnit the gate dropped.
//! The record is the plan a run carries out as well as its result, so a
//! detached supervisor needs nothing else to start the gate.

use std::fs;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::exit::{fail, ExitStatus};
use crate::host::HostFacts;
use crate::reports::TestCounts;

pub const RECORD: &str = "run.json";
pub const LOG: &str = "gate.log";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Recorded, the gate not yet started.
    Starting,
    Running,
    Passed,
    Failed,
    Interrupted,
    /// The gate could not be started.
    Error,
    /// Its supervisor died without recording an end (machine rebooted?).
    Lost,
}

impl RunState {
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Starting | RunState::Running)
    }

    pub fn exit_status(self) -> ExitStatus {
        match self {
            RunState::Passed => ExitStatus::Success,
            RunState::Failed => ExitStatus::GateFailed,
            RunState::Interrupted => ExitStatus::Interrupted,
            _ => ExitStatus::Environment,
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = serde_json::to_value(self).unwrap_or_default();
        f.write_str(word.as_str().unwrap_or("?"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleFacts {
    /// The bundle file that was run.
    pub file: Utf8PathBuf,
    pub name: String,
    pub version: String,
    /// The whole file's sha256: the pin.
    pub sha256: String,
    pub payload_sha256: String,
    /// Which of the two digests were checked: "payload" or "payload+pin".
    pub verified: String,
    /// Where it was unpacked.
    pub dir: Utf8PathBuf,
    pub entry: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub state: RunState,
    pub bundle: BundleFacts,
    pub workdir: Utf8PathBuf,
    pub started: String,
    pub started_unix: u64,
    pub ended: Option<String>,
    pub duration_secs: Option<u64>,
    pub exit_code: Option<i32>,
    pub iterations: u32,
    pub allow_destructive: bool,
    pub host: String,
    pub scheme: String,
    pub gate_args: Vec<String>,
    /// Where the password came from (never the password).
    pub password_source: String,
    pub detached: bool,
    pub supervisor_pid: Option<u32>,
    pub gate_pid: Option<u32>,
    pub host_facts: HostFacts,
    pub tests: Option<TestCounts>,
    /// The preflight checks, as `launcher preflight --json` prints them.
    pub preflight: Option<serde_json::Value>,
    /// Preflight failed and the run went ahead with --force.
    pub forced: bool,
    /// Why the run ended as it did, when the state alone does not say.
    pub message: Option<String>,
}

impl RunRecord {
    pub fn run_dir(&self) -> Utf8PathBuf {
        runs_dir(&self.workdir).join(&self.run_id)
    }

    /// Writes `run.json` atomically: readers never see half a record.
    pub fn save(&self) -> anyhow::Result<()> {
        let dir = self.run_dir();
        let tmp = dir.join(".run.json.tmp");
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        fs::write(&tmp, text).with_context(|| format!("cannot write {tmp}"))?;
        fs::rename(&tmp, dir.join(RECORD)).with_context(|| format!("cannot write {dir}/{RECORD}"))
    }

    pub fn load(run_dir: &Utf8Path) -> anyhow::Result<RunRecord> {
        let path = run_dir.join(RECORD);
        let text = fs::read(&path).with_context(|| format!("cannot read {path}"))?;
        serde_json::from_slice(&text).with_context(|| format!("{path} is not a run record"))
    }

    /// The state as it stands now: a running record whose supervisor is gone is lost.
    pub fn current_state(&self) -> RunState {
        match (self.state, self.supervisor_pid) {
            (RunState::Starting | RunState::Running, Some(pid)) if !alive(pid) => RunState::Lost,
            (state, _) => state,
        }
    }
}

pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

pub fn runs_dir(workdir: &Utf8Path) -> Utf8PathBuf {
    workdir.join("runs")
}

/// A new run id: start time, then the pid, so ids sort by start.
pub fn new_run_id(unix: u64) -> String {
    format!("{}-{}", crate::clock::compact(unix), std::process::id())
}

/// Finds a run: `RUN` is a run id, a unique prefix of one, or a run dir;
/// without it, the latest run in any candidate work dir.
pub fn find(run: Option<&str>, workdir: Option<&Utf8Path>) -> anyhow::Result<RunRecord> {
    if let Some(arg) = run {
        let as_dir = Utf8Path::new(arg);
        if as_dir.join(RECORD).is_file() {
            return RunRecord::load(as_dir);
        }
    }
    let mut all: Vec<RunRecord> = Vec::new();
    for dir in crate::workdir::candidates(workdir) {
        let Ok(items) = fs::read_dir(runs_dir(&dir)) else {
            continue;
        };
        for item in items.flatten() {
            let Ok(path) = Utf8PathBuf::from_path_buf(item.path()) else {
                continue;
            };
            if let Ok(record) = RunRecord::load(&path) {
                all.push(record);
            }
        }
    }
    let searched = crate::workdir::candidates(workdir)
        .iter()
        .map(|d| runs_dir(d).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match run {
        None => all
            .into_iter()
            .max_by(|a, b| (a.started_unix, &a.run_id).cmp(&(b.started_unix, &b.run_id)))
            .ok_or_else(|| fail(ExitStatus::Usage, format!("no runs recorded in {searched}"))),
        Some(id) => {
            let mut matching: Vec<RunRecord> = all
                .into_iter()
                .filter(|r| r.run_id.starts_with(id))
                .collect();
            match matching.len() {
                1 => Ok(matching.remove(0)),
                0 => Err(fail(
                    ExitStatus::Usage,
                    format!("no run {id} in {searched}; `launcher status` shows the latest"),
                )),
                n => Err(fail(
                    ExitStatus::Usage,
                    format!("{n} runs start with {id}: give more of the run id"),
                )),
            }
        }
    }
}
