//! SIGINT and SIGTERM become a flag the supervisor polls, so it can pass
//! them on to the gate's whole process group and record the interruption.
//! SIGHUP is ignored: a dropped SSH session must not end a gate midway.

use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, note as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, note as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        // A vanished terminal must not kill us on the next write.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The last SIGINT or SIGTERM received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Sends `signal` to every process in group `pgid`. Gone already is fine.
pub fn kill_group(pgid: u32, signal: i32) {
    // SAFETY: kill with a negative pid addresses the group.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), signal);
    }
}

/// Whether any process of group `pgid` is still there.
pub fn group_alive(pgid: u32) -> bool {
    // SAFETY: signal 0 probes without delivering anything.
    unsafe { libc::kill(-(pgid as libc::pid_t), 0) == 0 }
}
