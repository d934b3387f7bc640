//! The signature block `launcher sign` appends after a bundle's trailer:
//! `[launcher ELF][payload][trailer][minisig text][footer]`.
//!
//! The built file (everything up to and including the trailer) stays
//! byte for byte what the build wrote, so its pin (SHA256SUMS) still holds;
//! the minisig text is minisign's signature over exactly those bytes.
//! Footer, 16 bytes, little-endian: text length (u32), block version (u32,
//! 1), magic `ARCHYSIG`. A launcher from before signing finds its trailer
//! 16 + text bytes before the end and refuses the file, saying how many
//! bytes were appended after it.

use std::ops::Range;

pub const SIG_MAGIC: [u8; 8] = *b"ARCHYSIG";
pub const FOOTER_LEN: usize = 16;
pub const BLOCK_VERSION: u32 = 1;
/// Far more than a minisig text (a trusted comment is at most 8 KiB).
pub const MAX_TEXT: usize = 16 << 10;

/// Where a signed file's parts lie.
pub struct Split {
    /// The built file: `[launcher ELF][payload][trailer]`.
    pub built_len: usize,
    /// The minisig text.
    pub text: Range<usize>,
}

/// `Ok(None)` when the file does not end in a signature block; an error
/// (a sentence) when it ends in one that cannot be read.
pub fn split(bytes: &[u8]) -> Result<Option<Split>, String> {
    let len = bytes.len();
    if len < FOOTER_LEN || bytes[len - 8..] != SIG_MAGIC {
        return Ok(None);
    }
    let footer = &bytes[len - FOOTER_LEN..];
    let text_len = u32::from_le_bytes(footer[0..4].try_into().unwrap()) as usize;
    let version = u32::from_le_bytes(footer[4..8].try_into().unwrap());
    if version != BLOCK_VERSION {
        return Err(format!(
            "its signature block is version {version}; this launcher reads version {BLOCK_VERSION}"
        ));
    }
    if text_len > MAX_TEXT || text_len + FOOTER_LEN > len {
        return Err(format!(
            "its signature block declares {text_len} bytes of signature, which the file cannot hold"
        ));
    }
    let built_len = len - FOOTER_LEN - text_len;
    Ok(Some(Split {
        built_len,
        text: built_len..len - FOOTER_LEN,
    }))
}

/// The block to append after a built file.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(&BLOCK_VERSION.to_le_bytes());
    out.extend_from_slice(&SIG_MAGIC);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip() {
        let mut file = b"built".to_vec();
        file.extend(encode("sig\n"));
        let s = split(&file).unwrap().unwrap();
        assert_eq!(s.built_len, 5);
        assert_eq!(&file[s.text], b"sig\n");
        assert!(split(b"unsigned file").unwrap().is_none());
    }
}
