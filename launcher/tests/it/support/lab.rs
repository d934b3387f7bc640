//! The security lab: root and a second uid on one machine, as on every
//! node (the app user, a process escaping its containers). A lab script
//! runs as root in a private mount and pid namespace whose /tmp and
//! /var/tmp are fresh tmpfs (mode 1777, as on a node), so what the attacker
//! plants there is seen by nobody else and vanishes with the script;
//! `as_nobody CMD…` runs CMD as uid/gid 65534, the attacker. Pids start at
//! 1 in the namespace, so names built from a pid can be planted ahead.
//!
//! Everything a script needs lives in the lab's own dir, outside /tmp
//! (a checkout may sit below /tmp, hidden once /tmp is remounted):
//! `$LAB`, with `$HOME` = `$LAB/home`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Run;

/// Root-owned all the way up, outside /tmp and /var/tmp, and short (ssh
/// control sockets live below it).
pub const SCRATCH_DIR: &str = "/var/lib/archy-gate-tests/s";

/// A fresh dir below [`SCRATCH_DIR`], removed on drop.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    fs::create_dir_all(SCRATCH_DIR).unwrap();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(SCRATCH_DIR)
        .unwrap();
    // The attacker may read (not write) what root staged for the test.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub struct Lab {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

const PRELUDE: &str = r#"set -euo pipefail
mount -t tmpfs -o mode=1777 lab-tmp /tmp
mount -t tmpfs -o mode=1777 lab-var-tmp /var/tmp
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
cd "$LAB"
"#;

impl Lab {
    pub fn new() -> Lab {
        let tmp = scratch("lab.");
        let dir = tmp.path().to_path_buf();
        fs::create_dir(dir.join("home")).unwrap();
        fs::set_permissions(dir.join("home"), fs::Permissions::from_mode(0o700)).unwrap();
        Lab { dir, _tmp: tmp }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Copies `src` into the lab (executables from target/, a bundle).
    pub fn copy_in(&self, src: &Path, name: &str) -> PathBuf {
        let dest = self.dir.join(name);
        let mode = fs::metadata(src).unwrap().permissions().mode() & 0o7777;
        super::copy_executable(src, &dest, mode);
        dest
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let dest = self.dir.join(name);
        fs::write(&dest, text).unwrap();
        dest
    }

    /// Runs `script` (bash) as root in the lab's namespaces, with `env`.
    pub fn sh(&self, env: &[(&str, &str)], script: &str) -> Run {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
            "bash",
            "-c",
        ])
        .arg(format!("{PRELUDE}{script}"))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LAB", &self.dir)
        .env("HOME", self.dir.join("home"));
        for (key, value) in env {
            cmd.env(key, value);
        }
        Run::of(cmd.output().expect("unshare runs"))
    }
}
