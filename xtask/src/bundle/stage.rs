//! The stage: the gathered inputs handed to bundle/stage.sh, the step
//! nix/bundle.nix shares, which lays out the tree and writes stage.json.
//! Every value goes to it as one argument of its own; the libraries as one
//! JSON array (`--libs`).

use std::path::Path;

use anyhow::{ensure, Result};
use serde::Serialize;
use xshell::cmd;

use super::elf::assert_static;
use super::gather::{gather, LIBRARIES};
use super::host::Host;
use super::launcher;
use super::lock::Lock;

/// One element of stage.sh's `--libs`.
#[derive(Serialize)]
struct Library<'a> {
    name: &'a str,
    version: &'a str,
    dir: &'a Path,
    license: &'a Path,
    source: &'a str,
}

/// Lays out the stage in OUT (absent or empty).
pub fn stage(host: &Host, lock: &Lock, repo: &Path, out: &Path) -> Result<()> {
    let lifecycle = repo.join("bundle/lifecycle");
    ensure!(
        lifecycle.is_dir(),
        "missing {} (the suite to bundle)",
        lifecycle.display()
    );
    ensure!(
        lifecycle.join("run-gate.sh").is_file(),
        "missing {}",
        lifecycle.join("run-gate.sh").display()
    );
    let scratch = host.scratch("inputs")?;
    let inputs_dir = scratch.path();
    let inputs = gather(host, lock, inputs_dir)?;
    let (lib_dir, license_dir) = (inputs_dir.join("lib"), inputs_dir.join("license"));
    let dirs: Vec<_> = LIBRARIES
        .iter()
        .map(|name| (lib_dir.join(name), license_dir.join(name)))
        .collect();
    let libs: Vec<Library> = LIBRARIES
        .iter()
        .zip(&dirs)
        .map(|(&name, (dir, license))| {
            let tool = inputs.tools.library(name);
            Library {
                name,
                version: tool.version.as_deref().expect("a library has a version"),
                dir,
                license,
                source: &tool.source,
            }
        })
        .collect();
    let libs = serde_json::to_string(&libs)?;
    let sources = serde_json::to_string(&inputs.sources)?;
    let version = launcher::version(repo)?;
    let tools = &inputs.tools;
    let (jq_source, bash_source, bats_source) = (
        &tools.jq.source,
        &tools.bash.source,
        &tools.bats_core.source,
    );
    let (jq, bash, bats_core) = (
        inputs_dir.join("jq"),
        inputs_dir.join("bash"),
        inputs_dir.join("bats-core"),
    );
    let stage_sh = repo.join("bundle/stage.sh");
    let sh = &host.sh;
    host.run_logged(
        "stage",
        cmd!(
            sh,
            "{stage_sh} --out {out} --version {version} --lifecycle {lifecycle}
            --jq {jq} --jq-source {jq_source} --bash {bash} --bash-source {bash_source}
            --bats-core {bats_core} --bats-core-source {bats_source}
            --libs {libs} --sources {sources}"
        ),
    )?;

    // What may not go into a bundle (special files, links leaving the tree, store paths,
    // dynamic ELFs) is refused by `launcher pack` itself, naming the file; readelf is a
    // second, independent opinion on the two binaries.
    assert_static(host, &out.join("bin/jq"))?;
    assert_static(host, &out.join("bin/bash"))
}
