//! A cross-node suite's context on the node it runs on: which suite, this
//! node's name and role, and its peers (`ARCHY_PEERS`). `run --cross`
//! checks it and records it in run.json; the fleet builds it. A peer is
//! what another node may know of it: its name, its RPC address, its role,
//! the package versions the operator's fleet read from it, and the
//! certificate its RPC serves (read on it, over its own SSH connection),
//! by which the suite trusts it (`rpc --anonymous --pin-sha256`). Never a
//! password: a peer entry holds exactly these fields, anything else (a
//! `password` key among them) is refused.
//!
//! A run of one step of a suite's scenario (`--step`) also carries the
//! step: what it runs (the suite's run.sh with the step's bats files, or a
//! fault's script with its peer's name and host), which attempt it is, the
//! values earlier steps published, and, once it ended, the values it
//! published itself.

use serde::{Deserialize, Serialize};

use crate::cross_values::{self, Values};
use crate::exit::{fail, ExitStatus};
use crate::manifest::CrossSuite;
use crate::scenario::Action;

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
    /// One step of the suite's scenario, when the run is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRun>,
}

/// One step of a scenario, as this node runs it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRun {
    pub name: String,
    /// tests, cleanup, fault or heal.
    pub kind: String,
    pub attempt: u32,
    /// The bats files it runs (paths in the bundle), passed to the suite's
    /// run.sh as absolute paths in the unpacked bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// A fault's (or heal's) arguments: the peer's name and host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// What earlier steps published (ARCHY_CROSS_VALUES).
    pub values: Values,
    /// What this step published, once it ended (checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Values>,
}

/// What `run --cross` was asked, before it is checked against the bundle.
pub struct CrossAsk<'a> {
    pub suite: &'a str,
    pub step: Option<&'a str>,
    pub heal: bool,
    pub attempt: Option<u32>,
    pub values: Option<&'a str>,
    pub node: Option<String>,
    pub role: Option<String>,
    pub peers: Vec<Peer>,
}

/// The run `ask` describes, against the bundle's suite: the step found,
/// its script and arguments chosen, the values read.
pub fn plan(suite: &CrossSuite, ask: CrossAsk) -> Result<CrossRun, String> {
    let mut run = CrossRun {
        suite: ask.suite.to_string(),
        entry: suite.entry.clone(),
        node: ask.node,
        role: ask.role,
        peers: ask.peers,
        step: None,
    };
    let Some(step_name) = ask.step else {
        return Ok(run);
    };
    let scenario = suite.scenario.as_ref().ok_or_else(|| {
        format!(
            "--step {step_name}: the suite {} has no scenario (no scenario.toml): run it whole",
            ask.suite
        )
    })?;
    let step = scenario.step(step_name).ok_or_else(|| {
        let names: Vec<&str> = scenario.steps.iter().map(|s| s.name.as_str()).collect();
        format!(
            "--step {step_name}: the scenario of {} has no such step; it has {}",
            ask.suite,
            names.join(", ")
        )
    })?;
    let dir = suite.dir();
    let in_suite = |rel: &str| format!("{dir}/{rel}");
    // A heal step runs its fault's heal.
    let (fault_step, healing) = match &step.action {
        Action::Heal { of } => (scenario.step(of).expect("a checked scenario"), true),
        _ => (step, ask.heal),
    };
    if let (Some(role), false) = (&run.role, step.on.is_empty()) {
        if !step.on.contains(role) {
            return Err(format!(
                "--step {step_name} runs on {}, not on this node's role {role}",
                step.on.join(", ")
            ));
        }
    }
    let (entry, files, args) = match &fault_step.action {
        Action::Tests { .. } if healing => {
            return Err(format!("--heal: step {step_name} is not a fault"))
        }
        Action::Tests { files } => (
            suite.entry.clone(),
            files.iter().map(|f| in_suite(f)).collect(),
            Vec::new(),
        ),
        Action::Fault {
            run: script,
            heal,
            peer,
        } => {
            let holders: Vec<&Peer> = run
                .peers
                .iter()
                .filter(|p| p.role.as_deref() == Some(peer.as_str()))
                .collect();
            let [target] = holders[..] else {
                return Err(format!(
                    "step {step_name} acts against the node of role {peer}: --peers has {} such",
                    holders.len()
                ));
            };
            let script = if healing { heal } else { script };
            (
                in_suite(script),
                Vec::new(),
                vec![target.name.clone(), target.host.clone()],
            )
        }
        Action::Heal { .. } => unreachable!("a heal's `of` is a fault (checked)"),
    };
    let values = match ask.values {
        Some(text) => cross_values::parse(text).map_err(|e| format!("--values: {e}"))?,
        None => Values::new(),
    };
    run.entry = entry;
    run.step = Some(StepRun {
        name: step.name.clone(),
        kind: if healing { "heal" } else { step.kind_word() }.into(),
        attempt: ask.attempt.unwrap_or(1),
        files,
        args,
        values,
        published: None,
    });
    Ok(run)
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

/// The environment a cross suite gets besides the gate's; a step's values
/// go to `run_dir`/published.json.
pub fn environment(run: &CrossRun, run_dir: &camino::Utf8Path) -> Vec<(&'static str, String)> {
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
    if let Some(step) = &run.step {
        env.push(("ARCHY_CROSS_STEP", step.name.clone()));
        env.push(("ARCHY_CROSS_ATTEMPT", step.attempt.to_string()));
        env.push((
            "ARCHY_CROSS_VALUES",
            serde_json::to_string(&step.values).unwrap_or_else(|_| "{}".into()),
        ));
        env.push((
            "ARCHY_CROSS_PUBLISH",
            run_dir.join(cross_values::PUBLISH_FILE).to_string(),
        ));
    }
    env
}

/// The values a step published (its run dir's published.json), checked,
/// and refused when one holds this node's own password; the file is
/// removed either way, so a refused value stays nowhere. `Ok(None)`: it
/// published nothing.
pub fn collect_published(
    run_dir: &camino::Utf8Path,
    password: Option<&str>,
) -> Result<Option<Values>, String> {
    let path = run_dir.join(cross_values::PUBLISH_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {path}: {e}")),
    };
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8(text).map_err(|_| format!("{path} is not UTF-8"))?;
    let values = cross_values::parse(&text).map_err(|e| format!("published values: {e}"))?;
    let own = password
        .map(|p| vec![("this node".to_string(), p.to_string())])
        .unwrap_or_default();
    cross_values::refuse_secrets(&values, &own)?;
    Ok(Some(values))
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
