//! `cargo xtask bundle`: the bundle without Nix. Fetches the pinned inputs,
//! builds static jq, hands everything to `bundle/stage.sh` (the step
//! `nix/bundle.nix` shares) and packs the stage with `launcher pack`. This
//! module holds the modes; each step is a module of its own.

/// A progress line on stderr, named after the task.
macro_rules! log {
    ($($arg:tt)*) => { eprintln!("xtask bundle: {}", format_args!($($arg)*)) };
}

mod elf;
mod evidence;
mod fetch;
mod gather;
mod host;
mod jq;
mod launcher;
mod lock;
mod stage;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::ArgGroup;
use xshell::cmd;

use host::Host;
use lock::Lock;

const LONG_ABOUT: &str = "\
Build the archy-gate bundle without Nix, from Debian and registry sources.

With OUT_DIR: stage the bundle tree, build the static launcher and run `launcher pack STAGE \
--launcher BIN --out OUT_DIR`, which writes OUT_DIR/archy-gate, OUT_DIR/manifest.json and \
OUT_DIR/SHA256SUMS. bundle/build.sh runs this from any directory.

Inputs: every downloaded artifact is pinned by version and sha256 in bundle/inputs.lock (the \
columns are described there) and checked after each download and each cache hit; a mismatch \
stops the build. Downloads go through the machine's own configured pip (in a throwaway venv), \
npm and apt; no registry address is written here.

The stage (docs/ARCHITECTURE.md has the layout), laid out by bundle/stage.sh:
  stage.json     description read by `launcher pack`
  bin/bash       Debian's bash-static, the binary only
  bin/jq         static jq (musl, oniguruma builtin), built from the upstream release
                 tarball inside the PyPI `jq` sdist (deps/)
  bin/bats -> ../lib/bats-core/bin/bats
  lib/bats-core/ bats-core from npm, laid out by its own install.sh (bin, lib, libexec)
  lib/bats-support/ lib/bats-assert/ lib/bats-file/   each with load.bash at the top
  lifecycle/     a copy of bundle/lifecycle/";

const AFTER_LONG_HELP: &str = "\
Environment:
  ARCHY_GATE_CACHE       cache for downloads and builds, keyed by sha256 / version
                         (default: ${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate)
  ARCHY_GATE_LAUNCHER    use this (static) launcher binary instead of building launcher/
  ARCHY_GATE_NO_INSTALL  1: never run apt-get install or rustup target add; fail instead
  SOURCE_DATE_EPOCH      passed on to the build and to `launcher pack`; when unset, the time of
                         the repository's last git commit is used if there is one

Host needs: Debian 12 (or alike) with apt; missing packages (build-essential, musl-tools, \
python3-venv, npm, binutils) are installed with apt-get when first needed (root or sudo). The \
launcher needs Rust (rustup); the x86_64-unknown-linux-musl target is added when missing.";

/// The bundle without Nix (see --help for the stage it lays out).
#[derive(clap::Args)]
#[command(long_about = LONG_ABOUT, after_long_help = AFTER_LONG_HELP)]
#[command(group(ArgGroup::new("mode").required(true)))]
pub struct Args {
    /// Stage, build the static launcher and pack: OUT_DIR/archy-gate, manifest.json, SHA256SUMS
    #[arg(value_name = "OUT_DIR", group = "mode")]
    out_dir: Option<PathBuf>,
    /// Only stage the bundle tree into DIR (absent or empty); no launcher is built or needed
    #[arg(long, value_name = "DIR", group = "mode")]
    stage_only: Option<PathBuf>,
    /// Only gather the stage's inputs into DIR (absent or empty), as bundle/stage.sh takes
    /// them, with DIR/inputs.json naming their versions and sources; the Nix test feeds them to
    /// nix/bundle.nix through its stand-in for nixpkgs
    #[arg(long, value_name = "DIR", group = "mode")]
    inputs_only: Option<PathBuf>,
    /// Run jq's own upstream test suite (the tests/*test drivers of the pinned jq release)
    /// against the executable JQ (default: the static jq this task builds); prints per-driver
    /// and total counts
    #[arg(long, value_name = "JQ", num_args = 0..=1, group = "mode")]
    check_jq: Option<Option<PathBuf>>,
}

enum Mode {
    Build(PathBuf),
    StageOnly(PathBuf),
    InputsOnly(PathBuf),
    CheckJq(Option<PathBuf>),
}

impl Args {
    fn mode(self) -> Mode {
        match self {
            Args {
                stage_only: Some(dir),
                ..
            } => Mode::StageOnly(dir),
            Args {
                inputs_only: Some(dir),
                ..
            } => Mode::InputsOnly(dir),
            Args {
                check_jq: Some(jq), ..
            } => Mode::CheckJq(jq),
            Args {
                out_dir: Some(dir), ..
            } => Mode::Build(dir),
            // clap's required group: exactly one of the four is set
            _ => unreachable!("no mode given"),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let mode = args.mode();
    normalize_process();
    let repo = repo_root();
    let host = Host::new(cache_dir()?)?;
    let lock = Lock::read(&repo.join("bundle/inputs.lock"))?;
    set_source_date_epoch(&host, &repo);

    match mode {
        Mode::CheckJq(jq) => {
            let built = jq::build(&host, &lock)?;
            let jq = jq.unwrap_or_else(|| built.join("jq"));
            jq::check(&host, &jq, &built)
        }
        Mode::StageOnly(dir) => {
            into_new_dir(&dir, |partial| stage::stage(&host, &lock, &repo, partial))?;
            log!("staged the bundle tree in {}", dir.display());
            Ok(())
        }
        Mode::InputsOnly(dir) => {
            into_new_dir(&dir, |partial| {
                gather::gather(&host, &lock, partial).map(|_| ())
            })?;
            log!("gathered the inputs in {}", dir.display());
            Ok(())
        }
        Mode::Build(dir) => {
            let st = host.scratch("stage-tree")?;
            stage::stage(&host, &lock, &repo, st.path())?;
            let launcher = launcher::static_launcher(&host, &repo)?;
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let out = std::path::absolute(&dir)?;
            let (st, sh) = (st.path(), &host.sh);
            // The SBOM and the provenance beside the bundle: pack writes them
            // from this description and what it measures itself.
            let info = host.scratch("build-info")?;
            let info = info.path().join("build-info.json");
            evidence::write(&host, &lock, &repo, &info)?;
            cmd!(
                sh,
                "{launcher} pack {st} --launcher {launcher} --out {out} --build-info {info}"
            )
            .quiet()
            .run()
            .context("launcher pack failed")?;
            log!(
                "wrote {0}/archy-gate, {0}/manifest.json, {0}/SHA256SUMS, {0}/sbom.cdx.json, {0}/provenance.json",
                out.display()
            );
            Ok(())
        }
    }
}

/// What the shell script set first: a fixed locale, time zone and umask for
/// everything this task runs. And none of the variables `cargo run` (or an
/// outer `cargo test`) sets for this binary: a nested cargo (the launcher's
/// build) would hand them to build scripts, which track some of them, and
/// rebuild. A caller's own cargo settings (CARGO_HOME, CARGO_TARGET_DIR,
/// CARGO_NET_*, ...) stay.
fn normalize_process() {
    const SET_BY_CARGO: &[&str] = &[
        "CARGO",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    // Single-threaded still: nothing else reads the environment yet.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let by_cargo = SET_BY_CARGO.contains(&key.as_ref())
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_"); // CARGO_BIN_NAME, a test's CARGO_BIN_EXE_*
        if by_cargo {
            std::env::remove_var(key.as_ref());
        }
    }
    std::env::set_var("LC_ALL", "C");
    std::env::set_var("TZ", "UTC");
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
}

/// The checkout this xtask was built from.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the checkout")
        .to_path_buf()
}

/// `$ARCHY_GATE_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate`.
fn cache_dir() -> Result<PathBuf> {
    let non_empty = |key| std::env::var_os(key).filter(|v| !v.is_empty());
    let dir = match non_empty("ARCHY_GATE_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => match non_empty("XDG_CACHE_HOME") {
            Some(base) => PathBuf::from(base),
            None => match non_empty("HOME") {
                Some(home) => PathBuf::from(home).join(".cache"),
                None => bail!("no cache dir: set ARCHY_GATE_CACHE (or HOME)"),
            },
        }
        .join("archy-gate"),
    };
    Ok(std::path::absolute(dir)?)
}

/// Without SOURCE_DATE_EPOCH, the time of the checkout's last commit, when
/// it is a git checkout with one (exported for every step after this).
fn set_source_date_epoch(host: &Host, repo: &Path) {
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some_and(|v| !v.is_empty()) {
        return;
    }
    if !host::on_path("git") {
        return;
    }
    let sh = &host.sh;
    let has_head = cmd!(sh, "git -C {repo} rev-parse --verify -q HEAD")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !has_head {
        return;
    }
    if let Ok(time) = cmd!(sh, "git -C {repo} log -1 --format=%ct").quiet().read() {
        std::env::set_var("SOURCE_DATE_EPOCH", time.trim());
    }
}

/// Fills DIR (absent or empty) through a scratch dir beside it, renamed into
/// place at the end: a failed run leaves no half-made tree.
fn into_new_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dir.exists() {
        let empty = dir.is_dir() && fs::read_dir(dir)?.next().is_none();
        ensure!(empty, "{} exists and is not an empty dir", dir.display());
    }
    let name = dir
        .file_name()
        .with_context(|| format!("{} names no directory", dir.display()))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".partial.");
    let partial = host::scratch_dir(parent, &prefix)?;
    fill(&std::path::absolute(partial.path())?)?;
    if dir.is_dir() {
        fs::remove_dir(dir).with_context(|| format!("removing the empty {}", dir.display()))?;
    }
    let partial = partial.keep();
    fs::rename(&partial, dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))
}
