//! The node lock: one gate at a time per work dir. An flock on
//! `<workdir>/gate.lock`, released by the kernel when its holder dies, so a
//! crashed run never leaves a stale lock. The file names the holding run.
//! It is 0600 in the private work dir (private_fs.rs): no other uid can open it,
//! let alone hold it to keep every run out.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use anyhow::Context;

use crate::exit::{fail, ExitStatus};
use crate::private_fs::PrivateDir;

/// The environment variable that hands the held lock to a detached supervisor.
pub const LOCK_FD_ENV: &str = "ARCHY_GATE_LOCK_FD";
const LOCK_FILE: &str = "gate.lock";

pub struct NodeLock {
    file: File,
}

impl NodeLock {
    pub fn acquire(workdir: &PrivateDir, run_id: &str) -> anyhow::Result<NodeLock> {
        let path = workdir.path().join(LOCK_FILE);
        let mut file = workdir
            .open_or_create_file(LOCK_FILE, 0o600)
            .with_context(|| format!("cannot open the node lock {path}"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(fail(
                ExitStatus::Environment,
                format!(
                    "a gate is already running on this node: run {holder} holds {path}; \
                     follow it with `launcher logs --follow {holder}` or wait with `launcher wait {holder}`"
                ),
            ));
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{run_id}")?;
        Ok(NodeLock { file })
    }

    /// Lets a child inherit the lock across exec; returns the fd to name.
    pub fn inheritable(&self) -> RawFd {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        }
        fd
    }

    /// Takes over a lock handed down by `inheritable`, and keeps it from
    /// leaking further into the gate (whose leftovers would hold it).
    pub fn from_env() -> Option<NodeLock> {
        let fd: RawFd = std::env::var(LOCK_FD_ENV).ok()?.parse().ok()?;
        std::env::remove_var(LOCK_FD_ENV);
        // SAFETY: the parent handed us this open fd for exactly this purpose.
        let file = unsafe { File::from_raw_fd(fd) };
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
        Some(NodeLock { file })
    }
}
