//! What `run` verified is what it runs: a bundle rewritten after its pin
//! was checked (here, while `run` waits for the password on a FIFO) never
//! has its new bytes unpacked or run, and neither does a running
//! executable replaced at its path under it.
//!
//! A running executable cannot be rewritten in place here: the kernel says
//! ETXTBSY, nothing changes, and a test that tried proved nothing. What can
//! happen to it is what an updater or an attacker with the directory does:
//! a new file renamed over its path. The launcher must read its payload from
//! the running file (`/proc/self/exe`, or the descriptor it opened), never
//! again from the path, which now names the new bytes.

use crate::support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::{sha256_hex, Stage};

/// Two bundles of the same size whose gates say which one ran: the
/// rewrite keeps every offset the first one's trailer names.
fn same_size_pair(dir: &Path) -> (PathBuf, PathBuf) {
    // Padding that does not compress, so each extra byte of it moves the
    // payload's size by about one byte.
    let noise: String = (0u32..600)
        .map(|i| (b'a' + (i.wrapping_mul(2654435761) >> 27) as u8 % 26) as char)
        .collect();
    let pack = |name: &str, word: &str, pad: usize| {
        let gate = format!(
            "#!/bin/sh\necho 1..1\necho 'ok 1 the {word} bytes ran'\n# {}\n",
            &noise[..pad]
        );
        Stage::new(dir.join(format!("stage-{name}-{pad}")))
            .file("lifecycle/run-gate.sh", gate.as_bytes(), 0o755)
            .pack(&dir.join(format!("out-{name}-{pad}")))
    };
    let verified = pack("verified", "verified", 300);
    let size = fs::metadata(&verified).unwrap().len();
    for pad in 250..600 {
        let rewritten = pack("rewritten", "REWRITTN", pad);
        if fs::metadata(&rewritten).unwrap().len() == size {
            return (verified, rewritten);
        }
    }
    panic!("no rewrite of the same size");
}

/// Starts `cmd` with the password on FIFO `pw`, and returns once it has
/// printed its pin verdict (the pin was read and checked) and is waiting
/// for the password. The caller waits for the child.
#[allow(clippy::zombie_processes)]
fn start_and_wait_for_pin(mut cmd: Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no pin verdict: {said:?}"));
        let done = line.starts_with("pin ");
        said.push(line);
        if done {
            assert!(said.last().unwrap().starts_with("pin      ok"), "{said:?}");
            return (child, rx);
        }
    }
}

fn give_password_and_finish(
    child: Child,
    fifo: &Path,
    rx: mpsc::Receiver<String>,
) -> (i32, String, String) {
    let mut pw = fs::OpenOptions::new().write(true).open(fifo).unwrap();
    pw.write_all(b"pw\n").unwrap();
    drop(pw);
    let out = child.wait_with_output().unwrap();
    let stderr: Vec<String> = rx.try_iter().collect();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr.join("\n"),
    )
}

struct Setup {
    /// The verified bundle, where `run` reads it.
    bundle: PathBuf,
    /// What the file is rewritten to.
    rewritten: PathBuf,
    pin: String,
    /// The password's FIFO.
    fifo: PathBuf,
}

fn setup(dir: &Path) -> Setup {
    let (verified, rewritten) = same_size_pair(dir);
    let bundle = dir.join("archy-gate");
    fs::copy(&verified, &bundle).unwrap();
    let pin = sha256_hex(&fs::read(&bundle).unwrap());
    let fifo = dir.join("pw");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    Setup {
        bundle,
        rewritten,
        pin,
        fifo,
    }
}

#[test]
fn a_bundle_rewritten_after_its_pin_was_checked_never_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let Setup {
        bundle,
        rewritten,
        pin,
        fifo,
    } = setup(tmp.path());

    // The launcher that ships (the static one), running another file.
    let mut cmd = Command::new(support::static_launcher());
    cmd.arg("run")
        .arg(&bundle)
        .args(["--sha256", &pin, "--skip-preflight", "--password-file"])
        .arg(&fifo)
        .arg("--workdir")
        .arg(tmp.path().join("wd"));
    let (child, rx) = start_and_wait_for_pin(cmd);
    // In place, same inode, same size: every offset still fits.
    fs::write(&bundle, fs::read(&rewritten).unwrap()).unwrap();
    let (code, stdout, stderr) = give_password_and_finish(child, &fifo, rx);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("ok 1 the verified bytes ran"), "{stdout}");
    assert!(!stdout.contains("REWRITTN"), "{stdout}");
}

/// Before: this test rewrote the running file in place, which the kernel
/// refuses (ETXTBSY), so it passed whatever the launcher read. Now the path
/// is given new bytes by rename, which the kernel allows: a launcher that
/// opened the path again after its pin check would run them.
#[test]
fn a_running_executable_replaced_at_its_path_never_runs_the_new_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let Setup {
        bundle,
        rewritten,
        pin,
        fifo,
    } = setup(tmp.path());
    let running = fs::metadata(&bundle).unwrap().ino();

    // The single file runs itself: its payload is read via /proc/self/exe.
    let mut cmd = Command::new(&bundle);
    cmd.arg("run")
        .args(["--sha256", &pin, "--skip-preflight", "--password-file"])
        .arg(&fifo)
        .arg("--workdir")
        .arg(tmp.path().join("wd"));
    let (child, rx) = start_and_wait_for_pin(cmd);
    // A new file, renamed over the running one's path: the path now names
    // the rewritten bytes, the running process keeps its own inode.
    let next = tmp.path().join("archy-gate.next");
    fs::copy(&rewritten, &next).unwrap();
    fs::set_permissions(&next, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&next, &bundle).unwrap();
    assert_eq!(fs::read(&bundle).unwrap(), fs::read(&rewritten).unwrap());
    assert_ne!(fs::metadata(&bundle).unwrap().ino(), running);
    let (code, stdout, stderr) = give_password_and_finish(child, &fifo, rx);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("ok 1 the verified bytes ran"), "{stdout}");
    assert!(!stdout.contains("REWRITTN"), "{stdout}");
}
