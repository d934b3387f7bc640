//! The launcher a bundle is headed with: its version (the bundle's, read
//! from Cargo.toml), and the static binary, built the way every script and
//! test builds it (`build_static_launcher` in scripts/lib.sh) or named by
//! ARCHY_GATE_LAUNCHER.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use xshell::cmd;

use super::elf::assert_static;
use super::host::{is_executable, on_path, Host};

const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The launcher crate's version: `[package] version` in launcher/Cargo.toml,
/// or the workspace's `[workspace.package] version` when it inherits it.
pub fn version(repo: &Path) -> Result<String> {
    let crate_toml = repo.join("launcher/Cargo.toml");
    let package = read_manifest(&crate_toml)?.package;
    match package.and_then(|p| p.version) {
        Some(Version::Literal(version)) => Ok(version),
        Some(Version::Inherited { workspace: true }) => {
            let root_toml = repo.join("Cargo.toml");
            let inherited = read_manifest(&root_toml)?
                .workspace
                .and_then(|w| w.package)
                .and_then(|p| p.version);
            match inherited {
                Some(Version::Literal(version)) => Ok(version),
                _ => bail!(
                    "{} inherits its version, but {} has no [workspace.package] version",
                    crate_toml.display(),
                    root_toml.display()
                ),
            }
        }
        _ => bail!(
            "{} has no [package] version (a string, or version.workspace = true)",
            crate_toml.display()
        ),
    }
}

#[derive(Deserialize)]
struct Manifest {
    package: Option<Package>,
    workspace: Option<Workspace>,
}

#[derive(Deserialize)]
struct Workspace {
    package: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    version: Option<Version>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Version {
    Literal(String),
    Inherited { workspace: bool },
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The static launcher: ARCHY_GATE_LAUNCHER when set, else built from the
/// checkout's launcher/ for musl.
pub fn static_launcher(host: &Host, repo: &Path) -> Result<PathBuf> {
    if let Some(given) = std::env::var_os("ARCHY_GATE_LAUNCHER").filter(|v| !v.is_empty()) {
        let given = PathBuf::from(given);
        if !is_executable(&given) {
            bail!("ARCHY_GATE_LAUNCHER={} is not executable", given.display());
        }
        let launcher = std::path::absolute(&given)?;
        log!(
            "using the launcher {} (ARCHY_GATE_LAUNCHER)",
            launcher.display()
        );
        assert_static(host, &launcher)?;
        return Ok(launcher);
    }
    if !repo.join("launcher/Cargo.toml").is_file() {
        bail!(
            "no launcher crate at {} (set ARCHY_GATE_LAUNCHER)",
            repo.join("launcher").display()
        );
    }
    if !on_path("cargo") {
        bail!("cargo not found: install Rust with rustup");
    }
    host.need(&[("musl-gcc", "musl-tools")])?;
    let sh = &host.sh;
    if on_path("rustup") {
        let installed = cmd!(sh, "rustup target list --installed").quiet().read()?;
        if !installed.lines().any(|t| t == MUSL_TARGET) {
            host.may_install(&format!("the Rust target {MUSL_TARGET}"))?;
            host.run_logged("rustup-target", cmd!(sh, "rustup target add {MUSL_TARGET}"))?;
        }
    }
    log!("building the launcher (cargo, {MUSL_TARGET})");
    let _cd = sh.push_dir(repo);
    let built = cmd!(sh, "bash -c '. scripts/lib.sh && build_static_launcher'")
        .quiet()
        .read()
        .context("cargo build of the launcher failed")?;
    let launcher = PathBuf::from(built.trim());
    assert_static(host, &launcher)?;
    Ok(launcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn the_version_is_the_crates_or_the_workspaces() {
        let repo = tempfile::tempdir().unwrap();
        let repo = repo.path();
        write(
            repo,
            "Cargo.toml",
            "[workspace.package]\nversion = \"2.0.0\"\n",
        );
        write(
            repo,
            "launcher/Cargo.toml",
            "[package]\nversion = \"1.2.3\"\n",
        );
        assert_eq!(version(repo).unwrap(), "1.2.3");
        write(
            repo,
            "launcher/Cargo.toml",
            "[package]\nversion.workspace = true\n",
        );
        assert_eq!(version(repo).unwrap(), "2.0.0");
        write(repo, "Cargo.toml", "[workspace]\n");
        let err = format!("{:#}", version(repo).unwrap_err());
        assert!(err.contains("no [workspace.package] version"), "{err}");
        write(
            repo,
            "launcher/Cargo.toml",
            "[package]\nname = \"launcher\"\n",
        );
        let err = format!("{:#}", version(repo).unwrap_err());
        assert!(err.contains("has no [package] version"), "{err}");
    }
}
