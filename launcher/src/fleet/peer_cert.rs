//! A peer's RPC certificate, learned where it can be trusted: on the peer
//! itself, over that peer's own SSH connection (the channel the fleet
//! already trusts with the peer's password), never over the network the
//! suite will use. The peer's launcher reads the certificate its RPC
//! serves on loopback (`rpc --host HOST --print-cert`, which refuses any
//! other host); the fleet hashes it here and hands both to the suite in
//! ARCHY_PEERS (`cert`, `cert_sha256`), where `rpc --anonymous
//! --pin-sha256` and the curl fallback trust that certificate and no other.

use super::answer;
use super::remote_run::{self, StepResult};
use super::roster::Node;
use super::ssh::{quote, Ssh};
use super::state::Phase;
use crate::exit::ExitStatus;
use crate::pinned_tls::{der_of_pem, pem_of_der, CertPin};

/// What a suite trusts a peer by.
pub struct PeerCert {
    /// The certificate, PEM.
    pub pem: String,
    /// The sha256 of its DER, hex: the pin.
    pub sha256: CertPin,
}

/// Reads the certificate `node`'s RPC (its `host`, as the node itself
/// reaches it) serves, on `node` through `ssh`.
pub fn read(ssh: &mut Ssh, node: &Node) -> StepResult<PeerCert> {
    let out = remote_run::retry(
        ssh,
        &format!(
            "{} rpc --host {} --print-cert",
            quote(&node.remote_path),
            quote(&node.host)
        ),
        b"",
        answer::SHORT,
    )
    .map_err(|e| e.step(&node.name))?;
    if out.code != ExitStatus::Success.code() {
        return Err((
            Phase::Error,
            format!(
                "cannot read {}'s RPC certificate on it: {}",
                node.name,
                remote_run::last_line(&out.stderr)
            ),
        ));
    }
    let der = der_of_pem(&out.stdout_text()).map_err(|e| {
        (
            Phase::Error,
            format!(
                "{}'s RPC certificate, as its launcher printed it: {e}",
                node.name
            ),
        )
    })?;
    Ok(PeerCert {
        // Re-encoded from the DER: only the certificate goes on, nothing
        // else the node printed.
        pem: pem_of_der(&der),
        sha256: CertPin::of_der(&der),
    })
}
