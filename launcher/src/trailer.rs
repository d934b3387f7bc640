//! The fixed-size trailer that ends a single-file bundle:
//! `[launcher ELF][payload][trailer]`.
//!
//! Layout (64 bytes, integers little-endian), a contract pinned by tests:
//!
//! | bytes  | field                                  |
//! |--------|----------------------------------------|
//! | 0..4   | format version (`FORMAT_VERSION`)      |
//! | 4..8   | trailer length (64)                    |
//! | 8..16  | payload offset from the file's start   |
//! | 16..24 | payload length                         |
//! | 24..56 | payload sha256                         |
//! | 56..64 | magic `ARCHYGAT`                       |
//!
//! The magic sits last so that a reader finds it at `len - 8`, and so that
//! bytes appended after a trailer can be told apart from a missing one.

use crate::digest::Sha256Bytes;

pub const MAGIC: [u8; 8] = *b"ARCHYGAT";
pub const FORMAT_VERSION: u32 = 1;
pub const TRAILER_LEN: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub version: u32,
    pub payload_offset: u64,
    pub payload_len: u64,
    pub payload_sha256: Sha256Bytes,
}

/// Why the last 64 bytes of a file are not a trailer this launcher reads.
#[derive(Debug, PartialEq, Eq)]
pub enum TrailerError {
    NoMagic,
    Version(u32),
    Length(u32),
}

impl Trailer {
    pub fn encode(&self) -> [u8; TRAILER_LEN as usize] {
        let mut out = [0u8; TRAILER_LEN as usize];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..8].copy_from_slice(&(TRAILER_LEN as u32).to_le_bytes());
        out[8..16].copy_from_slice(&self.payload_offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        out[24..56].copy_from_slice(&self.payload_sha256);
        out[56..64].copy_from_slice(&MAGIC);
        out
    }

    pub fn decode(bytes: &[u8; TRAILER_LEN as usize]) -> Result<Trailer, TrailerError> {
        if bytes[56..64] != MAGIC {
            return Err(TrailerError::NoMagic);
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let version = u32_at(0);
        if version != FORMAT_VERSION {
            return Err(TrailerError::Version(version));
        }
        let len = u32_at(4);
        if u64::from(len) != TRAILER_LEN {
            return Err(TrailerError::Length(len));
        }
        Ok(Trailer {
            version,
            payload_offset: u64_at(8),
            payload_len: u64_at(16),
            payload_sha256: bytes[24..56].try_into().unwrap(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let t = Trailer {
            version: FORMAT_VERSION,
            payload_offset: 1234,
            payload_len: 5678,
            payload_sha256: [7; 32],
        };
        assert_eq!(Trailer::decode(&t.encode()), Ok(t));
    }

    #[test]
    fn foreign_version_and_magic_are_told_apart() {
        let mut bytes = Trailer {
            version: FORMAT_VERSION,
            payload_offset: 0,
            payload_len: 0,
            payload_sha256: [0; 32],
        }
        .encode();
        bytes[0] = 9;
        assert_eq!(Trailer::decode(&bytes), Err(TrailerError::Version(9)));
        bytes[63] ^= 1;
        assert_eq!(Trailer::decode(&bytes), Err(TrailerError::NoMagic));
    }
}
