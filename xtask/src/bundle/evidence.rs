//! The build's description for `launcher pack --build-info` (which writes
//! the CycloneDX SBOM and the SLSA provenance beside the bundle): each
//! staged tool's licence, upstream source and the sha256 of the artifact
//! fetched for it, every pin of bundle/inputs.lock as a resolved
//! dependency, the checkout's commit, and Cargo.lock with the crates'
//! licences as `cargo metadata` reads them from the local registry.
//!
//! Licences are written here by hand from each project's licence file (the
//! staged copy beside each library in lib/); inputs.lock pins bytes, not
//! licences.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};
use xshell::cmd;

use super::fetch::sha256_file;
use super::host::Host;
use super::lock::{Fetch, Lock};

/// Manifest tool name, inputs.lock input, SPDX licence, upstream source.
const TOOLS: &[(&str, &str, &str, &str)] = &[
    ("jq", "jq", "MIT", "https://github.com/jqlang/jq"),
    (
        "bash",
        "bash-static",
        "GPL-3.0-or-later",
        "https://git.savannah.gnu.org/git/bash.git",
    ),
    (
        "bats-core",
        "bats-core",
        "MIT",
        "https://github.com/bats-core/bats-core",
    ),
    (
        "bats-support",
        "bats-support",
        "CC0-1.0",
        "https://github.com/bats-core/bats-support",
    ),
    (
        "bats-assert",
        "bats-assert",
        "CC0-1.0",
        "https://github.com/bats-core/bats-assert",
    ),
    (
        "bats-file",
        "bats-file",
        "CC0-1.0",
        "https://github.com/bats-core/bats-file",
    ),
];

/// A package URL for an input as it was fetched (registry-neutral: the
/// machine's configured pip, npm or apt decides where from).
fn purl(lock: &Lock, name: &str) -> Result<String> {
    let input = lock.get(name)?;
    let v = &input.version;
    Ok(match &input.fetch {
        Fetch::PypiSdist { project } => format!("pkg:pypi/{project}@{v}"),
        Fetch::Npm { package } => format!("pkg:npm/{package}@{v}"),
        Fetch::Apt { package } => format!("pkg:deb/debian/{package}@{}", v.replace('+', "%2B")),
        Fetch::Member { input, path } => {
            let outer = purl(lock, input)?;
            format!("{outer}#{path}")
        }
    })
}

pub fn write(host: &Host, lock: &Lock, repo: &Path, out: &Path) -> Result<()> {
    let mut components = Map::new();
    for (tool, input, license, url) in TOOLS {
        let pin = lock.get(input)?;
        components.insert(
            (*tool).to_string(),
            json!({
                "license": license,
                "url": url,
                "sha256": pin.sha256,
                "purl": purl(lock, input)?,
            }),
        );
    }
    let mut resolved = Vec::new();
    for input in lock.inputs() {
        resolved.push(json!({
            "name": input.name,
            "uri": purl(lock, &input.name)?,
            "digest": {"sha256": input.sha256},
            "annotations": {"version": input.version, "pinnedBy": "bundle/inputs.lock"},
        }));
    }
    resolved.push(json!({
        "name": "bundle/inputs.lock",
        "digest": {"sha256": sha256_file(&lock.path)?},
    }));
    let cargo_lock = repo.join("Cargo.lock");
    resolved.push(json!({
        "name": "Cargo.lock",
        "digest": {"sha256": sha256_file(&cargo_lock)?},
    }));
    let sh = &host.sh;
    if let Ok(commit) = cmd!(sh, "git -C {repo} rev-parse --verify -q HEAD")
        .quiet()
        .ignore_stderr()
        .read()
    {
        resolved.push(json!({
            "name": "archy-gate",
            "uri": "git+https://github.com/archipelago-labs/archy-gate",
            "digest": {"gitCommit": commit.trim()},
        }));
    }
    let info = json!({
        "builder": "bundle/build.sh",
        "command": ["bundle/build.sh", "OUT_DIR"],
        "components": components,
        "resolvedDependencies": resolved,
        "cargoLock": cargo_lock,
        "crateLicenses": crate_licenses(host, repo),
    });
    std::fs::write(out, serde_json::to_string_pretty(&info)? + "\n")?;
    Ok(())
}

/// "NAME VERSION" -> licence, from `cargo metadata` (offline: the crates
/// are already in the local registry after the launcher's build). Empty when
/// cargo cannot say; the SBOM then lists the crates without licences.
fn crate_licenses(host: &Host, repo: &Path) -> Map<String, Value> {
    let sh = &host.sh;
    let manifest = repo.join("Cargo.toml");
    let Ok(text) = cmd!(
        sh,
        "cargo metadata --locked --offline --format-version 1 --manifest-path {manifest}"
    )
    .quiet()
    .ignore_stderr()
    .read() else {
        return Map::new();
    };
    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
        return Map::new();
    };
    let mut out = Map::new();
    for p in doc["packages"].as_array().into_iter().flatten() {
        if let (Some(n), Some(v), Some(l)) = (
            p["name"].as_str(),
            p["version"].as_str(),
            p["license"].as_str(),
        ) {
            // Cargo's old "MIT/Apache-2.0" spelling, as SPDX writes it.
            out.insert(format!("{n} {v}"), json!(l.replace('/', " OR ")));
        }
    }
    out
}
