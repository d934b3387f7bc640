//! bundle/build.sh is reproducible: a second build from the same pins, in
//! another checkout folder, with its own build cache (only the pinned
//! downloads shared), gives the same bytes.
//!
//! Slow tier: the second build compiles the launcher (LTO) and jq from
//! source and runs jq's upstream suite, minutes on two cores. That suite
//! runs nowhere else on every CI run: build.sh runs it whenever it compiles
//! jq, and a jq that fails it is never cached, so never bundled.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{real_bundle_dir, workspace_root, Run};

fn default_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("ARCHY_GATE_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cache"));
    base.join("archy-gate")
}

/// The checkout's files as git sees them (tracked, and new ones not ignored).
fn copy_checkout(to: &Path) {
    let root = workspace_root();
    let list = Command::new("git")
        .current_dir(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .unwrap();
    assert!(list.status.success());
    for rel in list.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let rel = std::str::from_utf8(rel).unwrap();
        let from = root.join(rel);
        if !from.exists() {
            continue; // deleted in the working tree
        }
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&from, &dest).unwrap();
    }
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn two_builds_from_the_same_pins_are_byte_identical() {
    let first = real_bundle_dir();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(first.join("manifest.json")).unwrap()).unwrap();
    let epoch = manifest["source_date_epoch"].to_string();

    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("another checkout");
    copy_checkout(&checkout);
    // Downloads are pinned by sha256, so sharing them proves nothing away;
    // every build step runs afresh.
    let cache = tmp.path().join("cache");
    fs::create_dir_all(&cache).unwrap();
    let downloads = default_cache().join("dl");
    if downloads.exists() {
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&downloads)
            .arg(cache.join("dl"))
            .status();
        assert!(copied.unwrap().success());
    }

    let out = tmp.path().join("out");
    let run = Run::of(
        Command::new(checkout.join("bundle/build.sh"))
            .arg(&out)
            .env("ARCHY_GATE_CACHE", &cache)
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("ARCHY_GATE_LAUNCHER")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "the second build failed:\n{}", run.stderr);
    assert!(
        run.stderr.contains("building jq"),
        "the second build must compile jq itself, not reuse the first's:\n{}",
        run.stderr
    );
    for file in ["archy-gate", "manifest.json", "SHA256SUMS"] {
        let a = fs::read(first.join(file)).unwrap();
        let b = fs::read(out.join(file)).unwrap();
        assert!(a == b, "{file} differs between the two builds");
    }
}
