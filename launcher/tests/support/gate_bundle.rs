//! Bundles with a gate of the test's own making: the real bundle's tools
//! (static bash, jq, bats) with `lifecycle/run-gate.sh` replaced, headed by
//! the freshly built static launcher.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{launch, real_bundle_dir, static_launcher, Run};

/// Packs a bundle whose entry script is `gate` (bash) into `dir/out`;
/// returns the single file.
pub fn bundle_with_gate(dir: &Path, gate: &str) -> PathBuf {
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
    let out = dir.join("out");
    launch([
        "pack".as_ref(),
        stage.as_os_str(),
        "--launcher".as_ref(),
        static_launcher().as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .expect(0);
    out.join("archy-gate")
}
