//! in-toto Statement v1 (in-toto/attestation spec v1): the wrapper every
//! attestation of ours is, whatever its predicate. `subject` names the
//! artifacts it is about by digest; `predicateType` says how to read
//! `predicate`. Two predicates are written here: test results
//! (`fleet/attest.rs`, read back by `result_policy.rs`) and SLSA Provenance
//! v1 (`provenance.rs`). This module only knows the wrapper.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// in-toto's test-result predicate (attestation/spec/predicates/test-result.md).
pub const TEST_RESULT_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";
/// SLSA Provenance v1.
pub const PROVENANCE_TYPE: &str = "https://slsa.dev/provenance/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

impl<P> Statement<P> {
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: &str, predicate: P) -> Self {
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }
}

/// in-toto's ResourceDescriptor: only the fields we write. An empty field
/// is left out, as the spec's JSON form does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "downloadLocation",
        skip_serializing_if = "String::is_empty"
    )]
    pub download_location: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub annotations: serde_json::Map<String, serde_json::Value>,
}

impl ResourceDescriptor {
    /// A file named by its sha256 (lowercase hex).
    pub fn sha256(name: &str, hex: &str) -> ResourceDescriptor {
        ResourceDescriptor {
            name: name.to_string(),
            digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
            ..Default::default()
        }
    }
}
