//! Shared by the black-box tests: the real `launcher` binary, a static
//! launcher to head bundles with, stage trees on disk, and commands run the
//! way a user runs them.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod bare_node;
pub mod chromium;
pub mod fixture;
pub mod flaky_proxy;
pub mod gate_bundle;
pub mod help;
pub mod hostile_node;
pub mod lab;
pub mod netns;
pub mod ssh_node;
pub mod standin;
pub mod strace;

/// The launcher under test, as cargo built it for this test run.
pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_launcher"))
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A statically linked launcher, to head bundles that must run anywhere:
/// `$ARCHY_GATE_STATIC_LAUNCHER` when set, else built once for musl.
pub fn static_launcher() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("ARCHY_GATE_STATIC_LAUNCHER") {
                return PathBuf::from(path);
            }
            // The same build the scripts make (scripts/lib.sh), so both share it.
            let output = outside_cargo(Command::new("bash"))
                .current_dir(workspace_root())
                .args(["-c", ". scripts/lib.sh && build_static_launcher"])
                .output()
                .expect("bash runs");
            assert!(
                output.status.success(),
                "building the static launcher failed: install the musl target and musl-tools (see README)\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
        })
        .clone()
}

/// A command without the variables `cargo test` sets for test binaries:
/// build scripts track some of them (CARGO_PKG_*, OUT_DIR), and a nested
/// cargo that saw them would rebuild what the scripts built without them.
/// Copies `src` to `dest` with `mode`, for something to execute, by a child
/// process (`cp`), never through a descriptor of this process: a test
/// thread that forks meanwhile would inherit a writable copy of it, and an
/// exec of the file in that moment fails with ETXTBSY ("Text file busy", as
/// a CI run once saw).
pub fn copy_executable(src: &Path, dest: &Path, mode: u32) {
    let status = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success(), "cp {} {}", src.display(), dest.display());
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).unwrap();
}

/// `bytes` into `dest` with `mode`, by a child process (`cat`), for the
/// reason `copy_executable` gives.
pub fn write_executable(dest: &Path, bytes: &[u8], mode: u32) {
    use std::io::Write;
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\"", "sh"])
        .arg(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "writing {}",
        dest.display()
    );
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).unwrap();
}

/// Bounds what `cmd`'s process may take: `memory` bytes of address space
/// (RLIMIT_AS) and `cpu_seconds` of CPU (RLIMIT_CPU: SIGXCPU then, SIGKILL a
/// second later), so a defect that loops or hoards fails its test instead
/// of hanging or starving the rest.
pub fn limit(cmd: &mut Command, memory: u64, cpu_seconds: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            for (what, soft, hard) in [
                (libc::RLIMIT_AS, memory, memory),
                (libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
            ] {
                let l = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(what, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

pub fn outside_cargo(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let ours = key == "CARGO_HOME" || key == "CARGO_TARGET_DIR";
        if (key.starts_with("CARGO") && !ours) || key == "OUT_DIR" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

/// The real bundle, as `bundle/build.sh` makes it: `$ARCHY_GATE_BUNDLE_DIR`
/// when set (scripts/test.sh builds it first), else built once into target/.
pub fn real_bundle_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(dir) = std::env::var_os("ARCHY_GATE_BUNDLE_DIR") {
                return PathBuf::from(dir);
            }
            let out = workspace_root().join("target/test-bundle");
            let run = Run::of(
                outside_cargo(Command::new(workspace_root().join("bundle/build.sh")))
                    .arg(&out)
                    .output()
                    .expect("bundle/build.sh runs"),
            );
            assert_eq!(run.code, 0, "bundle/build.sh failed:\n{}", run.stderr);
            out
        })
        .clone()
}

/// Runs a command and keeps everything it said.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `launcher ARGS…` with the host-built binary.
pub fn launch<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Run::of(
        Command::new(launcher())
            .args(args)
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("launcher runs"),
    )
}

/// A stage tree being written by a test.
pub struct Stage {
    pub root: PathBuf,
}

impl Stage {
    pub fn new(root: impl Into<PathBuf>) -> Stage {
        let root = root.into();
        fs::create_dir_all(&root).unwrap();
        Stage { root }
    }

    /// The smallest stage `pack` accepts: an entry script.
    pub fn minimal(root: impl Into<PathBuf>) -> Stage {
        Stage::new(root).file(
            "lifecycle/run-gate.sh",
            b"#!/usr/bin/env bash\necho gate\n",
            0o755,
        )
    }

    pub fn file(self, rel: &str, contents: &[u8], mode: u32) -> Stage {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn dir(self, rel: &str) -> Stage {
        fs::create_dir_all(self.root.join(rel)).unwrap();
        self
    }

    pub fn symlink(self, rel: &str, target: &str) -> Stage {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path).unwrap();
        self
    }

    /// `launcher pack` into `out`; returns the single file.
    pub fn pack(&self, out: &Path) -> PathBuf {
        launch([
            "pack".as_ref(),
            self.root.as_os_str(),
            "--launcher".as_ref(),
            static_launcher().as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .expect(0);
        out.join("archy-gate")
    }
}

/// Every path below `root` with its kind, sorted: to prove nothing else was written.
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(items) = fs::read_dir(dir) else { return };
        for item in items.flatten() {
            let path = item.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.push(format!("{rel}{}", if meta.is_dir() { "/" } else { "" }));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file below `dir`, with its text, for leak checks.
pub fn all_text(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = fs::symlink_metadata(item.path()).unwrap();
            if meta.is_dir() {
                stack.push(item.path());
            } else if meta.is_file() && meta.len() < 10_000_000 {
                out.push((
                    item.path(),
                    String::from_utf8_lossy(&fs::read(item.path()).unwrap_or_default())
                        .into_owned(),
                ));
            }
        }
    }
    out
}

/// A node's entry in a fleet's report.json, by name.
pub fn node_report<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report:#}"))
}

/// The python of the evidence judges' venv (scripts/lib.sh:
/// ensure_evidence_venv; scripts/test.sh exports it). Missing is a failure,
/// never a skip: the evidence is only as good as the third party judging it.
pub fn evidence_python() -> PathBuf {
    match std::env::var_os("ARCHY_GATE_EVIDENCE_PYTHON") {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        _ => panic!(
            "ARCHY_GATE_EVIDENCE_PYTHON is not set to the evidence venv's python: run scripts/test.sh, or \
             export ARCHY_GATE_EVIDENCE_PYTHON=$(bash -c '. scripts/lib.sh && ensure_evidence_venv') from the checkout"
        ),
    }
}

/// `launcher/tests/evidence/check.py MODE ARGS…` under the evidence venv.
pub fn evidence_check(args: &[&std::ffi::OsStr]) -> Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/evidence/check.py");
    Run::of(
        Command::new(evidence_python())
            .arg(script)
            .args(args)
            .output()
            .unwrap(),
    )
}
