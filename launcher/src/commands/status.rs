//! `launcher status [RUN] [--json]`, `launcher logs [RUN] [--follow]` and
//! `launcher wait [RUN]`: any run, from its record on disk, whether it runs
//! detached, ended long ago, or lost its supervisor.

use std::io::{Read, Seek, SeekFrom, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{LogsArgs, StatusArgs, WaitArgs};
use crate::exit::{fail, ExitStatus};
use crate::printable::printable;
use crate::private_fs::{Create, PrivateDir};
use crate::runs::{self, RunRecord};

const POLL: Duration = Duration::from_millis(250);
/// How often `wait` reads the record: a file read, cheap enough to do often.
const WAIT_LOOK: Duration = Duration::from_millis(100);

fn find(run: &Option<String>, workdir: &Option<camino::Utf8PathBuf>) -> anyhow::Result<RunRecord> {
    runs::find(run.as_deref(), workdir.as_deref())
}

/// The record with its state brought up to date (a dead supervisor: lost).
fn current(mut record: RunRecord) -> RunRecord {
    record.state = record.current_state();
    record
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let record = current(find(&args.select.run, &args.select.workdir)?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    println!("run      {}", record.run_id);
    println!("state    {}", record.state);
    println!("started  {}", record.started);
    if let Some(ended) = &record.ended {
        println!("ended    {ended}");
    }
    // Names, versions, test names and notes come from the bundle and the gate.
    println!(
        "bundle   {} {} ({}, sha256 {})",
        printable(&record.bundle.name),
        printable(&record.bundle.version),
        printable(record.bundle.file.as_str()),
        record.bundle.sha256
    );
    println!(
        "gate     {} iteration(s), destructive {}, {}://{}",
        record.iterations,
        if record.allow_destructive {
            "yes"
        } else {
            "no"
        },
        record.scheme,
        record.host
    );
    if let Some(rerun) = &record.rerun {
        println!(
            "partial  a rerun of the failed tests of run {} ({}): never a gate pass",
            rerun.of, rerun.of_state
        );
        for name in &rerun.tests {
            println!("  rerun: {}", printable(name));
        }
    }
    if let Some(t) = &record.tests {
        println!(
            "tests    {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        );
        for name in &t.failing {
            println!("  failed: {}", printable(name));
        }
    }
    if let Some(message) = &record.message {
        println!("note     {}", printable(message));
    }
    println!("log      {}", record.run_dir().join(runs::LOG));
    Ok(())
}

pub fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let record = find(&args.select.run, &args.select.workdir)?;
    let run_dir = PrivateDir::open(&record.run_dir(), Create::No)?;
    let mut out = std::io::stdout();
    let mut offset = 0u64;
    loop {
        // The record first: output written before it says "ended" is in the log.
        let ended = !args.follow
            || current(RunRecord::load(&record.run_dir())?)
                .state
                .is_final();
        if let Ok(mut file) = run_dir.open_file(runs::LOG) {
            file.seek(SeekFrom::Start(offset))?;
            let mut chunk = Vec::new();
            file.read_to_end(&mut chunk)?;
            offset += chunk.len() as u64;
            if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                return Ok(()); // the reader went away (a pipe into head)
            }
        }
        if ended {
            return Ok(());
        }
        thread::sleep(POLL);
    }
}

/// Blocks until the run ends (or, with `--past-iteration N`, moves past
/// iteration N, or `--timeout` passes), looking at its record every
/// `WAIT_LOOK`: the fleet follows a run with this, one session per change,
/// and learns of the end within a look rather than a poll's backoff.
pub fn wait(args: WaitArgs) -> anyhow::Result<ExitStatus> {
    let first = find(&args.select.run, &args.select.workdir)?;
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let answer = |record: &RunRecord| -> anyhow::Result<()> {
        if args.json {
            println!("{}", serde_json::to_string_pretty(record)?);
        }
        Ok(())
    };
    loop {
        let record = current(RunRecord::load(&first.run_dir())?);
        if record.state.is_final() {
            eprint!("{}", record.summary());
            answer(&record)?;
            return Ok(record.state.exit_status());
        }
        let moved_on = args
            .past_iteration
            .is_some_and(|n| record.iteration.is_some_and(|now| now > n));
        if moved_on {
            answer(&record)?;
            return Ok(ExitStatus::Environment);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            answer(&record)?;
            return Err(fail(
                ExitStatus::Environment,
                format!(
                    "run {} is still {} after --timeout",
                    record.run_id, record.state
                ),
            ));
        }
        thread::sleep(WAIT_LOOK);
    }
}
