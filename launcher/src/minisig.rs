//! minisign's key and signature files, so that anyone can check a bundle
//! with Debian's `minisign` and no launcher of ours.
//!
//! * public key: `untrusted comment: …\n` + base64(`Ed` key_id[8] pk[32])
//! * secret key: `untrusted comment: …\n` + base64(`Ed` kdf[2] `B2`
//!   salt[32] opslimit[8] memlimit[8] key_id[8] seed[32] pk[32] cksum[32]);
//!   only unencrypted keys (kdf `\0\0`, `minisign -G -W`) are read here
//! * signature: `untrusted comment: …\n` + base64(`ED` key_id[8] sig[64])
//!   then `\ntrusted comment: TEXT\n` + base64(global_sig[64]) + `\n`;
//!   sig signs BLAKE2b-512(message) (`ED`, minisign's default; legacy `Ed`,
//!   over the message itself, is accepted too); global_sig signs
//!   sig || TEXT, so the trusted comment cannot be changed either.
//!
//! A key id is shown as minisign shows it: the 8 bytes as a little-endian
//! u64 in upper-case hex.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use blake2::{Blake2b512, Digest};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};

const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";
/// minisign's own bound on a trusted comment.
const TRUSTED_COMMENT_MAX: usize = 8191;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: [u8; 8],
    pub pk: [u8; 32],
}

impl PublicKey {
    /// The base64 line of a public key file (what `minisign -P` takes).
    pub fn from_base64(text: &str) -> Option<PublicKey> {
        let raw = STANDARD.decode(text.trim()).ok()?;
        if raw.len() != 42 || &raw[..2] != b"Ed" {
            return None;
        }
        Some(PublicKey {
            key_id: raw[2..10].try_into().ok()?,
            pk: raw[10..42].try_into().ok()?,
        })
    }

    /// Every key in a public key file: the base64 lines; comment lines
    /// (`untrusted comment:`, `#`) and blank lines are skipped, so several
    /// .pub files may be concatenated into one trust file.
    pub fn parse_file(text: &str) -> Result<Vec<PublicKey>, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(UNTRUSTED) {
                continue;
            }
            keys.push(PublicKey::from_base64(line).ok_or_else(|| {
                format!(
                    "line {} is not a minisign public key (base64 of 42 bytes starting \"Ed\")",
                    n + 1
                )
            })?);
        }
        if keys.is_empty() {
            return Err("it holds no minisign public key".into());
        }
        Ok(keys)
    }

    pub fn to_base64(self) -> String {
        let mut raw = b"Ed".to_vec();
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.pk);
        STANDARD.encode(raw)
    }

    pub fn id(&self) -> String {
        key_id_hex(&self.key_id)
    }

    pub fn file_text(&self) -> String {
        format!(
            "{UNTRUSTED}minisign public key {}\n{}\n",
            self.id(),
            self.to_base64()
        )
    }
}

/// A key id as minisign prints it: `%" PRIX64`, upper-case hex with no
/// zero padding (one key in 16 has an id of 15 digits or fewer).
pub fn key_id_hex(id: &[u8; 8]) -> String {
    format!("{:X}", u64::from_le_bytes(*id))
}

pub struct SecretKey {
    pub public: PublicKey,
    pair: Ed25519KeyPair,
}

impl SecretKey {
    /// Reads an unencrypted minisign secret key file.
    pub fn parse_file(text: &str) -> Result<SecretKey, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(UNTRUSTED))
            .ok_or("it holds no key line")?;
        let raw = STANDARD
            .decode(line)
            .map_err(|_| "its key line is not base64".to_string())?;
        if raw.len() != 158 || &raw[..2] != b"Ed" {
            return Err("it is not a minisign secret key (158 bytes starting \"Ed\")".into());
        }
        match &raw[2..4] {
            b"\0\0" => {}
            b"Sc" => {
                return Err("it is encrypted with a password, which this launcher does not read: make an unencrypted key with `minisign -G -W` (or `launcher keygen`) and keep it where only the signer can read it".into())
            }
            other => return Err(format!("unknown key protection {other:?}")),
        }
        if &raw[4..6] != b"B2" {
            return Err("unknown checksum algorithm".into());
        }
        let key_id: [u8; 8] = raw[54..62].try_into().unwrap();
        let sk = &raw[62..126];
        let checksum = &raw[126..158];
        // minisign -W writes zeros here; a non-zero checksum must hold.
        if checksum.iter().any(|&b| b != 0) && checksum != secret_checksum(&key_id, sk) {
            return Err("its checksum does not match: the file is damaged".into());
        }
        let pk: [u8; 32] = sk[32..64].try_into().unwrap();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&sk[..32], &pk)
            .map_err(|_| "its secret and public halves do not belong together".to_string())?;
        Ok(SecretKey {
            public: PublicKey { key_id, pk },
            pair,
        })
    }

    /// A new key pair from the system's randomness.
    pub fn generate() -> Result<(SecretKey, String), String> {
        use ring::rand::{SecureRandom, SystemRandom};
        let rng = SystemRandom::new();
        let mut seed = [0u8; 32];
        let mut key_id = [0u8; 8];
        rng.fill(&mut seed).map_err(|_| "no system randomness")?;
        rng.fill(&mut key_id).map_err(|_| "no system randomness")?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| "bad seed")?;
        let pk: [u8; 32] = ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .try_into()
            .unwrap();
        let mut sk = seed.to_vec();
        sk.extend_from_slice(&pk);
        let mut raw = b"Ed\0\0B2".to_vec();
        raw.extend_from_slice(&[0u8; 48]); // salt, opslimit, memlimit: no KDF
        raw.extend_from_slice(&key_id);
        raw.extend_from_slice(&sk);
        raw.extend_from_slice(&secret_checksum(&key_id, &sk));
        let text = format!(
            "{UNTRUSTED}minisign secret key {} (unencrypted)\n{}\n",
            key_id_hex(&key_id),
            STANDARD.encode(raw)
        );
        let key = SecretKey {
            public: PublicKey { key_id, pk },
            pair,
        };
        Ok((key, text))
    }

    /// A plain Ed25519 signature over `message` itself, no prehash: what
    /// DSSE signs (its pre-authentication encoding), so that any Ed25519
    /// verifier checks it, not only minisign.
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.pair.sign(message).as_ref().try_into().unwrap()
    }

    /// Signs `message` the way `minisign -S` does (prehashed, `ED`).
    pub fn sign(&self, message: &[u8], trusted_comment: &str, untrusted: &str) -> Signature {
        let sig: [u8; 64] = self
            .pair
            .sign(&Blake2b512::digest(message))
            .as_ref()
            .try_into()
            .unwrap();
        let global: [u8; 64] = self
            .pair
            .sign(&[&sig[..], trusted_comment.as_bytes()].concat())
            .as_ref()
            .try_into()
            .unwrap();
        Signature {
            untrusted_comment: untrusted.to_string(),
            alg: *b"ED",
            key_id: self.public.key_id,
            sig,
            trusted_comment: trusted_comment.to_string(),
            global_sig: global,
        }
    }
}

fn secret_checksum(key_id: &[u8; 8], sk: &[u8]) -> [u8; 32] {
    use blake2::digest::consts::U32;
    let mut h = blake2::Blake2b::<U32>::new();
    h.update(b"Ed");
    h.update(key_id);
    h.update(sk);
    h.finalize().into()
}

#[derive(Clone, Debug)]
pub struct Signature {
    pub untrusted_comment: String,
    pub alg: [u8; 2],
    pub key_id: [u8; 8],
    pub sig: [u8; 64],
    pub trusted_comment: String,
    pub global_sig: [u8; 64],
}

/// Why a signature does not prove a message came from a trusted key.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Signed by a key that is not among the trusted ones.
    OtherKey(String),
    /// The signature does not match the message: a byte changed, or the
    /// signature belongs to another message.
    Mismatch(String),
    /// The signature holds, but its trusted comment was altered.
    Comment(String),
}

impl Signature {
    pub fn parse(text: &str) -> Result<Signature, String> {
        let mut lines = text.lines();
        let untrusted = lines
            .next()
            .and_then(|l| l.strip_prefix(UNTRUSTED))
            .ok_or("its first line is not an untrusted comment")?;
        let raw = lines
            .next()
            .and_then(|l| STANDARD.decode(l.trim()).ok())
            .ok_or("its second line is not base64")?;
        if raw.len() != 74 || !(&raw[..2] == b"ED" || &raw[..2] == b"Ed") {
            return Err("its second line is not an Ed25519 signature (74 bytes, \"ED\")".into());
        }
        let trusted = lines
            .next()
            .and_then(|l| l.strip_prefix(TRUSTED))
            .ok_or("its third line is not a trusted comment")?;
        if trusted.len() > TRUSTED_COMMENT_MAX {
            return Err("its trusted comment is too long".into());
        }
        let global = lines
            .next()
            .and_then(|l| STANDARD.decode(l.trim()).ok())
            .filter(|g| g.len() == 64)
            .ok_or("its fourth line is not a 64-byte base64 signature")?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err("it has lines after the comment signature".into());
        }
        Ok(Signature {
            untrusted_comment: untrusted.to_string(),
            alg: raw[..2].try_into().unwrap(),
            key_id: raw[2..10].try_into().unwrap(),
            sig: raw[10..74].try_into().unwrap(),
            trusted_comment: trusted.to_string(),
            global_sig: global.try_into().unwrap(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut raw = self.alg.to_vec();
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.sig);
        format!(
            "{UNTRUSTED}{}\n{}\n{TRUSTED}{}\n{}\n",
            self.untrusted_comment,
            STANDARD.encode(raw),
            self.trusted_comment,
            STANDARD.encode(self.global_sig)
        )
    }

    pub fn key_id(&self) -> String {
        key_id_hex(&self.key_id)
    }

    /// Which trusted key made this signature over `message`, if one did.
    pub fn verify<'k>(
        &self,
        trusted: &'k [PublicKey],
        message: &[u8],
    ) -> Result<&'k PublicKey, Rejected> {
        let id = self.key_id();
        let key = trusted
            .iter()
            .find(|k| k.key_id == self.key_id)
            .ok_or_else(|| Rejected::OtherKey(id.clone()))?;
        let pk = UnparsedPublicKey::new(&ED25519, key.pk);
        let signed_ok = if &self.alg == b"ED" {
            pk.verify(&Blake2b512::digest(message), &self.sig)
        } else {
            pk.verify(message, &self.sig)
        };
        signed_ok.map_err(|_| Rejected::Mismatch(id.clone()))?;
        pk.verify(
            &[&self.sig[..], self.trusted_comment.as_bytes()].concat(),
            &self.global_sig,
        )
        .map_err(|_| Rejected::Comment(id))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_print_as_minisign_prints_them() {
        let id = 0x0E14_3073_7322_C455u64.to_le_bytes();
        assert_eq!(key_id_hex(&id), "E1430737322C455");
        assert_eq!(key_id_hex(&u64::MAX.to_le_bytes()), "FFFFFFFFFFFFFFFF");
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let (key, text) = SecretKey::generate().unwrap();
        let again = SecretKey::parse_file(&text).unwrap();
        assert_eq!(again.public, key.public);
        let sig = key.sign(b"hello", "file:x", "signature");
        let parsed = Signature::parse(&sig.to_text()).unwrap();
        let keys = [key.public];
        assert_eq!(parsed.verify(&keys, b"hello"), Ok(&key.public));
        assert!(matches!(
            parsed.verify(&keys, b"hellp"),
            Err(Rejected::Mismatch(_))
        ));
        let mut altered = parsed.clone();
        altered.trusted_comment.push('!');
        assert!(matches!(
            altered.verify(&keys, b"hello"),
            Err(Rejected::Comment(_))
        ));
        let (other, _) = SecretKey::generate().unwrap();
        assert!(matches!(
            parsed.verify(&[other.public], b"hello"),
            Err(Rejected::OtherKey(_))
        ));
    }
}
