//! What a build says about its inputs, for the evidence beside a bundle
//! (`pack --build-info FILE`): the components it staged (licence, where each
//! came from, the sha256 of what was fetched), the pins it resolved, the
//! command that ran, and the Cargo.lock the launcher was built from.
//!
//! Both builds write one: `cargo xtask bundle` from bundle/inputs.lock,
//! `nix/bundle.nix` from flake.lock's nixpkgs revision and narHash. This
//! module reads it and the lockfile, and never decides what is true of an
//! input: it carries what the build said into `sbom.rs` and `provenance.rs`,
//! next to what `pack` itself measured (the staged files' sha256).

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::exit::{fail, ExitStatus};
use crate::intoto::ResourceDescriptor;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildInfo {
    /// Which build: `bundle/build.sh` or `nix/bundle.nix` (SLSA's builder).
    pub builder: String,
    /// The command that ran the build, argument by argument.
    pub command: Vec<String>,
    /// A staged tool's facts, keyed by its manifest name (jq, bash, …).
    #[serde(default)]
    pub components: BTreeMap<String, ComponentInfo>,
    /// The pinned inputs, as in-toto resource descriptors.
    #[serde(default)]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
    /// The Cargo.lock the launcher was built from (a path, read by pack).
    pub cargo_lock: Option<Utf8PathBuf>,
    /// Crate licences where the build knew them: "NAME VERSION" -> SPDX.
    #[serde(default)]
    pub crate_licenses: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ComponentInfo {
    /// An SPDX licence expression, when known.
    pub license: Option<String>,
    /// Where the fetched artifact came from.
    pub url: Option<String>,
    /// sha256 of that artifact (as inputs.lock pins it), when there is one.
    pub sha256: Option<String>,
    /// A package URL (purl), when the source has one.
    pub purl: Option<String>,
}

/// A crate the launcher links, as Cargo.lock names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// Cargo.lock's `source` (a registry or git URL); none for a path crate.
    pub source: Option<String>,
    /// Cargo.lock's `checksum`: the sha256 of the .crate file.
    pub checksum: Option<String>,
}

#[derive(Deserialize)]
struct Lockfile {
    #[serde(rename = "package", default)]
    packages: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

impl BuildInfo {
    pub fn read(path: &Utf8Path) -> anyhow::Result<BuildInfo> {
        let usage = |m: String| fail(ExitStatus::Usage, m);
        let text = std::fs::read(path)
            .map_err(|e| usage(format!("cannot read the build info {path}: {e}")))?;
        serde_json::from_slice(&text)
            .map_err(|e| usage(format!("{path} is not a build description: {e}")))
    }

    /// The crates `root` depends on, transitively, as Cargo.lock resolves
    /// them (for every platform: a crate only another target links is
    /// listed too; Cargo.lock does not say which target needs what).
    pub fn crates(&self, root: &str) -> anyhow::Result<Vec<Crate>> {
        let Some(path) = &self.cargo_lock else {
            return Ok(Vec::new());
        };
        let bad = |m: String| fail(ExitStatus::Usage, format!("{path}: {m}"));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let lock: Lockfile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        // A dependency is "name" or "name version" (or with a source) when
        // the lock holds several versions of it.
        let find = |dep: &str| -> Option<&LockPackage> {
            let mut words = dep.split(' ');
            let name = words.next()?;
            let version = words.next();
            lock.packages
                .iter()
                .find(|p| p.name == name && version.is_none_or(|v| p.version == v))
        };
        let start = lock
            .packages
            .iter()
            .find(|p| p.name == root)
            .ok_or_else(|| bad(format!("no package {root:?}")))?;
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&LockPackage> =
            start.dependencies.iter().filter_map(|d| find(d)).collect();
        let mut out = Vec::new();
        while let Some(p) = todo.pop() {
            if !seen.insert((p.name.clone(), p.version.clone())) {
                continue;
            }
            out.push(Crate {
                name: p.name.clone(),
                version: p.version.clone(),
                source: p.source.clone(),
                checksum: p.checksum.clone(),
            });
            todo.extend(p.dependencies.iter().filter_map(|d| find(d)));
        }
        out.sort();
        Ok(out)
    }
}
