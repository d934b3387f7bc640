//! The build host: the shell commands run in, the cache they write to (its
//! scratch dirs and logs), and the Debian packages installed when a command
//! is missing.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;
use xshell::{cmd, Cmd, Shell};

pub struct Host {
    pub sh: Shell,
    /// Downloads (`dl/SHA256/`), builds (`build/`), `logs/`, `tmp/`, `rejected/`.
    pub cache: PathBuf,
    /// ARCHY_GATE_NO_INSTALL=1: fail instead of installing.
    no_install: bool,
}

impl Host {
    pub fn new(cache: PathBuf) -> Result<Host> {
        for sub in ["tmp", "logs"] {
            let dir = cache.join(sub);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Host {
            sh: Shell::new()?,
            cache,
            no_install: std::env::var_os("ARCHY_GATE_NO_INSTALL").is_some_and(|v| v == "1"),
        })
    }

    /// A fresh dir under the cache's tmp/, removed when dropped.
    pub fn scratch(&self, prefix: &str) -> Result<TempDir> {
        self.scratch_in(&self.cache.join("tmp"), prefix)
    }

    /// A fresh dir in PARENT (created if needed), removed when dropped.
    pub fn scratch_in(&self, parent: &Path, prefix: &str) -> Result<TempDir> {
        scratch_dir(parent, format!("{prefix}.").as_ref())
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.cache.join("logs").join(format!("{name}.log"))
    }

    /// Runs CMD with its output in the cache's logs/NAME.log; on failure,
    /// shows the end of the log and fails.
    pub fn run_logged(&self, name: &str, cmd: Cmd<'_>) -> Result<()> {
        let shown = cmd.to_string();
        if self.run_to_log(name, cmd)? {
            return Ok(());
        }
        let log = self.log_path(name);
        show_tail(&log, 40);
        bail!("{name} failed: {shown} (full log: {})", log.display())
    }

    /// Runs CMD with stdout and stderr in logs/NAME.log; whether it succeeded.
    pub fn run_to_log(&self, name: &str, cmd: Cmd<'_>) -> Result<bool> {
        let log = self.log_path(name);
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let shown = cmd.to_string();
        let status = Command::from(cmd)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
            .with_context(|| format!("running {shown}"))?;
        Ok(status.success())
    }

    /// Installs the Debian packages of the commands missing from PATH, given
    /// as (command, package) pairs.
    pub fn need(&self, commands: &[(&str, &str)]) -> Result<()> {
        let mut packages: Vec<&str> = Vec::new();
        for &(command, package) in commands {
            if !on_path(command) && !packages.contains(&package) {
                packages.push(package);
            }
        }
        if packages.is_empty() {
            return Ok(());
        }
        self.apt_install(&packages)
    }

    /// python3 with venv and ensurepip (Debian splits them off).
    pub fn need_python_venv(&self) -> Result<()> {
        self.need(&[("python3", "python3")])?;
        let sh = &self.sh;
        let has_venv = cmd!(sh, "python3 -c 'import venv, ensurepip'")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok();
        if has_venv {
            return Ok(());
        }
        self.apt_install(&["python3-venv"])
    }

    /// Whether apt-get may be run; the error otherwise names what to install.
    pub fn may_install(&self, what: &str) -> Result<()> {
        if self.no_install {
            bail!("missing {what} (ARCHY_GATE_NO_INSTALL=1, so install it yourself)");
        }
        Ok(())
    }

    fn apt_install(&self, packages: &[&str]) -> Result<()> {
        let list = packages.join(" ");
        self.may_install(&format!("Debian packages: {list}"))?;
        let root = rustix::process::geteuid().is_root();
        if !root && !on_path("sudo") {
            bail!("need root or sudo to install Debian packages: {list}");
        }
        log!("installing Debian packages: {list}");
        let sh = &self.sh;
        let as_root = |program: &str| {
            if root {
                sh.cmd(program)
            } else {
                sh.cmd("sudo").arg(program)
            }
        };
        let install = || {
            as_root("env")
                .args(["DEBIAN_FRONTEND=noninteractive", "apt-get", "install"])
                .args(["-y", "-q", "--no-install-recommends"])
                .args(packages)
        };
        if self.run_to_log("apt-install", install())? {
            return Ok(());
        }
        log!("apt-get install failed; running apt-get update and trying again");
        self.run_logged("apt-update", as_root("apt-get").args(["update", "-q"]))?;
        self.run_logged("apt-install", install())
    }
}

/// A fresh dir in PARENT (created if needed), named PREFIX and six random
/// characters, mode 0700 (as `mktemp -d` makes it); removed when dropped.
pub fn scratch_dir(parent: &Path, prefix: &OsStr) -> Result<TempDir> {
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(6)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .with_context(|| format!("making a scratch dir in {}", parent.display()))
}

/// Whether PATH holds an executable file named COMMAND.
pub fn on_path(command: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(command)))
}

pub fn is_executable(file: &Path) -> bool {
    fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last N lines of LOG on stderr (nothing if it cannot be read).
pub fn show_tail(log: &Path, n: usize) {
    if let Ok(bytes) = fs::read(log) {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(n)..] {
            eprintln!("{line}");
        }
    }
}
