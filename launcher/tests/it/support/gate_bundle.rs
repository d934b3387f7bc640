//! Bundles with a gate of the test's own making: the real bundle's tools
//! (static bash, jq, bats) with `lifecycle/run-gate.sh` replaced, headed by
//! the freshly built static launcher.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{real_bundle_dir, static_launcher, Run, Stage};

/// Packs a bundle whose entry script is `gate` (bash) into `dir/out`;
/// returns the single file.
pub fn bundle_with_gate(dir: &Path, gate: &str) -> PathBuf {
    bundle_with_gate_and(dir, gate, |_| {})
}

/// The same, with `more` adding to the stage before it is packed.
pub fn bundle_with_gate_and(dir: &Path, gate: &str, more: impl FnOnce(&Path)) -> PathBuf {
    let stage = dir.join("stage");
    Run::of(
        Command::new(static_launcher())
            .arg("extract")
            .arg(real_bundle_dir().join("archy-gate"))
            .arg("--to")
            .arg(&stage)
            .output()
            .unwrap(),
    )
    .expect(0);
    fs::remove_dir_all(stage.join("lifecycle")).unwrap();
    fs::create_dir(stage.join("lifecycle")).unwrap();
    fs::write(stage.join("lifecycle/run-gate.sh"), gate).unwrap();
    more(&stage);
    Stage::new(&stage).pack(&dir.join("out"))
}
