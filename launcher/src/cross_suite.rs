//! A cross-node suite's context on the node it runs on: which suite, this
//! node's name and role, and its peers (`ARCHY_PEERS`). `run --cross`
//! checks it and records it in run.json; the fleet builds it. A peer is
//! what another node may know of it: its name, its RPC address, its role,
//! the package versions the operator's fleet read from it, and the
//! certificate its RPC serves (read on it, over its own SSH connection),
//! by which the suite trusts it (`rpc --anonymous --pin-sha256`). Never a
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
    /// Its RPC's certificate (PEM), as the fleet read it on the peer
    /// itself; absent when run by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// The sha256 (hex) of that certificate's DER: the pin. With `cert`,
    /// always, and they agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
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
                 (fields: name, host, role, packages, cert, cert_sha256; never a password)"
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
        check_cert(peer).map_err(|e| {
            fail(
                ExitStatus::Usage,
                format!("--peers: peer {:?}: {e}", peer.name),
            )
        })?;
    }
    Ok(peers)
}

/// A peer's `cert` and `cert_sha256` come together, and agree.
fn check_cert(peer: &Peer) -> Result<(), String> {
    use crate::pinned_tls::{der_of_pem, CertPin};
    match (&peer.cert, &peer.cert_sha256) {
        (None, None) => Ok(()),
        (Some(pem), Some(hex)) => {
            let pin = CertPin::parse(hex).map_err(|e| format!("cert_sha256 {e}"))?;
            let der = der_of_pem(pem).map_err(|e| format!("cert: {e}"))?;
            let actual = CertPin::of_der(&der);
            if actual == pin {
                Ok(())
            } else {
                Err(format!(
                    "cert_sha256 {pin} is not its cert's (whose DER has sha256 {actual})"
                ))
            }
        }
        _ => Err("cert and cert_sha256 go together: give both or neither".into()),
    }
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

    #[test]
    fn a_peer_s_cert_and_its_sha256_agree() {
        // Any well-formed certificate will do: the one pinned_tls tests use.
        let pem = "-----BEGIN CERTIFICATE-----\n\
MIIBkTCCATagAwIBAgIUcSpzRYx/LENY8/td9h7oMHW33YIwCgYIKoZIzj0EAwIw\n\
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNjA4MDY0NloYDzIxMjYxMTEy\n\
MDgwNjQ2WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n\
PQMBBwNCAARPn9SJzDHj87fQeZGQs+IzCBR98P4uBROSRgGUdrbaPWydl/jX5ZWz\n\
eQ5wCteweKIQam7IGHuzb0ccaCZVLuq2o2QwYjAdBgNVHQ4EFgQUn55Gml4YBCJW\n\
G97eQhswtm8e3icwHwYDVR0jBBgwFoAUn55Gml4YBCJWG97eQhswtm8e3icwDwYD\n\
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC\n\
IQCm52StwPOHNWFBILEyj5iZBb/LRtr+zU2Swnx2b9/KVQIhANXjm+IMQtH2O34Z\n\
CaiuTt3cd1aZvR5tn0+Ss54c3A/d\n\
-----END CERTIFICATE-----\n";
        let der = crate::pinned_tls::der_of_pem(pem).unwrap();
        let pin = crate::pinned_tls::CertPin::of_der(&der);
        let peers = |cert: Option<&str>, sha: Option<&str>| {
            let peer = serde_json::json!([{"name": "b", "host": "10.0.0.2",
                "cert": cert, "cert_sha256": sha}]);
            // null fields mean absent
            let text = peer
                .to_string()
                .replace(",\"cert\":null", "")
                .replace(",\"cert_sha256\":null", "");
            parse_peers(&text).map_err(|e| e.to_string())
        };
        let ok = peers(Some(pem), Some(pin.as_str())).unwrap();
        assert_eq!(ok[0].cert_sha256.as_deref(), Some(pin.as_str()));
        assert!(peers(None, None).is_ok());
        let wrong = "0".repeat(64);
        let err = peers(Some(pem), Some(&wrong)).unwrap_err();
        assert!(
            err.contains(&format!("is not its cert's (whose DER has sha256 {pin})")),
            "{err}"
        );
        assert!(peers(Some(pem), None)
            .unwrap_err()
            .contains("give both or neither"));
        assert!(peers(None, Some(pin.as_str()))
            .unwrap_err()
            .contains("give both or neither"));
        assert!(peers(Some("junk"), Some(pin.as_str()))
            .unwrap_err()
            .contains("cert: "));
    }
}
