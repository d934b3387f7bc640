//! The test-result predicate (`https://in-toto.io/attestation/test-result/v0.1`)
//! as a fleet node run fills it: one shape, written by `fleet/attest.rs` and
//! read back by `result_policy.rs`.
//!
//! The predicate's own fields are the spec's (`result`, `configuration`,
//! `passedTests`, `failedTests`), and nothing else, so that a strict reader
//! of the spec (in-toto-attestation's protobuf) accepts it. What the gate
//! adds (node, role, iterations asked and passed, times, the launcher's
//! version, the run's gate nodes) is the `annotations` of the one
//! `configuration` entry, a ResourceDescriptor, where the spec puts what
//! describes how the tests were run.

use serde::{Deserialize, Serialize};

use crate::intoto::ResourceDescriptor;

/// The configuration entry's name: how a reader finds our annotations.
pub const CONFIGURATION_NAME: &str = "archy-gate fleet node run";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResultPredicate {
    /// `PASSED` or `FAILED` (the spec's `WARNED` is never written).
    pub result: String,
    pub configuration: Vec<ResourceDescriptor>,
    #[serde(rename = "passedTests", default)]
    pub passed_tests: Vec<String>,
    #[serde(rename = "failedTests", default)]
    pub failed_tests: Vec<String>,
}

/// What the fleet saw of one node's run: the configuration entry's
/// annotations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRun {
    pub node: String,
    pub role: String,
    pub iterations_asked: u32,
    /// Iterations whose TAP, fetched and read by the fleet, showed tests and
    /// no failure.
    pub iterations_passed: u32,
    /// When the fleet saw the node's turn begin and its run end (RFC 3339,
    /// the operator's clock).
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
    pub run_id: Option<String>,
    /// The launcher that ran the fleet and signed.
    pub launcher_version: String,
    /// Every gate node of the fleet run, with its role: how a verifier
    /// knows a node whose attestation is missing.
    pub gate_nodes: Vec<GateNode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateNode {
    pub node: String,
    pub role: String,
}

impl TestResultPredicate {
    /// The node run our configuration entry describes, if it has one.
    pub fn node_run(&self) -> Result<NodeRun, String> {
        let entry = self
            .configuration
            .iter()
            .find(|c| c.name == CONFIGURATION_NAME)
            .ok_or_else(|| format!("its configuration has no \"{CONFIGURATION_NAME}\" entry"))?;
        serde_json::from_value(serde_json::Value::Object(entry.annotations.clone()))
            .map_err(|e| format!("its \"{CONFIGURATION_NAME}\" annotations: {e}"))
    }
}

impl NodeRun {
    pub fn configuration(&self) -> ResourceDescriptor {
        let serde_json::Value::Object(annotations) =
            serde_json::to_value(self).expect("a node run serialises")
        else {
            unreachable!("a struct serialises to an object")
        };
        ResourceDescriptor {
            name: CONFIGURATION_NAME.to_string(),
            annotations,
            ..Default::default()
        }
    }
}
