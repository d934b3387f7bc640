//! The one fixture builder for tests that run the launcher on a faked
//! Archy node: a node (a fresh bare node, or an SSH node's root) holding,
//! as the test asks, a bundle as /root/archy-gate (the real one by
//! default), that bundle unpacked at /opt/gate by itself, files of the
//! test's making, and the stand-in Archy node (tests/standin/) faking a
//! scenario behind a password.
//!
//! ```ignore
//! let node = ArchyNode::build("healthy", PW).bundle().unpacked().bare();
//! node.node.sh_with("", &[("ARCHY_PASSWORD", PW)], "/root/archy-gate preflight");
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use super::bare_node::BareNode;
use super::netns::NetNs;
use super::real_bundle_dir;
use super::ssh_node::SshNode;
use super::standin::StandinNode;

/// Where the builder puts the bundle, and where it unpacks it, on the node.
pub const BUNDLE_INSIDE: &str = "/root/archy-gate";
pub const UNPACKED_INSIDE: &str = "/opt/gate";

/// The work dirs `run` tries first on a node (`/tmp` unless it is noexec).
const WORKDIRS: [&str; 2] = ["/tmp/archy-gate", "/var/tmp/archy-gate"];

/// A faked Archy node: the stand-in serving it, and the node itself.
pub struct ArchyNode<N = BareNode> {
    // Declared first, dropped first: the RPC server stops before the node goes.
    pub standin: StandinNode,
    pub node: N,
}

/// What a test asks of its node; [`ArchyNode::build`] starts one.
pub struct Builder {
    scenario: String,
    password: String,
    bundle: Option<PathBuf>,
    unpacked: bool,
    files: Vec<(String, Vec<u8>, u32)>,
}

impl ArchyNode {
    /// A node faking `scenario` (tests/standin/scenarios) whose RPC takes `password`.
    pub fn build(scenario: &str, password: &str) -> Builder {
        Builder {
            scenario: scenario.to_string(),
            password: password.to_string(),
            bundle: None,
            unpacked: false,
            files: Vec::new(),
        }
    }
}

impl Builder {
    /// The real bundle (bundle/build.sh's) as /root/archy-gate.
    pub fn bundle(self) -> Builder {
        self.bundle_file(&real_bundle_dir().join("archy-gate"))
    }

    /// `file` as /root/archy-gate.
    pub fn bundle_file(mut self, file: &Path) -> Builder {
        self.bundle = Some(file.to_path_buf());
        self
    }

    /// The bundle also unpacked at /opt/gate, by its own `extract`.
    pub fn unpacked(mut self) -> Builder {
        self.unpacked = true;
        self
    }

    /// A file at `inside` on the node, with `mode`.
    pub fn file(mut self, inside: &str, bytes: impl AsRef<[u8]>, mode: u32) -> Builder {
        self.files
            .push((inside.to_string(), bytes.as_ref().to_vec(), mode));
        self
    }

    /// On a fresh bare node.
    pub fn bare(self) -> ArchyNode {
        let node = BareNode::new();
        let standin = self.lay_out(&node, None);
        ArchyNode { standin, node }
    }

    /// On `ssh`'s root, the node `launcher fleet` reaches over SSH; the
    /// stand-in serving in the node's own network when it has one.
    pub fn over_ssh(self, ssh: SshNode) -> ArchyNode<SshNode> {
        let standin = self.lay_out(&ssh.node, ssh.network());
        ArchyNode { standin, node: ssh }
    }

    fn lay_out(self, node: &BareNode, net: Option<&NetNs>) -> StandinNode {
        if let Some(bundle) = &self.bundle {
            node.put(BUNDLE_INSIDE, &fs::read(bundle).unwrap(), 0o755);
        }
        if self.unpacked {
            assert!(self.bundle.is_some(), "unpacked() needs a bundle");
            node.sh(&format!("{BUNDLE_INSIDE} extract --to {UNPACKED_INSIDE}"))
                .expect(0);
        }
        for (inside, bytes, mode) in &self.files {
            node.put(inside, bytes, *mode);
        }
        StandinNode::start_in(node, net, &self.scenario, &self.password)
    }
}

/// The node's file system, whichever kind of node it is.
pub trait NodeFiles {
    fn bare_node(&self) -> &BareNode;
}

impl NodeFiles for BareNode {
    fn bare_node(&self) -> &BareNode {
        self
    }
}

impl NodeFiles for SshNode {
    fn bare_node(&self) -> &BareNode {
        &self.node
    }
}

impl<N: NodeFiles> ArchyNode<N> {
    /// The run dirs the node's launcher recorded, in the default work dirs.
    pub fn runs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for workdir in WORKDIRS {
            if let Ok(items) = fs::read_dir(self.node.bare_node().path(workdir).join("runs")) {
                out.extend(items.flatten().map(|e| e.path()));
            }
        }
        out
    }

    /// The record (run.json) of the node's one run.
    #[track_caller]
    pub fn only_record(&self) -> serde_json::Value {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "one run on the node: {runs:?}");
        serde_json::from_slice(&fs::read(runs[0].join("run.json")).unwrap()).unwrap()
    }
}
