//! `launcher run`: verify (signature, then digests), choose a work dir, take
//! the node lock, unpack or reuse, preflight, record the plan, then run the
//! gate here or hand it to a detached supervisor. Its verdict is the gate's.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::cli::{RunArgs, SuperviseArgs};
use crate::clock;
use crate::commands::preflight::context;
use crate::commands::{digest_lines, open};
use crate::digest::to_hex;
use crate::exit::{fail, ExitStatus};
use crate::gate::{self, Echo};
use crate::host;
use crate::lock::{NodeLock, LOCK_FD_ENV};
use crate::preflight;
use crate::rerun::Rerun;
use crate::run_id::RunId;
use crate::runs::{self, BundleFacts, RunRecord, RunState};
use crate::secret::{self, Secret};
use crate::trusted_keys;
use crate::unpack::{self, Prepared};
use crate::workdir;

pub fn run(args: RunArgs) -> anyhow::Result<ExitStatus> {
    // A refused host or scheme is the operator's to fix, before anything.
    crate::rpc::endpoint(
        &args.node.scheme,
        &args.node.host,
        args.node.allow_cleartext,
    )?;
    // bats would keep our --filter (the last one) anyway; saying so beats
    // silently dropping the operator's.
    if args.rerun_failed && args.gate_args.iter().any(|a| a == "--filter" || a == "-f") {
        return Err(fail(
            ExitStatus::Usage,
            "--rerun-failed chooses the tests itself (a bats --filter): drop --filter from \
             GATE_ARGS, or run without --rerun-failed",
        ));
    }
    let peers = args
        .peers
        .as_deref()
        .map(crate::cross_suite::parse_peers)
        .transpose()?;
    let bundle = open(&args.bundle)?;
    let pin = bundle.find_pin(args.pin.sha256.as_deref())?;
    let trust = trusted_keys::find_trust(args.trust.trust.as_deref())?;
    // Before anything is unpacked or executed: where the bundle came from.
    let signature = trusted_keys::check(&bundle, trust.as_ref())?;
    let checked = bundle.check_digests(pin)?;
    for line in digest_lines(&bundle, &checked) {
        eprintln!("{line}");
    }
    eprintln!("{}", signature.line());
    let (secret, password_source) = secret::obtain(
        args.password.password_file.as_deref(),
        args.password.password_stdin,
    )?;

    let manifest = unpack::read_manifest_only(&bundle)?;
    let cross = match &args.cross {
        Some(name) => {
            let suite = manifest
                .cross_suite(name)
                .map_err(|why| fail(ExitStatus::Usage, format!("--cross {name}: {why}")))?;
            let ask = crate::cross_suite::CrossAsk {
                suite: name,
                step: args.step.as_deref(),
                heal: args.heal,
                attempt: args.attempt,
                values: args.values.as_deref(),
                node: args.node_name.clone(),
                role: args.role.clone(),
                peers: peers.unwrap_or_default(),
            };
            Some(
                crate::cross_suite::plan(suite, ask)
                    .map_err(|why| fail(ExitStatus::Usage, format!("--cross {name}: {why}")))?,
            )
        }
        None => None,
    };
    let work = workdir::choose(
        args.workdir.as_deref(),
        bundle.head(),
        manifest.unpacked_bytes(),
    )?;
    for (dir, why) in &work.passed_over {
        eprintln!("work dir: passed over {dir}: {why}");
    }
    eprintln!("work dir: {}", work.path);
    if let Some(warning) = &work.space_warning {
        eprintln!("warning: {warning}");
    }
    // The lock before the bundle dir: a running gate's files are never rebuilt.
    let now = clock::now_unix();
    let run_id = match &args.run_id {
        Some(text) => {
            let id =
                RunId::parse(text).map_err(|e| fail(ExitStatus::Usage, format!("--run-id {e}")))?;
            runs::check_free(&work.dir, &id)?;
            id
        }
        None => RunId::generate(now),
    };
    let lock = NodeLock::acquire(&work.dir, &run_id)?;
    // Under the lock, so the run it reads has ended; before anything is
    // unpacked or recorded, so a refusal leaves everything as it was.
    let rerun = if args.rerun_failed {
        let rerun = Rerun::plan(&work.dir, &to_hex(&checked.whole_sha256))?;
        eprint!("{}", rerun.announce());
        Some(rerun)
    } else {
        None
    };
    let payload_hex = to_hex(&bundle.trailer.payload_sha256);
    let bdir = work.dir.ensure_dir("b")?;
    let bundle_dir = bdir.path().join(&payload_hex);
    let (manifest, prepared) = unpack::ensure(&bundle, manifest, &bdir, &payload_hex)?;
    match prepared {
        Prepared::Reused => eprintln!("bundle: reusing {bundle_dir} (re-checked)"),
        Prepared::Sealed => {
            eprintln!(
                "bundle: reusing {bundle_dir} (unchanged since it was checked: its seal holds)"
            )
        }
        Prepared::Unpacked => eprintln!("bundle: unpacked into {bundle_dir}"),
        Prepared::Rebuilt(why) => {
            eprintln!("bundle: {bundle_dir} failed its re-check ({why}); unpacked it again")
        }
    }

    let preflight = if args.skip_preflight {
        None
    } else {
        let report = preflight::run_checks(&context(
            &args.node,
            &args.checks,
            Some(secret.clone()),
            Some(work.path.clone()),
        ));
        let failed = report.failed().len();
        if failed > 0 {
            eprintln!("preflight:\n{}", report.table());
            if !args.force {
                // The node's verdict, not a failure to judge it: nothing ran.
                // The checks go to stdout too, for a caller that reads JSON
                // (the fleet: its preflight step is this one).
                if args.json {
                    println!("{}", serde_json::json!({ "preflight": report }));
                }
                eprintln!(
                    "preflight: {failed} check(s) failed: fix the node, or run anyway with --force"
                );
                return Ok(ExitStatus::Preflight);
            }
            eprintln!("preflight: {failed} check(s) failed; going ahead (--force)");
        } else {
            eprintln!("preflight: {}", report.counts());
        }
        Some(report)
    };

    let mut record = RunRecord {
        run_id: run_id.clone(),
        state: RunState::Starting,
        bundle: BundleFacts {
            file: bundle.path.clone(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            sha256: to_hex(&checked.whole_sha256),
            payload_sha256: payload_hex,
            verified: if checked.pin.is_some() {
                "payload+pin"
            } else {
                "payload"
            }
            .into(),
            dir: bundle_dir,
            entry: manifest.entry.clone(),
            signed_by: signature.key_id().map(str::to_string),
        },
        workdir: work.path.clone(),
        started: clock::rfc3339(now),
        started_unix: now,
        ended: None,
        duration_secs: None,
        exit_code: None,
        iterations: args.iterations,
        allow_destructive: args.allow_destructive,
        host: args.node.host.clone(),
        scheme: args.node.scheme.clone(),
        allow_cleartext: args.node.allow_cleartext,
        allow_no_tests: args.allow_no_tests,
        gate_args: args.gate_args.clone(),
        password_source: password_source.into(),
        detached: args.detach,
        supervisor_pid: Some(std::process::id()),
        gate_pid: None,
        host_facts: host::facts(),
        tests: None,
        forced: preflight.as_ref().is_some_and(|r| !r.failed().is_empty()),
        preflight,
        message: None,
        cross,
        rerun,
        iteration: None,
        iteration_times: Vec::new(),
        gate_started_unix: None,
        ended_unix: None,
    };
    let run_dir = runs::create_run_dir(&work.dir, &run_id)?.path().to_owned();
    record.save()?;

    if args.detach {
        let pid = detach(&mut record, &lock, &secret)?;
        drop(lock);
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "run_id": run_id,
                    "run_dir": run_dir,
                    "supervisor_pid": pid,
                    "preflight": record.preflight,
                })
            );
        } else {
            println!("{run_id}");
        }
        eprintln!("started run {run_id} in the background (pid {pid}); follow it with `launcher logs --follow {run_id}`");
        return Ok(ExitStatus::Success);
    }

    let echo = if args.json {
        Echo::Stderr
    } else {
        Echo::Stdout
    };
    let state = gate::supervise(&mut record, Some(&secret), echo)?;
    drop(lock);
    // The summary is the verdict's text: its first line says passed, failed
    // or interrupted, and where the log is.
    eprint!("{}", record.summary());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    }
    Ok(state.exit_status())
}

/// What the detached supervisor gets on its stdin, and nothing else: the
/// plan and the password travel together over a pipe no one else holds, so
/// no file another process could swap decides what it runs.
#[derive(serde::Serialize, serde::Deserialize)]
struct Handoff {
    record: RunRecord,
    password: String,
}

/// The detached supervisor: the same executable, in a new session, handed
/// the lock by fd and the plan and password on a pipe (never argv,
/// environment or a file).
fn detach(record: &mut RunRecord, lock: &NodeLock, secret: &Secret) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let fd = lock.inheritable();
    let mut child = Command::new("/proc/self/exe");
    child
        .arg("__supervise")
        .arg(record.run_dir())
        .env(LOCK_FD_ENV, fd.to_string())
        .env_remove("ARCHY_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the child leaves our session so
    // the caller's hangup never reaches it.
    unsafe {
        child.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = child
        .spawn()
        .context("cannot start the detached supervisor")?;
    // The supervisor acts only once its stdin closes, so this save is never
    // raced: the record names a live supervisor from now on.
    record.supervisor_pid = Some(child.id());
    record.save()?;
    let handoff = Handoff {
        record: record.clone(),
        password: secret.expose().to_string(),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    serde_json::to_writer(&mut stdin, &handoff)?;
    stdin.flush()?;
    drop(stdin);
    Ok(child.id())
}

/// `launcher __supervise RUN_DIR`: carries out a recorded plan, detached.
pub fn supervise(args: SuperviseArgs) -> anyhow::Result<ExitStatus> {
    let lock = NodeLock::from_env();
    let handoff: Handoff = serde_json::from_reader(std::io::stdin().lock())
        .context("the supervisor's handoff on stdin is not whole")?;
    let secret = Secret::from_pipe(handoff.password);
    let mut record = handoff.record;
    if record.run_dir() != args.run_dir {
        return Err(fail(
            ExitStatus::Usage,
            format!(
                "__supervise {}: the handoff is for another run",
                args.run_dir
            ),
        ));
    }
    let state = gate::supervise(&mut record, Some(&secret), Echo::Nowhere)?;
    drop(lock);
    Ok(state.exit_status())
}
