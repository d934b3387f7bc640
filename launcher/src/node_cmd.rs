//! Running the node's own tools (podman, systemctl, bitcoin-cli) the way
//! the node runs them: as the app user when we are root and it exists
//! (rootless podman, `systemctl --user`), with a timeout that ends the
//! command's whole process group, since a wedged podman must not wedge the
//! preflight.
//!
//! They get a minimal environment, never ours whole: what the app user's
//! processes are given is readable in their /proc/PID/environ by that user,
//! and ours may hold ARCHY_PASSWORD.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The most of a node command's output read (`podman ps` on a busy node is
/// well under a MiB).
const OUTPUT_MAX: u64 = 16 << 20;

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    /// The command as run, for evidence.
    pub shown: String,
}

/// The app user's uid, when it exists and we are root (so must switch to it).
fn switch_to_app_user() -> Option<u32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    crate::app_user::lookup().map(|user| user.uid)
}

/// The variables a node command may see, when we have them.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// Whether `program` is on PATH (or is a path that exists).
pub fn exists(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|dir| std::path::Path::new(dir).join(program).is_file())
}

/// Runs `argv` as the node would (see the module doc), for at most `timeout`.
///
/// The command is the leader of its own process group. On timeout the
/// whole group gets SIGTERM (runuser passes it on to the command it runs in
/// a session of its own), then SIGKILL. Its output is awaited no longer
/// than the deadline either: a descendant that escaped the group (a new
/// session) and keeps the pipe open cannot hold the preflight.
pub fn run(argv: &[&str], timeout: Duration) -> Output {
    let mut full: Vec<String> = Vec::new();
    if let Some(uid) = switch_to_app_user() {
        full.extend(
            [
                "runuser",
                "-u",
                crate::app_user::NAME,
                "--",
                "env",
                &format!("XDG_RUNTIME_DIR=/run/user/{uid}"),
            ]
            .map(String::from),
        );
    }
    full.extend(argv.iter().map(|s| s.to_string()));
    let shown = full.join(" ");
    let mut cmd = Command::new(&full[0]);
    cmd.env_clear();
    for key in KEPT_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    let spawned = cmd
        .args(&full[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return Output {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", full[0]),
                shown,
            }
        }
    };
    let group = child.id() as i32;
    let out = reader(child.stdout.take().expect("piped"));
    let err = reader(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                signal_group(group, libc::SIGTERM);
                thread::sleep(Duration::from_millis(500));
                signal_group(group, libc::SIGKILL);
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    // The output, as far as it came by the deadline (and a moment more, for
    // the pipe to drain after a timely exit).
    let until = deadline.max(Instant::now()) + Duration::from_millis(200);
    let left = || until.saturating_duration_since(Instant::now());
    let stdout = out.recv_timeout(left());
    let stderr = err.recv_timeout(left());
    let held = stdout.is_err() || stderr.is_err();
    let mut stderr = stderr.unwrap_or_default();
    if status.is_none() {
        stderr = format!("timed out after {}s; {stderr}", timeout.as_secs());
    } else if held {
        stderr = format!(
            "it exited, but a process it left behind kept its output open past {}s; {stderr}",
            timeout.as_secs()
        );
    }
    Output {
        ok: status.is_some_and(|s| s.success()) && !held,
        stdout: stdout.unwrap_or_default(),
        stderr,
        shown,
    }
}

/// Reads `pipe` to its end on a thread of its own; the text arrives on the
/// channel (or never, when something keeps the pipe open).
fn reader(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut pipe).take(OUTPUT_MAX).read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

fn signal_group(group: i32, signal: i32) {
    // SAFETY: kill has no memory preconditions; a negative pid names the
    // process group the command leads (its pid, as process_group(0) made it).
    unsafe {
        libc::kill(-group, signal);
    }
}
