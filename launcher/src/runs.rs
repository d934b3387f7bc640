//! Run records: `<workdir>/runs/<run-id>/` holds `run.json` (this module's
//! [`RunRecord`]), `gate.log`, and whatever TAP or JUnit the gate dropped.
//! The record is the plan a run carries out as well as its result, so a
//! detached supervisor needs nothing else to start the gate. Run dirs are
//! made exclusively in the private work dir, and only records in dirs the
//! caller owns are read back (private_fs.rs).

use std::io::Read;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::exit::{fail, ExitStatus, WithStatus};
use crate::host::HostFacts;
use crate::printable::printable;
use crate::private_fs::{Create, PrivateDir};
use crate::reports::TestCounts;
use crate::run_id::RunId;

pub const RECORD: &str = "run.json";
pub const LOG: &str = "gate.log";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Recorded, the gate not yet started.
    Starting,
    Running,
    Passed,
    /// A rerun of failed tests (`run --rerun-failed`) in which every test
    /// it ran passed: a partial run, never a gate pass (it exits 1).
    Partial,
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
            // 0 is a gate pass, and a partial run never is one.
            RunState::Failed | RunState::Partial => ExitStatus::Failed,
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
    /// The trusted key that verified the bundle's signature, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
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
    /// http to a host other than loopback, allowed by --allow-cleartext.
    #[serde(default)]
    pub allow_cleartext: bool,
    /// A gate that counts no test result may pass (--allow-no-tests).
    #[serde(default)]
    pub allow_no_tests: bool,
    pub gate_args: Vec<String>,
    /// Where the password came from (never the password).
    pub password_source: String,
    pub detached: bool,
    pub supervisor_pid: Option<u32>,
    pub gate_pid: Option<u32>,
    pub host_facts: HostFacts,
    pub tests: Option<TestCounts>,
    /// The preflight checks, as `launcher preflight --json` prints them.
    pub preflight: Option<crate::preflight::Report>,
    /// Preflight failed and the run went ahead with --force.
    pub forced: bool,
    /// Why the run ended as it did, when the state alone does not say.
    pub message: Option<String>,
    /// A cross-node suite's run (`run --cross`): the suite, its peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross: Option<crate::cross_suite::CrossRun>,
    /// A partial run (`run --rerun-failed`): which run's failed tests it
    /// reran. Such a run is never a gate pass (`RunState::Partial`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<crate::rerun::Rerun>,
    /// The iteration the gate is in (its newest `iteration-N.tap`), kept
    /// current by the supervisor while it runs: `fleet status` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// When each iteration began and ended, as the supervisor saw it (to a
    /// tenth of a second): the fleet's timeline reads these, not file times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iteration_times: Vec<IterationTime>,
    /// When the gate's process started and when the run ended, this node's
    /// clock to the millisecond: a scenario's barrier is checked on these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_started_unix: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix: Option<f64>,
}

/// One iteration of the gate: unix seconds with a fraction, this node's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationTime {
    pub n: u32,
    pub started_unix: f64,
    /// None while it runs.
    pub ended_unix: Option<f64>,
}

impl RunRecord {
    /// What a person needs at the end of a run (`run`, `wait`): the verdict,
    /// what failed, where the log is.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let took = self
            .duration_secs
            .map(crate::clock::duration)
            .unwrap_or_default();
        let state = self.current_state();
        // A partial run's line says so before anything else.
        let head = match &self.rerun {
            Some(rerun) => rerun.verdict(state),
            None => format!("{} {state}", self.what()),
        };
        match &self.tests {
            Some(t) => out.push_str(&format!(
                "\n{head}: {} passed, {} failed, {} skipped over {} iteration(s) in {took}\n",
                t.passed, t.failed, t.skipped, self.iterations
            )),
            None => out.push_str(&format!("\n{head} after {took} (no test report found)\n")),
        }
        if let Some(t) = &self.tests {
            for name in &t.failing {
                out.push_str(&format!("  failed: {}\n", printable(name)));
            }
        }
        if let Some(message) = &self.message {
            out.push_str(&format!("  {}\n", printable(message)));
        }
        let dir = self.run_dir();
        out.push_str(&format!(
            "full log: {}\nrecord:   {}\n",
            dir.join(LOG),
            dir.join(RECORD)
        ));
        out
    }

    pub fn run_dir(&self) -> Utf8PathBuf {
        runs_dir(&self.workdir).join(&*self.run_id)
    }

    /// The script this run starts: a cross suite's, or the gate's.
    pub fn entry(&self) -> &str {
        match &self.cross {
            Some(cross) => &cross.entry,
            None => &self.bundle.entry,
        }
    }

    /// "gate", or "cross suite federation", for people.
    pub fn what(&self) -> String {
        match &self.cross {
            Some(cross) => format!("cross suite {}", cross.suite),
            None => "gate".into(),
        }
    }

    /// Writes `run.json` atomically (readers never see half a record),
    /// readable by the caller alone.
    pub fn save(&self) -> anyhow::Result<()> {
        let dir = self.run_dir();
        let private = PrivateDir::open(&dir, Create::No)?;
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        private
            .write_atomic(RECORD, &text, 0o600)
            .with_context(|| format!("cannot write {dir}/{RECORD}"))
    }

    /// Reads `run.json` from a run dir the caller owns.
    pub fn load(run_dir: &Utf8Path) -> anyhow::Result<RunRecord> {
        let private = PrivateDir::open(run_dir, Create::No)?;
        RunRecord::load_from(&private)
    }

    fn load_from(run_dir: &PrivateDir) -> anyhow::Result<RunRecord> {
        let path = run_dir.path().join(RECORD);
        let mut text = Vec::new();
        run_dir
            .open_file(RECORD)
            .and_then(|mut f| f.read_to_end(&mut text))
            .with_context(|| format!("cannot read {path}"))?;
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
    workdir.join(RUNS)
}

fn taken(workdir: &PrivateDir, id: &RunId) -> anyhow::Error {
    fail(
        ExitStatus::Usage,
        format!(
            "a run {id} already exists in {}: `launcher status {id}` shows it",
            workdir.path()
        ),
    )
}

/// Refuses a run id that names an existing run.
pub fn check_free(workdir: &PrivateDir, id: &RunId) -> anyhow::Result<()> {
    match workdir.open_dir(RUNS).map(|runs| runs.open_dir(id)) {
        Ok(Err(e)) if e.missing => Ok(()),
        Err(e) if e.missing => Ok(()),
        _ => Err(taken(workdir, id)),
    }
}

/// Makes the run's dir, exclusively: a run id names one run only.
pub fn create_run_dir(workdir: &PrivateDir, id: &RunId) -> anyhow::Result<PrivateDir> {
    let runs = workdir.ensure_dir(RUNS)?;
    runs.create_dir(id)?.ok_or_else(|| taken(workdir, id))
}

const RUNS: &str = "runs";

/// The records the caller can trust, and what was passed over and why.
struct Found {
    records: Vec<RunRecord>,
    ignored: Vec<String>,
}

fn trusted_records(workdir: Option<&Utf8Path>) -> Found {
    let mut found = Found {
        records: Vec::new(),
        ignored: Vec::new(),
    };
    for dir in crate::workdir::candidates(workdir) {
        let private = match PrivateDir::open(&dir, Create::No) {
            Ok(p) => p,
            Err(e) if e.missing || e.not_a_dir => continue,
            Err(e) => {
                found.ignored.push(e.to_string());
                continue;
            }
        };
        records_in(&private, &mut found);
    }
    found
}

/// The records in one work dir the caller owns, into `found`.
fn records_in(workdir: &PrivateDir, found: &mut Found) {
    let runs = match workdir.open_dir(RUNS) {
        Ok(r) => r,
        Err(e) if e.missing => return,
        Err(e) => {
            found.ignored.push(e.to_string());
            return;
        }
    };
    for name in runs.list().unwrap_or_default() {
        let loaded = runs
            .open_dir(&name)
            .map_err(anyhow::Error::from)
            .and_then(|run| RunRecord::load_from(&run));
        match loaded {
            Ok(record) if *record.run_id == *name && record.workdir == workdir.path() => {
                found.records.push(record)
            }
            Ok(_) => found.ignored.push(format!(
                "{}/{name}: its record names another run or work dir",
                runs.path()
            )),
            Err(e) => found.ignored.push(format!("{e:#}")),
        }
    }
}

/// The latest gate run (not a cross suite's) in `workdir` of the bundle
/// whose whole file has `sha256`, and what was passed over and why: the
/// run `run --rerun-failed` reruns the failures of.
pub fn latest_gate_run(workdir: &PrivateDir, sha256: &str) -> (Option<RunRecord>, Vec<String>) {
    let mut found = Found {
        records: Vec::new(),
        ignored: Vec::new(),
    };
    records_in(workdir, &mut found);
    let latest = found
        .records
        .into_iter()
        .filter(|r| r.cross.is_none() && r.bundle.sha256 == sha256)
        // To the millisecond where the record has it: a rerun started in
        // the same second as the run it reran is still the later one.
        .max_by(|a, b| {
            let at = |r: &RunRecord| r.gate_started_unix.unwrap_or(r.started_unix as f64);
            at(a)
                .total_cmp(&at(b))
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
    (latest, found.ignored)
}

/// Finds a run: `RUN` is a run dir when it holds a '/', else a run id or a
/// unique prefix of one; without it, the latest run in any candidate work
/// dir. Only dirs and records the caller owns count: anything another uid
/// made is passed over, and said so on stderr.
pub fn find(run: Option<&str>, workdir: Option<&Utf8Path>) -> anyhow::Result<RunRecord> {
    if let Some(arg) = run.filter(|a| a.contains('/')) {
        return RunRecord::load(Utf8Path::new(arg)).status(ExitStatus::Usage, || {
            format!("{arg} is no run dir of yours: name a run by its id, or its dir")
        });
    }
    let Found { records, ignored } = trusted_records(workdir);
    for why in &ignored {
        eprintln!("note: ignored {why}");
    }
    let searched = crate::workdir::candidates(workdir)
        .iter()
        .map(|d| d.join(RUNS).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match run {
        None => records
            .into_iter()
            .max_by(|a, b| (a.started_unix, &a.run_id).cmp(&(b.started_unix, &b.run_id)))
            .ok_or_else(|| fail(ExitStatus::Usage, format!("no runs recorded in {searched}"))),
        Some(id) => {
            if let Some(exact) = records.iter().position(|r| *r.run_id == *id) {
                return Ok(records.into_iter().nth(exact).expect("found"));
            }
            let mut matching: Vec<RunRecord> = records
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
