//! `verify-results`' judgement: signed test-result attestations (one DSSE
//! envelope a line, as `fleet/attest.rs` writes them) checked against the
//! trusted keys, the bundle's digest and a policy of requirements.
//!
//! A requirement is `role=ROLE` or `node=NAME`, optionally with
//! `:iterations=N`: every node it selects must have an attested run of this
//! exact bundle whose result is PASSED and in which at least N iterations
//! passed (without `iterations`, every iteration it asked). The nodes a role
//! selects are those the valid attestations name, as attested runs or as
//! their fleet run's gate nodes, so a node whose line is missing is seen.
//!
//! Nothing here trusts a line it could not verify: a line that is not a
//! well-formed envelope, is signed by no trusted key, or does not match its
//! signature is a refusal of the whole set (someone changed it), named by
//! its line number. A verified line about another bundle, or with another
//! predicate, is set aside and said.

use std::collections::{BTreeMap, BTreeSet};

use crate::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
use crate::intoto::{Statement, STATEMENT_TYPE, TEST_RESULT_TYPE};
use crate::minisig::PublicKey;
use crate::printable::printable as p;
use crate::test_result::{NodeRun, TestResultPredicate};

/// Which nodes a requirement selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Role(String),
    Node(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub selector: Selector,
    /// Iterations that must have passed; `None`: all it asked.
    pub iterations: Option<u32>,
}

impl std::str::FromStr for Requirement {
    type Err = String;

    /// `role=primary:iterations=5`, `node=n228`.
    fn from_str(text: &str) -> Result<Requirement, String> {
        let mut selector = None;
        let mut iterations = None;
        for term in text.split(':') {
            let (key, value) = term
                .split_once('=')
                .ok_or_else(|| format!("{term:?} is not KEY=VALUE (role=, node=, iterations=)"))?;
            if value.is_empty() {
                return Err(format!("{key}= needs a value"));
            }
            let set_selector = |s: Selector, old: &mut Option<Selector>| match old {
                Some(_) => Err("give one of role= and node= per --require".to_string()),
                None => {
                    *old = Some(s);
                    Ok(())
                }
            };
            match key {
                "role" => set_selector(Selector::Role(value.to_string()), &mut selector)?,
                "node" => set_selector(Selector::Node(value.to_string()), &mut selector)?,
                "iterations" => {
                    let n: u32 = value
                        .parse()
                        .map_err(|e| format!("iterations={value}: {e}"))?;
                    if n == 0 {
                        return Err("iterations=0 would require nothing: give 1 or more".into());
                    }
                    iterations = Some(n);
                }
                other => return Err(format!("unknown key {other:?} (role=, node=, iterations=)")),
            }
        }
        let selector = selector
            .ok_or("name the nodes: role=ROLE or node=NAME (e.g. role=primary:iterations=5)")?;
        Ok(Requirement {
            selector,
            iterations,
        })
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.selector {
            Selector::Role(r) => write!(f, "role={r}")?,
            Selector::Node(n) => write!(f, "node={n}")?,
        }
        match self.iterations {
            Some(n) => write!(f, ":iterations={n}"),
            None => Ok(()),
        }
    }
}

/// One verified attestation of this bundle.
#[derive(Clone, Debug)]
pub struct AttestedRun {
    /// `FILE:LINE`, for messages.
    pub at: String,
    pub key_id: String,
    pub passed: bool,
    pub run: NodeRun,
    pub failed_tests: Vec<String>,
}

/// What the attestation files hold, line by line, once checked.
#[derive(Debug, Default)]
pub struct CheckedLines {
    pub runs: Vec<AttestedRun>,
    /// Lines refused: changed, forged, or signed by an untrusted key.
    pub refused: Vec<String>,
    /// Verified lines that say nothing about this bundle's test results.
    pub set_aside: Vec<String>,
}

/// Checks every line of one attestation file.
pub fn check_lines(
    file: &str,
    text: &str,
    trusted: &[PublicKey],
    bundle_sha256: &str,
    out: &mut CheckedLines,
) {
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let envelope: Envelope = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                out.refused.push(format!(
                    "{at}: not a DSSE envelope ({e}): the line was changed"
                ));
                continue;
            }
        };
        let (payload, key) = match envelope.verify(trusted) {
            Ok(v) => v,
            Err(why) => {
                out.refused.push(format!("{at}: {why}"));
                continue;
            }
        };
        if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
            out.set_aside.push(format!(
                "{at}: payload type {:?}, not an in-toto statement",
                p(&envelope.payload_type)
            ));
            continue;
        }
        let statement: Statement<serde_json::Value> = match serde_json::from_slice(&payload) {
            Ok(s) => s,
            Err(e) => {
                out.set_aside
                    .push(format!("{at}: signed, but not an in-toto statement ({e})"));
                continue;
            }
        };
        if statement.statement_type != STATEMENT_TYPE
            || statement.predicate_type != TEST_RESULT_TYPE
        {
            out.set_aside.push(format!(
                "{at}: a {} statement of type {}, not a test result ({TEST_RESULT_TYPE})",
                p(&statement.statement_type),
                p(&statement.predicate_type)
            ));
            continue;
        }
        let predicate: TestResultPredicate = match serde_json::from_value(statement.predicate) {
            Ok(pr) => pr,
            Err(e) => {
                out.set_aside
                    .push(format!("{at}: its test-result predicate: {e}"));
                continue;
            }
        };
        let run = match predicate.node_run() {
            Ok(run) => run,
            Err(why) => {
                out.set_aside.push(format!("{at}: {why}"));
                continue;
            }
        };
        let digests: Vec<&str> = statement
            .subject
            .iter()
            .filter_map(|s| s.digest.get("sha256").map(String::as_str))
            .collect();
        if !digests
            .iter()
            .any(|d| d.eq_ignore_ascii_case(bundle_sha256))
        {
            out.set_aside.push(format!(
                "{at}: node {} ran bundle sha256 {}, not this bundle ({bundle_sha256})",
                p(&run.node),
                p(&digests.join(", "))
            ));
            continue;
        }
        out.runs.push(AttestedRun {
            at,
            key_id: key.id(),
            passed: predicate.result == "PASSED",
            run,
            failed_tests: predicate.failed_tests,
        });
    }
}

/// One required node's verdict.
#[derive(Debug)]
pub struct NodeVerdict {
    pub node: String,
    pub role: Option<String>,
    pub requirement: Requirement,
    /// `Ok(the run that meets it)`, or what is missing.
    pub met: Result<AttestedRun, String>,
}

/// Each requirement applied to the checked runs: a verdict per node it
/// selects, or, when it selects none, a verdict saying so.
pub fn judge(checked: &CheckedLines, requirements: &[Requirement]) -> Vec<NodeVerdict> {
    // Every node the valid attestations name, with its role.
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    for r in &checked.runs {
        for g in &r.run.gate_nodes {
            known
                .entry(g.node.clone())
                .or_insert_with(|| g.role.clone());
        }
        known.insert(r.run.node.clone(), r.run.role.clone());
    }
    let mut verdicts = Vec::new();
    for req in requirements {
        let nodes: BTreeSet<String> = match &req.selector {
            Selector::Node(n) => BTreeSet::from([n.clone()]),
            Selector::Role(role) => known
                .iter()
                .filter(|(_, r)| *r == role)
                .map(|(n, _)| n.clone())
                .collect(),
        };
        if nodes.is_empty() {
            verdicts.push(NodeVerdict {
                node: String::new(),
                role: None,
                requirement: req.clone(),
                met: Err(format!(
                    "no valid attestation of this bundle names a node with {req}"
                )),
            });
            continue;
        }
        for node in nodes {
            let runs: Vec<&AttestedRun> =
                checked.runs.iter().filter(|r| r.run.node == node).collect();
            let meets = |r: &&&AttestedRun| {
                r.passed
                    && r.run.iterations_passed >= req.iterations.unwrap_or(r.run.iterations_asked)
            };
            let met = match runs.iter().find(meets) {
                Some(r) => Ok((*r).clone()),
                None if runs.is_empty() => Err(
                    "no attestation of its run of this bundle (its fleet run named it as a gate node)"
                        .to_string(),
                ),
                None => Err(runs
                    .iter()
                    .map(|r| shortfall(r, req))
                    .collect::<Vec<_>>()
                    .join("; ")),
            };
            verdicts.push(NodeVerdict {
                role: known.get(&node).cloned(),
                node,
                requirement: req.clone(),
                met,
            });
        }
    }
    verdicts
}

fn shortfall(r: &AttestedRun, req: &Requirement) -> String {
    let need = req.iterations.unwrap_or(r.run.iterations_asked);
    let mut why = format!(
        "{}: {} passed of {} asked, {} needed",
        r.at, r.run.iterations_passed, r.run.iterations_asked, need
    );
    if !r.passed {
        why.push_str(", result FAILED");
        if !r.failed_tests.is_empty() {
            let names: Vec<String> = r
                .failed_tests
                .iter()
                .take(3)
                .map(|t| p(t).into_owned())
                .collect();
            why.push_str(&format!(" ({})", names.join("; ")));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_and_print_back() {
        for text in [
            "role=primary:iterations=5",
            "node=n228",
            "iterations=2:node=a",
        ] {
            let req: Requirement = text.parse().unwrap();
            assert_eq!(req.to_string().len(), text.len(), "{text}");
        }
        for bad in [
            "",
            "primary",
            "role=",
            "role=a:node=b",
            "iterations=5",
            "iterations=0:node=a",
            "colour=red",
        ] {
            assert!(bad.parse::<Requirement>().is_err(), "{bad:?} was accepted");
        }
    }
}
