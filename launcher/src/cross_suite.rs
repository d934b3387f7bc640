//! A cross-node suite's context on the node it runs on: which suite, this
//! node's name and role, and its peers (`ARCHY_PEERS`). `run --cross`
//! checks it and records it in run.json; the fleet builds it. A peer is
//! what another node may know of it: its name, its RPC address, its role,
//! and the package versions the operator's fleet read from it. Never a
//! password: a peer entry holds exactly these fields, anything else (a
//! `password` key among them) is refused.

use serde::{Deserialize, Serialize};

use crate::exit::{fail, ExitStatus};

/// One package as a peer's `server.get-state` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageVersion {
    pub id: String,
    pub version: String,
}

/// Another node of the suite, as the suite on this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its name in the roster.
    pub name: String,
    /// Its RPC address as this node reaches it (host[:port]).
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Its packages and versions, read by the fleet with the peer's own
    /// password just before the suite starts; absent when run by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<PackageVersion>>,
}

/// What a cross run is, recorded in run.json (`cross`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrossRun {
    pub suite: String,
    /// The suite's entry script in the bundle.
    pub entry: String,
    /// This node's name in the roster (ARCHY_CROSS_NODE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// This node's role in the suite (ARCHY_CROSS_ROLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub peers: Vec<Peer>,
}

/// Parses `--peers`: a JSON array of peers, each a known shape with a
/// host the RPC client would accept.
pub fn parse_peers(text: &str) -> anyhow::Result<Vec<Peer>> {
    let peers: Vec<Peer> = serde_json::from_str(text).map_err(|e| {
        fail(
            ExitStatus::Usage,
            format!(
                "--peers is not a JSON array of peers ({e}): give \
                 '[{{\"name\": \"n198\", \"host\": \"192.168.1.198\", \"role\": \"client\"}}]' \
                 (fields: name, host, role, packages; never a password)"
            ),
        )
    })?;
    for peer in &peers {
        crate::rpc::endpoint("https", &peer.host, false).map_err(|e| {
            fail(
                ExitStatus::Usage,
                format!("--peers: peer {:?}: {e}", peer.name),
            )
        })?;
    }
    Ok(peers)
}

/// The environment a cross suite gets besides the gate's.
pub fn environment(run: &CrossRun) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("ARCHY_CROSS_SUITE", run.suite.clone()),
        (
            "ARCHY_PEERS",
            serde_json::to_string(&run.peers).unwrap_or_else(|_| "[]".into()),
        ),
    ];
    if let Some(node) = &run.node {
        env.push(("ARCHY_CROSS_NODE", node.clone()));
    }
    if let Some(role) = &run.role {
        env.push(("ARCHY_CROSS_ROLE", role.clone()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_never_carries_a_password() {
        let err = parse_peers(r#"[{"name": "b", "host": "10.0.0.2", "password": "x"}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `password`"), "{err}");
        let ok =
            parse_peers(r#"[{"name": "b", "host": "10.0.0.2:8443", "role": "client"}]"#).unwrap();
        assert_eq!(ok[0].role.as_deref(), Some("client"));
        assert!(parse_peers(r#"[{"name": "b", "host": "u@evil/x"}]"#).is_err());
    }
}
