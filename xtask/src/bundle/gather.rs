//! Every input of the stage, fetched, checked and unpacked into one dir as
//! bundle/stage.sh takes them, with `inputs.json` describing them. The Nix
//! test serves the same dir to nix/bundle.nix through its stand-in for
//! nixpkgs (nix/standin/), which reads inputs.json:
//!
//! ```text
//! jq, bash            the static binaries
//! bats-core/          bats-core's source tree (install.sh, bin, lib, libexec, man, LICENSE.md)
//! lib/NAME/           load.bash and src/ of bats-support, bats-assert and bats-file
//! license/NAME/FILE   each library's license file
//! inputs.json         the libraries' versions, every source string and stage.json's sources
//! ```

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use xshell::cmd;

use super::fetch::{fetch, sha256_file};
use super::host::Host;
use super::jq;
use super::lock::Lock;

/// The helper libraries, in the order stage.json lists them.
pub const LIBRARIES: [&str; 3] = ["bats-support", "bats-assert", "bats-file"];

/// `inputs.json`, field for field in this order.
#[derive(Serialize)]
pub struct Inputs {
    pub tools: Tools,
    pub sources: Sources,
}

#[derive(Serialize)]
pub struct Tools {
    pub jq: Tool,
    pub bash: Tool,
    #[serde(rename = "bats-core")]
    pub bats_core: Tool,
    #[serde(rename = "bats-support")]
    pub bats_support: Tool,
    #[serde(rename = "bats-assert")]
    pub bats_assert: Tool,
    #[serde(rename = "bats-file")]
    pub bats_file: Tool,
}

impl Tools {
    /// A helper library's entry by its name in LIBRARIES.
    pub fn library(&self, name: &str) -> &Tool {
        match name {
            "bats-support" => &self.bats_support,
            "bats-assert" => &self.bats_assert,
            "bats-file" => &self.bats_file,
            _ => unreachable!("not a library: {name}"),
        }
    }
}

#[derive(Serialize)]
pub struct Tool {
    /// Only the libraries': stage.sh asks the tools themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where it came from, for stage.json.
    pub source: String,
}

/// stage.json's `sources`: what built the bundle, from which pins.
#[derive(Serialize)]
pub struct Sources {
    /// The README's command; the manifest keeps naming it.
    pub builder: &'static str,
    pub inputs: String,
}

/// Fills DIR (existing, empty) with the stage's inputs; what inputs.json
/// says.
pub fn gather(host: &Host, lock: &Lock, dir: &Path) -> Result<Inputs> {
    let mut fetched = Vec::new();
    for name in ["jq", "bash-static", "bats-core"]
        .into_iter()
        .chain(LIBRARIES)
    {
        fetched.push((name, fetch(host, lock, name)?));
    }
    let artifact = |name: &str| -> &PathBuf {
        &fetched
            .iter()
            .find(|(n, _)| *n == name)
            .expect("fetched above")
            .1
    };
    let pin = |name: &str| -> Result<(String, String)> {
        let input = lock.get(name)?;
        Ok((input.version.clone(), input.sha256.clone()))
    };
    let jq_build = jq::build(host, lock)?;
    let tmp = host.scratch("gather")?;
    let tmp = tmp.path();
    let sh = &host.sh;
    fs::create_dir_all(dir.join("lib"))?;
    fs::create_dir_all(dir.join("license"))?;

    install(&jq_build.join("jq"), &dir.join("jq"), 0o755)?;
    let (jq_version, jq_sha) = pin("jq")?;
    let (sdist_version, sdist_sha) = pin("jq-sdist")?;
    let jq = Tool {
        version: None,
        source: format!(
            "upstream jq {jq_version} release tarball sha256:{jq_sha}, from PyPI jq {sdist_version} sdist sha256:{sdist_sha}, built all-static with musl-gcc"
        ),
    };

    // bash: only the binary of Debian's bash-static
    let deb = artifact("bash-static");
    let unpacked = tmp.join("bash-static");
    cmd!(sh, "dpkg-deb -x {deb} {unpacked}").quiet().run()?;
    install(&unpacked.join("bin/bash-static"), &dir.join("bash"), 0o755)?;
    let (version, sha) = pin("bash-static")?;
    let bash = Tool {
        version: None,
        source: format!("Debian bash-static {version} sha256:{sha}"),
    };

    // bats-core (npm): the source tree with its install.sh
    unpack_npm(host, artifact("bats-core"), &dir.join("bats-core"))?;
    let (version, sha) = pin("bats-core")?;
    let bats_core = Tool {
        version: None,
        source: format!("npm bats {version} sha256:{sha}"),
    };

    // bats-support, bats-assert (npm): load.bash, src/ and the LICENSE
    let npm_library = |name: &str| -> Result<Tool> {
        let unpacked = tmp.join(name);
        unpack_npm(host, artifact(name), &unpacked)?;
        let (lib, license) = (dir.join("lib").join(name), dir.join("license").join(name));
        fs::create_dir_all(&lib)?;
        fs::create_dir_all(&license)?;
        let (load, src) = (unpacked.join("load.bash"), unpacked.join("src"));
        cmd!(sh, "cp -R {load} {src} {lib}/").quiet().run()?;
        install(&unpacked.join("LICENSE"), &license.join("LICENSE"), 0o644)?;
        let (version, sha) = pin(name)?;
        Ok(Tool {
            source: format!("npm {name} {version} sha256:{sha}"),
            version: Some(version),
        })
    };
    let bats_support = npm_library("bats-support")?;
    let bats_assert = npm_library("bats-assert")?;

    // bats-file (Debian): usr/lib/bats/bats-file/{load.bash,src} and the copyright file
    let deb = artifact("bats-file");
    let unpacked = tmp.join("bats-file");
    cmd!(sh, "dpkg-deb -x {deb} {unpacked}").quiet().run()?;
    let (from, to) = (
        unpacked.join("usr/lib/bats/bats-file"),
        dir.join("lib/bats-file"),
    );
    cmd!(sh, "cp -R {from} {to}").quiet().run()?;
    fs::create_dir_all(dir.join("license/bats-file"))?;
    install(
        &unpacked.join("usr/share/doc/bats-file/copyright"),
        &dir.join("license/bats-file/copyright"),
        0o644,
    )?;
    let (version, sha) = pin("bats-file")?;
    let bats_file = Tool {
        source: format!("Debian bats-file {version} sha256:{sha}"),
        version: Some(version),
    };

    let inputs = Inputs {
        tools: Tools {
            jq,
            bash,
            bats_core,
            bats_support,
            bats_assert,
            bats_file,
        },
        sources: Sources {
            builder: "bundle/build.sh",
            inputs: format!("bundle/inputs.lock sha256:{}", sha256_file(&lock.path)?),
        },
    };
    let mut json = serde_json::to_string_pretty(&inputs)?;
    json.push('\n');
    fs::write(dir.join("inputs.json"), json)?;
    Ok(inputs)
}

/// An npm tarball's package/ as DIR.
fn unpack_npm(host: &Host, tarball: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    let sh = &host.sh;
    cmd!(
        sh,
        "tar -xzf {tarball} -C {dir} --strip-components=1 --no-same-owner --no-same-permissions"
    )
    .quiet()
    .run()?;
    Ok(())
}

/// `install -m MODE FROM TO`: a copy with exactly that mode.
fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}
