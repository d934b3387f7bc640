//! A compromised node, as the operator's host sees it: `tests/standin/
//! hostile_ssh.py` installed as `ssh` in a dir of its own, put first on
//! the PATH of `launcher fleet`. Every node of a roster whose destination
//! it is asked for answers from `scenario.json` (by the destination's
//! host part); a node the scenario does not name behaves as a healthy one.
//! Test infrastructure: see `tests/standin/README.md`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub struct HostileNodes {
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

impl HostileNodes {
    /// `scenarios` maps node names (ssh destination hosts) to what each
    /// answers differently from a healthy node.
    pub fn new(scenarios: Value) -> HostileNodes {
        let dir = super::lab::scratch("hostile.");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let ssh = bin.join("ssh");
        super::copy_executable(
            &super::workspace_root().join("launcher/tests/standin/hostile_ssh.py"),
            &ssh,
            0o755,
        );
        fs::write(bin.join("scenario.json"), scenarios.to_string()).unwrap();
        HostileNodes { bin, _dir: dir }
    }

    /// The dir to put first on PATH.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// PATH with the hostile `ssh` first.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Every session command `node` was sent, in order.
    pub fn commands(&self, node: &str) -> Vec<String> {
        fs::read_to_string(self.bin.join("state").join(node).join("commands.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
}
