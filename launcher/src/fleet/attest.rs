//! `attestations.jsonl` in the fleet dir: one signed in-toto Statement per
//! node run, with the test-result predicate, in a DSSE envelope signed by
//! the operator's key (`fleet run --attest-key`, `[defaults] attest_key`,
//! or `fleet report --attest-key` to sign a finished run's state).
//!
//! What is signed is what this host observed and recorded in state.json:
//! the bundle's sha256 as this host computed it over the file it uploaded,
//! the iterations whose TAP this host fetched and read, the tests in them,
//! and this host's times. Never a field of the node's own record (its
//! verdict, its digest, its signer): a node's claim is not the operator's
//! word. Nodes that did not run (skipped, unreachable, not ready) get no
//! statement; each statement lists the run's gate nodes, so a verifier
//! sees the missing ones.

use std::collections::BTreeSet;

use anyhow::Context;
use camino::Utf8Path;

use super::state::{FleetState, NodeState, Outcome, Phase};
use crate::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
use crate::exit::{fail, ExitStatus};
use crate::intoto::{ResourceDescriptor, Statement, TEST_RESULT_TYPE};
use crate::minisig::SecretKey;
use crate::test_result::{GateNode, NodeRun, TestResultPredicate};

pub const ATTESTATIONS_FILE: &str = "attestations.jsonl";

/// The operator's signing key, read before a run starts, so that a key
/// that cannot be used is said before any node is touched.
pub fn read_key(path: &Utf8Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            ExitStatus::Usage,
            format!("cannot read the attestation key {path}: {e}"),
        )
    })?;
    SecretKey::parse_file(&text).map_err(|why| {
        fail(
            ExitStatus::Usage,
            format!(
                "{path} is not a usable attestation key (a `launcher keygen` secret key): {why}"
            ),
        )
    })
}

/// Whether the node's gate ran to an end this host recorded.
fn ran(n: &NodeState) -> bool {
    n.gate
        && n.record.is_some()
        && matches!(n.phase, Phase::Passed | Phase::Failed | Phase::Interrupted)
}

/// The statement for one node run.
pub fn statement(state: &FleetState, n: &NodeState) -> Statement<TestResultPredicate> {
    let gate_nodes = state
        .nodes
        .iter()
        .filter(|g| g.gate)
        .map(|g| GateNode {
            node: g.name.clone(),
            role: g.role.word().to_string(),
        })
        .collect();
    // A test passed when it never failed in any iteration this host read.
    let mut failed = BTreeSet::new();
    let mut passed = BTreeSet::new();
    for iteration in &n.iteration_results {
        for t in &iteration.tests {
            match t.outcome {
                Outcome::Failed | Outcome::Error => {
                    failed.insert(t.name.clone());
                }
                Outcome::Passed => {
                    passed.insert(t.name.clone());
                }
                Outcome::Skipped => {}
            }
        }
    }
    let passed = passed.difference(&failed).cloned().collect();
    let run = NodeRun {
        node: n.name.clone(),
        role: n.role.word().to_string(),
        iterations_asked: n.iterations,
        iterations_passed: n.iterations_passed.unwrap_or(0),
        started_on: n.started_unix.map(crate::clock::rfc3339),
        finished_on: n.ended_unix.map(crate::clock::rfc3339),
        run_id: n.run_id.clone(),
        launcher_version: env!("CARGO_PKG_VERSION").to_string(),
        gate_nodes,
    };
    let name = state.bundle.file_name().unwrap_or("archy-gate");
    Statement::new(
        vec![ResourceDescriptor::sha256(name, &state.bundle_sha256)],
        TEST_RESULT_TYPE,
        TestResultPredicate {
            result: if n.phase == Phase::Passed {
                "PASSED"
            } else {
                "FAILED"
            }
            .to_string(),
            configuration: vec![run.configuration()],
            passed_tests: passed,
            failed_tests: failed.into_iter().collect(),
        },
    )
}

/// The envelopes, one line each, in the state's node order.
pub fn lines(state: &FleetState, key: &SecretKey) -> String {
    let mut out = String::new();
    for n in state.nodes.iter().filter(|n| ran(n)) {
        let payload = serde_json::to_vec(&statement(state, n)).expect("a statement serialises");
        out.push_str(&Envelope::sign(INTOTO_PAYLOAD_TYPE, &payload, key).to_line());
        out.push('\n');
    }
    out
}

/// Writes `attestations.jsonl` into the fleet dir; returns how many node
/// runs it attests.
pub fn write(dir: &Utf8Path, state: &FleetState, key: &SecretKey) -> anyhow::Result<usize> {
    let text = lines(state, key);
    super::private_dir(dir, super::Create::No)?
        .write_atomic(ATTESTATIONS_FILE, text.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {dir}/{ATTESTATIONS_FILE}"))?;
    Ok(text.lines().count())
}
