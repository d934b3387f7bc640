//! Running the node's own tools (podman, systemctl, bitcoin-cli) the way
//! the node runs them: as the app user when we are root and it exists
//! (rootless podman, `systemctl --user`), with a timeout, since a wedged
//! podman must not wedge the preflight.
//!
//! They get a minimal environment, never ours whole: what the app user's
//! processes are given is readable in their /proc/PID/environ by that user,
//! and ours may hold ARCHY_PASSWORD.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

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

/// Runs `argv` as the node would (see the module doc).
pub fn run(argv: &[&str]) -> Output {
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
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if status.is_none() {
        stderr = format!("timed out after {}s; {stderr}", TIMEOUT.as_secs());
    }
    Output {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
        shown,
    }
}
