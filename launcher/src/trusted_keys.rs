//! Where a bundle came from: the keys a node trusts (`--trust`, or the
//! root-owned `/etc/archy-gate/trusted.pub`) and the check of a bundle's
//! signature block against them.
//!
//! With a key trusted, only a bundle signed by it passes: unsigned, signed
//! by another key, or changed in any byte after signing is exit 3, with a
//! message saying which. With none, nothing is refused and the report says
//! the origin is unproven.

use std::io::Read;

use crate::bundle::Bundle;
use crate::exit::{fail, ExitStatus};
use crate::minisig::{PublicKey, Rejected, Signature};

/// The node's own trust, used when no `--trust` is given.
pub const TRUST_FILE: &str = "/etc/archy-gate/trusted.pub";

pub struct Trust {
    pub keys: Vec<PublicKey>,
    /// Where the keys came from, for messages: `--trust` or a path.
    pub source: String,
}

impl Trust {
    fn ids(&self) -> String {
        self.keys
            .iter()
            .map(PublicKey::id)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the signature check established.
pub enum SigCheck {
    /// A trusted key signed exactly these bytes.
    Verified {
        key_id: String,
        trusted_comment: String,
        source: String,
    },
    /// No key is trusted; `signed_by` is the key the block names, if any.
    Unchecked { signed_by: Option<String> },
}

impl SigCheck {
    pub fn key_id(&self) -> Option<&str> {
        match self {
            SigCheck::Verified { key_id, .. } => Some(key_id),
            SigCheck::Unchecked { .. } => None,
        }
    }

    /// The report line, beside the payload's and the pin's.
    pub fn line(&self) -> String {
        match self {
            SigCheck::Verified {
                key_id,
                trusted_comment,
                source,
            } => format!(
                "signed   ok   by key {key_id}, trusted by {source}: this bundle comes from its signer (trusted comment: {})",
                crate::printable::printable(trusted_comment)
            ),
            SigCheck::Unchecked { signed_by: Some(id) } => format!(
                "signed   --   not checked: signed by key {id}, but no key is trusted (--trust, or {TRUST_FILE}); its origin is unproven"
            ),
            SigCheck::Unchecked { signed_by: None } => format!(
                "signed   --   not signed, and no key is trusted (--trust, or {TRUST_FILE}); its origin is unproven"
            ),
        }
    }
}

/// The keys to check against: `--trust` (a public key, as `minisign -P`
/// takes it, or a .pub file) when given, else the node's trust file when it
/// exists, else none.
pub fn find_trust(flag: Option<&str>) -> anyhow::Result<Option<Trust>> {
    if let Some(value) = flag {
        if let Some(key) = PublicKey::from_base64(value) {
            return Ok(Some(Trust {
                keys: vec![key],
                source: "--trust".into(),
            }));
        }
        let text = std::fs::read_to_string(value).map_err(|e| {
            fail(
                ExitStatus::Usage,
                format!("--trust {value:?} is neither a minisign public key (the base64 line of a .pub file) nor a readable .pub file: {e}"),
            )
        })?;
        let keys = PublicKey::parse_file(&text).map_err(|why| {
            fail(
                ExitStatus::Usage,
                format!("--trust {value}: {why}; give the key file `minisign -G` or `launcher keygen` wrote"),
            )
        })?;
        return Ok(Some(Trust {
            keys,
            source: value.to_string(),
        }));
    }
    read_trust_file(TRUST_FILE)
}

/// The node's trust file: only root (or the caller) may have written it or
/// its dir, since whoever can write it decides what runs as root.
fn read_trust_file(path: &str) -> anyhow::Result<Option<Trust>> {
    let mut file = match crate::private_fs::open_trusted_file(camino::Utf8Path::new(path)) {
        Ok(Some(file)) => file,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "the trust file is not trusted: {e}; it and its dirs must be owned by root and writable by no one else (chown root: {path}; chmod go-w {path})"
                ),
            ))
        }
    };
    let mut text = String::new();
    (&mut file)
        .take(64 << 10)
        .read_to_string(&mut text)
        .map_err(|e| fail(ExitStatus::Usage, format!("cannot read {path}: {e}")))?;
    let keys = PublicKey::parse_file(&text).map_err(|why| {
        fail(
            ExitStatus::Usage,
            format!("the trust file {path}: {why}; put the signer's .pub file there"),
        )
    })?;
    Ok(Some(Trust {
        keys,
        source: path.to_string(),
    }))
}

/// The signature block parsed, or why it cannot be.
pub fn signature_of(bundle: &Bundle) -> Option<Result<Signature, String>> {
    bundle.signature_text().map(|raw| {
        std::str::from_utf8(raw)
            .map_err(|_| "it is not text".to_string())
            .and_then(Signature::parse)
    })
}

/// Checks the bundle's signature against the trusted keys (exit 3 when a
/// key is trusted and the signature does not prove the bytes came from it).
pub fn check(bundle: &Bundle, trust: Option<&Trust>) -> anyhow::Result<SigCheck> {
    let path = &bundle.path;
    let signature = signature_of(bundle);
    let Some(trust) = trust else {
        let signed_by = match signature {
            Some(Ok(sig)) => Some(sig.key_id()),
            _ => None,
        };
        return Ok(SigCheck::Unchecked { signed_by });
    };
    let integrity = |message: String| fail(ExitStatus::Integrity, message);
    let sig = match signature {
        None => {
            return Err(integrity(format!(
                "{path} is not signed, but {} trusts only bundles signed by key {}: sign it after the build with `launcher sign {path} --key SECRET_KEY`, or fetch the signed one",
                trust.source,
                trust.ids()
            )))
        }
        Some(Err(why)) => {
            return Err(integrity(format!(
                "{path}: its signature block is unreadable ({why}): the file was changed after it was signed; fetch it again"
            )))
        }
        Some(Ok(sig)) => sig,
    };
    match sig.verify(&trust.keys, bundle.built()) {
        Ok(key) => Ok(SigCheck::Verified {
            key_id: key.id(),
            trusted_comment: sig.trusted_comment.clone(),
            source: trust.source.clone(),
        }),
        Err(Rejected::OtherKey(id)) => Err(integrity(format!(
            "{path} is signed by key {id}, which {} does not trust (it trusts {}): this bundle comes from someone else; fetch the one your signer made",
            trust.source,
            trust.ids()
        ))),
        Err(Rejected::Mismatch(id)) => Err(integrity(format!(
            "{path}: the signature by key {id} does not match the bundle's bytes: the file was changed after it was signed, or the signature was made for another bundle; fetch it again"
        ))),
        Err(Rejected::Comment(id)) => Err(integrity(format!(
            "{path}: the trusted comment of the signature by key {id} was changed after signing; fetch it again"
        ))),
    }
}
