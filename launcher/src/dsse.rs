//! DSSE envelopes (secure-systems-lab/dsse v1), the signing wrapper in-toto
//! attestations travel in: `{"payloadType", "payload" (base64), "signatures":
//! [{"keyid", "sig" (base64)}]}`, each signature a plain Ed25519 signature
//! over the pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
//!
//! The keys are the operator's minisign keys (`launcher keygen`); a
//! signature's `keyid` is the key's minisign id, so the same id names a key
//! in a bundle's signature, a report and an envelope. A verifier outside
//! this launcher needs only the 32-byte public key (the last 32 bytes of the
//! .pub file's base64 line) and that id. This module never reads what the
//! payload says: it only proves who signed which bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::minisig::{PublicKey, SecretKey};

/// The payload type of an in-toto Statement (any version).
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard alphabet, padded), as the DSSE protocol writes it.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// Why an envelope does not prove its payload came from a trusted key.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not base64 where base64 belongs, or no signature at all.
    Malformed(String),
    /// Signed only by keys that are not trusted (their ids).
    OtherKey(Vec<String>),
    /// A trusted key's signature does not match: a byte of the payload or
    /// its type changed after signing (the key's id).
    Mismatch(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Malformed(why) => write!(f, "the envelope is malformed: {why}"),
            Refused::OtherKey(ids) if ids.is_empty() => {
                f.write_str("it carries no signature")
            }
            Refused::OtherKey(ids) => write!(
                f,
                "it is signed only by key {}, which is not trusted",
                ids.join(", ")
            ),
            Refused::Mismatch(id) => write!(
                f,
                "the signature by key {id} does not match the envelope: it was changed after signing"
            ),
        }
    }
}

/// DSSE's pre-authentication encoding: what is signed, so that the type
/// cannot be swapped under a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// `payload` signed by `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SecretKey) -> Envelope {
        let sig = key.sign_raw(&pae(payload_type, payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key.public.id(),
                sig: STANDARD.encode(sig),
            }],
        }
    }

    /// The payload's bytes and the trusted key that signed them. A
    /// signature by a trusted key is checked whatever its `keyid` says
    /// (the id is a hint, DSSE does not sign it), so a changed id cannot
    /// hide a good signature nor lend a bad one a name.
    pub fn verify<'k>(
        &self,
        trusted: &'k [PublicKey],
    ) -> Result<(Vec<u8>, &'k PublicKey), Refused> {
        let payload = STANDARD
            .decode(self.payload.as_bytes())
            .map_err(|e| Refused::Malformed(format!("its payload is not base64 ({e})")))?;
        let message = pae(&self.payload_type, &payload);
        let mut mismatch = None;
        let mut others = Vec::new();
        for s in &self.signatures {
            let sig = STANDARD
                .decode(s.sig.as_bytes())
                .map_err(|e| Refused::Malformed(format!("a signature is not base64 ({e})")))?;
            let named = trusted.iter().find(|k| k.id() == s.keyid);
            let candidates: Vec<&PublicKey> = match named {
                Some(k) => vec![k],
                None => trusted.iter().collect(),
            };
            let good = candidates.into_iter().find(|k| {
                UnparsedPublicKey::new(&ED25519, k.pk)
                    .verify(&message, &sig)
                    .is_ok()
            });
            match (good, named) {
                (Some(key), _) => return Ok((payload, key)),
                (None, Some(k)) => mismatch = Some(k.id()),
                (None, None) => others.push(s.keyid.clone()),
            }
        }
        Err(match mismatch {
            Some(id) => Refused::Mismatch(id),
            None => Refused::OtherKey(others),
        })
    }

    /// One line of a `.jsonl` file (keys in a fixed order, no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an envelope serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_protocols() {
        // The example in secure-systems-lab/dsse's protocol.md.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_verify_and_each_refusal() {
        let (key, _) = SecretKey::generate().unwrap();
        let (other, _) = SecretKey::generate().unwrap();
        let env = Envelope::sign(INTOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key);
        let trusted = [key.public];
        let (payload, by) = env.verify(&trusted).unwrap();
        assert_eq!(payload, b"{\"a\":1}");
        assert_eq!(by, &key.public);
        assert!(matches!(
            env.verify(&[other.public]),
            Err(Refused::OtherKey(ids)) if ids == vec![key.public.id()]
        ));
        let mut changed = env.clone();
        changed.payload = STANDARD.encode(b"{\"a\":2}");
        assert_eq!(
            changed.verify(&trusted),
            Err(Refused::Mismatch(key.public.id())).map(|()| unreachable!())
        );
        let mut retyped = env.clone();
        retyped.payload_type.push('x');
        assert!(matches!(
            retyped.verify(&trusted),
            Err(Refused::Mismatch(_))
        ));
        let mut renamed = env.clone();
        renamed.signatures[0].keyid = "0".into();
        assert!(renamed.verify(&trusted).is_ok(), "the keyid is only a hint");
    }
}
