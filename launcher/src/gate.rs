//! Running the gate: the bundle's bash on the entry script, in its own
//! process group, with the ARCHY_* environment, its output teed (password
//! redacted) to gate.log and the terminal, signals passed to the whole group,
//! and nothing of it left running afterwards.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clock;
use crate::private_fs::{Create, PrivateDir};
use crate::reports;
use crate::runs::{IterationTime, RunRecord, RunState, LOG};
use crate::secret::{Redactor, Secret};
use crate::signals;

/// How long the gate has to end after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// How often the run dir is looked at for a new iteration.
const ITERATION_LOOK: Duration = Duration::from_millis(100);

/// Where the gate's live output goes besides gate.log.
#[derive(Clone, Copy)]
pub enum Echo {
    Stdout,
    Stderr,
    Nowhere,
}

/// The gate's command line and environment, from the record.
pub fn command(record: &RunRecord, secret: Option<&Secret>) -> Command {
    let dir = &record.bundle.dir;
    let bash = dir.join("bin/bash");
    let entry = dir.join(record.entry());
    let mut cmd = if bash.is_file() {
        let mut c = Command::new(&bash);
        c.arg(&entry);
        c
    } else {
        Command::new(&entry)
    };
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    if let Some(step) = record.cross.as_ref().and_then(|c| c.step.as_ref()) {
        cmd.args(step.files.iter().map(|f| dir.join(f)));
        cmd.args(&step.args);
    }
    cmd.args(&record.gate_args);
    // After the operator's: bats keeps the last --filter it is given.
    if let Some(rerun) = &record.rerun {
        cmd.args(rerun.gate_args());
    }
    cmd.current_dir(dir)
        .env("PATH", format!("{dir}/bin:{path}"))
        .env("BATS_LIB_PATH", dir.join("lib"))
        .env("ARCHY_HOST", &record.host)
        .env("ARCHY_SCHEME", &record.scheme)
        .env(
            "ARCHY_ALLOW_DESTRUCTIVE",
            if record.allow_destructive { "1" } else { "0" },
        )
        .env("ARCHY_ITERATIONS", record.iterations.to_string())
        .env(
            "ARCHY_ALLOW_CLEARTEXT",
            if record.allow_cleartext { "1" } else { "0" },
        )
        .env("ARCHY_GATE_BUNDLE_DIR", dir)
        .env("ARCHY_GATE_RUN_DIR", record.run_dir())
        .env("ARCHY_GATE_RUN_ID", &*record.run_id)
        .env_remove(crate::lock::LOCK_FD_ENV);
    if let Some(cross) = &record.cross {
        cmd.envs(crate::cross_suite::environment(cross, &record.run_dir()));
    }
    if let Ok(exe) = std::env::current_exe() {
        cmd.env("ARCHY_GATE_LAUNCHER", exe);
    }
    match secret {
        Some(s) => cmd.env("ARCHY_PASSWORD", s.expose()),
        None => cmd.env_remove("ARCHY_PASSWORD"),
    };
    cmd
}

/// Runs the gate to its end and records it. Returns the final state.
pub fn supervise(
    record: &mut RunRecord,
    secret: Option<&Secret>,
    echo: Echo,
) -> anyhow::Result<RunState> {
    signals::install();
    let run_dir = record.run_dir();
    // Ours alone, made new: nothing planted can be written through.
    let log = PrivateDir::open(&run_dir, Create::No)?
        .create_file(LOG, 0o600)
        .with_context(|| format!("cannot create {run_dir}/{LOG}"))?;
    let redactor = Redactor::new(secret);
    let (reader, writer) = io::pipe().context("cannot make a pipe for the gate's output")?;
    let mut cmd = command(record, secret);
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    let started = Instant::now();
    record.gate_started_unix = Some(clock::now_unix_f64());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = redactor.apply(&format!(
                "cannot start the {} {}: {e}",
                record.what(),
                record.bundle.dir.join(record.entry())
            ));
            finish(record, RunState::Error, None, Some(message), started);
            record.save()?;
            return Ok(RunState::Error);
        }
    };
    drop(cmd); // closes our copies of the pipe's write end
    let pgid = child.id();
    record.state = RunState::Running;
    record.gate_pid = Some(pgid);
    record.save()?;

    let (done_tx, done_rx) = mpsc::channel();
    let copier = thread::spawn(move || {
        copy_output(reader, log, &redactor, echo);
        let _ = done_tx.send(());
    });

    let mut interrupted_at: Option<Instant> = None;
    let mut looked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        // Which iteration the gate is in, for those who follow the record.
        if looked.elapsed() >= ITERATION_LOOK {
            looked = Instant::now();
            let now = current_iteration(&run_dir);
            if now > record.iteration {
                mark_iterations(record, now, clock::now_unix_f64());
                let _ = record.save();
            }
        }
        if signals::received().is_some() {
            match interrupted_at {
                None => {
                    signals::kill_group(pgid, libc::SIGTERM);
                    interrupted_at = Some(Instant::now());
                }
                Some(at) if at.elapsed() > GRACE => signals::kill_group(pgid, libc::SIGKILL),
                Some(_) => {}
            }
        }
        thread::sleep(POLL);
    };
    // Whatever the gate left in its group goes with it.
    if signals::group_alive(pgid) {
        signals::kill_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while signals::group_alive(pgid) && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        signals::kill_group(pgid, libc::SIGKILL);
    }
    // A process that left the group may still hold the pipe: don't wait forever.
    if done_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
        let _ = copier.join();
    }

    let code = status.code().or_else(|| status.signal().map(|s| 128 + s));
    let state = if interrupted_at.is_some() || signals::received().is_some() {
        RunState::Interrupted
    } else if status.success() {
        RunState::Passed
    } else {
        RunState::Failed
    };
    let log_text = std::fs::read_to_string(run_dir.join(LOG)).unwrap_or_default();
    record.tests = reports::collect(&run_dir, LOG, &log_text);
    let counted = record.tests.as_ref().map_or(0, |t| t.total());
    let mut message = match (state, signals::received()) {
        (RunState::Interrupted, Some(s)) => Some(format!("interrupted by signal {s}")),
        _ => None,
    };
    // A suite that silently ran nothing must not be green.
    let state = if state == RunState::Passed && counted == 0 && !record.allow_no_tests {
        message = Some(match &record.rerun {
            Some(rerun) => format!(
                "no test ran: the filter for the tests that failed in run {} selected none \
                 (does the gate's entry pass its arguments to bats?); run the whole gate",
                rerun.of
            ),
            None => "no test ran: the gate exited 0 but no TAP or JUnit result was found (in \
                     its run dir or its output); for a suite that reports none, run with \
                     --allow-no-tests"
                .into(),
        });
        RunState::Failed
    } else {
        state
    };
    // A scenario step's values, read back into the record (the fleet
    // reads them there); a refused one fails the step.
    let (state, message) = match record.cross.as_mut().and_then(|c| c.step.as_mut()) {
        Some(step) => {
            match crate::cross_suite::collect_published(&run_dir, secret.map(|s| s.expose())) {
                Ok(values) => {
                    step.published = values;
                    (state, message)
                }
                Err(why) => (RunState::Failed, Some(why)),
            }
        }
        None => (state, message),
    };
    // A partial run's pass is not the gate's: recorded as `partial`.
    let state = crate::rerun::settle(state, record.rerun.as_ref());
    finish(record, state, code, message, started);
    record.save()?;
    Ok(state)
}

/// The newest iteration the gate began: the highest N of `iteration-N.tap`
/// in its run dir (run-gate.sh starts each iteration's TAP as it begins).
fn current_iteration(run_dir: &camino::Utf8Path) -> Option<u32> {
    std::fs::read_dir(run_dir)
        .ok()?
        .flatten()
        .filter_map(|e| reports::iteration_of(e.file_name().to_str()?))
        .max()
}

/// The gate moved on to iteration `now`, seen at `at`: each iteration it
/// went through since the last look begins (and those it left end) then.
fn mark_iterations(record: &mut RunRecord, now: Option<u32>, at: f64) {
    let from = record.iteration.map_or(1, |n| n + 1);
    for n in from..=now.unwrap_or(0) {
        mark_iteration(record, Some(n), at);
    }
    record.iteration = now;
}

/// The iteration times as the gate moves into iteration `now` at `at`: the
/// one before ends, `now` begins (None: the gate ended).
fn mark_iteration(record: &mut RunRecord, now: Option<u32>, at: f64) {
    if let Some(open) = record
        .iteration_times
        .last_mut()
        .filter(|t| t.ended_unix.is_none())
    {
        open.ended_unix = Some(at);
    }
    if let Some(n) = now {
        record.iteration_times.push(IterationTime {
            n,
            started_unix: at,
            ended_unix: None,
        });
    }
}

fn finish(
    record: &mut RunRecord,
    state: RunState,
    code: Option<i32>,
    message: Option<String>,
    started: Instant,
) {
    // An iteration shorter than one look is still seen: its TAP is there.
    let at = clock::now_unix_f64();
    let last = current_iteration(&record.run_dir());
    if last > record.iteration {
        mark_iterations(record, last, at);
    }
    mark_iteration(record, None, at);
    record.ended_unix = Some(at);
    let now = clock::now_unix();
    record.state = state;
    record.exit_code = code;
    record.ended = Some(clock::rfc3339(now));
    record.duration_secs = Some(started.elapsed().as_secs());
    if message.is_some() {
        record.message = message;
    }
}

/// Copies the gate's output line by line, redacted, to the log and the echo.
fn copy_output(reader: io::PipeReader, mut log: File, redactor: &Redactor, echo: Echo) {
    let mut lines = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut echo_ok = true;
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = redactor.apply(&String::from_utf8_lossy(&buf));
        let _ = log.write_all(line.as_bytes());
        if echo_ok {
            // A terminal that went away (SSH dropped) stops the echo, not the gate.
            echo_ok = match echo {
                Echo::Stdout => io::stdout()
                    .write_all(line.as_bytes())
                    .and_then(|()| io::stdout().flush())
                    .is_ok(),
                Echo::Stderr => io::stderr().write_all(line.as_bytes()).is_ok(),
                Echo::Nowhere => false,
            };
        }
    }
    let _ = log.flush();
}
