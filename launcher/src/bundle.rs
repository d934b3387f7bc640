//! Opening a single-file bundle: finding its trailer and payload, and
//! checking the two digests that guard it.
//!
//! A bundle is read from one descriptor, once, into memory: every check and
//! every use (the manifest, the probe, the unpacked files) works on those
//! bytes, so what was verified is what runs, even if the file (or the
//! running executable) is rewritten meanwhile.
//!
//! The embedded digest (in the trailer) proves the payload is intact. The
//! pin (the whole file's sha256, from `--sha256`, `<file>.sha256` or a
//! `SHA256SUMS` beside the file) proves the file is the artifact that was
//! built. Every report says which of the two was checked.
//!
//! A signed bundle ends in a signature block (`sigblock.rs`) after its
//! trailer; the trailer, the payload and the pin then belong to the built
//! file in front of it, and the block's minisign signature covers exactly
//! that built file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

use crate::digest::{parse_hex, to_hex, Sha256Bytes};
use crate::exit::{fail, ExitStatus, WithStatus};
use crate::sigblock;
use crate::trailer::{Trailer, TrailerError, FORMAT_VERSION, MAGIC, TRAILER_LEN};

/// How far back from the end to look for a trailer that had bytes appended.
const APPENDED_SCAN_BYTES: u64 = 1 << 20;

/// The largest file taken for a bundle: ours are a few MiB, and the whole
/// file is held in memory.
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;

pub struct Bundle {
    pub path: Utf8PathBuf,
    pub len: u64,
    pub trailer: Trailer,
    /// The whole file, as read once.
    bytes: Vec<u8>,
    /// The built file's length: all of it, or what precedes a signature block.
    built_len: usize,
    /// The signature block's minisig text, when the file is signed.
    signature: Option<std::ops::Range<usize>>,
}

/// Where the whole-file sha256 to compare against came from.
#[derive(Debug, Clone)]
pub enum PinSource {
    Flag,
    File(Utf8PathBuf),
}

#[derive(Debug, Clone)]
pub struct Pin {
    pub sha256: Sha256Bytes,
    pub source: PinSource,
}

impl Pin {
    pub fn describe(&self) -> String {
        match &self.source {
            PinSource::Flag => "--sha256".to_string(),
            PinSource::File(path) => path.to_string(),
        }
    }
}

/// The sha256 of the whole file and of its payload.
#[derive(Clone, Copy)]
pub struct Digests {
    pub whole: Sha256Bytes,
    /// The built file's (the same as `whole` for an unsigned bundle).
    pub built: Sha256Bytes,
    pub payload: Sha256Bytes,
}

/// What a full check of a bundle established.
pub struct Checked {
    pub whole_sha256: Sha256Bytes,
    /// What the pin matched: the built file's sha256 (SHA256SUMS from the
    /// build), or the file's as it is (a signed copy's own sha256).
    pub pinned_sha256: Sha256Bytes,
    pub pin: Option<Pin>,
}

impl Bundle {
    /// Opens the bundle appended to the running executable.
    pub fn open_self() -> anyhow::Result<Bundle> {
        let exe = std::fs::read_link("/proc/self/exe")
            .context("cannot find the running executable through /proc/self/exe")?;
        let exe = Utf8PathBuf::from_path_buf(exe).map_err(|p| {
            fail(
                ExitStatus::Usage,
                format!("{} is not a UTF-8 path", p.display()),
            )
        })?;
        let mut file = File::open("/proc/self/exe")
            .with_context(|| format!("cannot open the running executable {exe}"))?;
        let len = file.metadata()?.len();
        if !ends_with_magic(&mut file, len, &MAGIC)?
            && !ends_with_magic(&mut file, len, &sigblock::SIG_MAGIC)?
            && find_magic_before_end(&mut file, len)?.is_none()
        {
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "{exe} carries no bundle: name one, e.g. `{} verify result/archy-gate`",
                    exe.file_name().unwrap_or("launcher")
                ),
            ));
        }
        Bundle::from_file(exe, file)
    }

    /// Opens a bundle file and checks that its trailer is well-formed and
    /// agrees with the file's length. Does not hash anything yet.
    pub fn open(path: &Utf8Path) -> anyhow::Result<Bundle> {
        let file = File::open(path).status(ExitStatus::Usage, || {
            format!("cannot open bundle {path}: check the path")
        })?;
        if file.metadata()?.is_dir() {
            return Err(fail(
                ExitStatus::Usage,
                format!("{path} is a directory; name the bundle file inside it (archy-gate)"),
            ));
        }
        Bundle::from_file(path.to_owned(), file)
    }

    fn from_file(path: Utf8PathBuf, mut file: File) -> anyhow::Result<Bundle> {
        let len = file.metadata()?.len();
        if len < TRAILER_LEN {
            return Err(fail(ExitStatus::Integrity, format!(
                "{path} is {len} bytes, too short to end in a bundle trailer ({TRAILER_LEN} bytes): it is truncated, or not a bundle"
            )));
        }
        if len > MAX_BUNDLE_BYTES {
            return Err(fail(
                ExitStatus::Integrity,
                format!(
                    "{path} is {len} bytes, more than a bundle may be ({MAX_BUNDLE_BYTES}): it is not a bundle"
                ),
            ));
        }
        file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::with_capacity(len as usize);
        (&mut file)
            .take(len + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {path}"))?;
        if bytes.len() as u64 != len {
            return Err(fail(
                ExitStatus::Integrity,
                format!("{path} changed size while it was being read: is something writing it?"),
            ));
        }
        let (built_len, signature) = match sigblock::split(&bytes) {
            Ok(None) => (bytes.len(), None),
            Ok(Some(split)) => (split.built_len, Some(split.text)),
            Err(why) => {
                return Err(fail(
                    ExitStatus::Integrity,
                    format!("{path}: {why}: the file is corrupt, or was signed by a newer launcher; fetch it again"),
                ))
            }
        };
        if (built_len as u64) < TRAILER_LEN {
            return Err(fail(ExitStatus::Integrity, format!(
                "{path}: its signature block leaves {built_len} bytes for the bundle, too few for a trailer: the file is corrupt"
            )));
        }
        let raw: [u8; TRAILER_LEN as usize] = bytes[built_len - TRAILER_LEN as usize..built_len]
            .try_into()
            .expect("TRAILER_LEN bytes");
        let trailer = match Trailer::decode(&raw) {
            Ok(t) => t,
            Err(TrailerError::NoMagic) => {
                return Err(match find_magic_before_end(&mut io::Cursor::new(&bytes), len)? {
                    Some(extra) => fail(
                        ExitStatus::Integrity,
                        format!(
                            "{path} has {extra} bytes appended after its bundle trailer: it was changed after it was built; fetch or rebuild it"
                        ),
                    ),
                    None => fail(ExitStatus::Integrity, format!(
                        "{path} does not end in an archy-gate bundle trailer: it is truncated, or not a bundle"
                    )),
                })
            }
            Err(TrailerError::Version(v)) => {
                return Err(fail(
                    ExitStatus::Integrity,
                    format!(
                        "{path} is bundle format {v}; this launcher reads format {FORMAT_VERSION}: use the launcher the bundle was built with"
                    ),
                ))
            }
            Err(TrailerError::Length(n)) => {
                return Err(fail(
                    ExitStatus::Integrity,
                    format!("{path} has a corrupt trailer (declares {n} bytes, not {TRAILER_LEN})"),
                ))
            }
        };
        let room = built_len as u64 - TRAILER_LEN;
        let fits = trailer
            .payload_offset
            .checked_add(trailer.payload_len)
            .is_some_and(|end| end == room);
        if !fits {
            return Err(fail(
                ExitStatus::Integrity,
                format!(
                    "{path}: the trailer places a {}-byte payload at offset {}, but the file has {room} bytes before its trailer: the file is truncated or the trailer is corrupt",
                    trailer.payload_len, trailer.payload_offset
                ),
            ));
        }
        Ok(Bundle {
            path,
            len,
            trailer,
            bytes,
            built_len,
            signature,
        })
    }

    /// Exactly the payload bytes.
    pub fn payload(&self) -> &[u8] {
        let start = self.trailer.payload_offset as usize;
        &self.bytes[start..start + self.trailer.payload_len as usize]
    }

    /// The built file: the whole file, or what precedes its signature
    /// block. What a bundle signature covers.
    pub fn built(&self) -> &[u8] {
        &self.bytes[..self.built_len]
    }

    /// The signature block's minisig text, when the file is signed.
    pub fn signature_text(&self) -> Option<&[u8]> {
        self.signature.clone().map(|r| &self.bytes[r])
    }

    /// The launcher bytes in front of the payload.
    pub fn head(&self) -> &[u8] {
        &self.bytes[..self.trailer.payload_offset as usize]
    }

    /// The two digests, computed side by side on two cores: the whole file
    /// (the pin) here, the payload (the embedded digest) on another thread.
    pub fn digests(&self) -> Digests {
        std::thread::scope(|scope| {
            let payload = scope.spawn(|| Sha256::digest(self.payload()).into());
            let mut hasher = Sha256::new();
            hasher.update(self.built());
            let built: Sha256Bytes = hasher.clone().finalize().into();
            hasher.update(&self.bytes[self.built_len..]);
            Digests {
                whole: hasher.finalize().into(),
                built,
                payload: payload.join().expect("hashing does not panic"),
            }
        })
    }

    /// Hashes the bytes once: the whole file for the pin, the payload range
    /// for the embedded digest. Fails (exit 3) if either disagrees.
    pub fn check_digests(&self, pin: Option<Pin>) -> anyhow::Result<Checked> {
        self.check(self.digests(), pin)
    }

    /// Judges digests computed earlier (or alongside an unpack).
    pub fn check(&self, digests: Digests, pin: Option<Pin>) -> anyhow::Result<Checked> {
        let payload = digests.payload;
        if payload != self.trailer.payload_sha256 {
            return Err(fail(
                ExitStatus::Integrity,
                format!(
                    "{}: the payload's sha256 is {}, but its trailer records {}: the file is corrupt; fetch or rebuild it",
                    self.path,
                    to_hex(&payload),
                    to_hex(&self.trailer.payload_sha256)
                ),
            ));
        }
        let whole_sha256 = digests.whole;
        // The pin names the file the build wrote; a signed copy still
        // carries those bytes in front of its signature block.
        let pinned_sha256 = match &pin {
            Some(pin) if pin.sha256 == digests.built => digests.built,
            _ => whole_sha256,
        };
        if let Some(pin) = &pin {
            if pin.sha256 != pinned_sha256 {
                return Err(fail(
                    ExitStatus::Integrity,
                    format!(
                        "{}: its sha256 is {}, but {} pins {}: this is not the artifact that was built",
                        self.path,
                        to_hex(&whole_sha256),
                        pin.describe(),
                        to_hex(&pin.sha256)
                    ),
                ));
            }
        }
        Ok(Checked {
            whole_sha256,
            pinned_sha256,
            pin,
        })
    }

    /// The pin to check: `--sha256` when given, else `<file>.sha256` beside
    /// the bundle, else a `SHA256SUMS` beside it that names the file.
    pub fn find_pin(&self, flag: Option<&str>) -> anyhow::Result<Option<Pin>> {
        if let Some(text) = flag {
            let sha256 = parse_hex(text).ok_or_else(|| {
                fail(
                    ExitStatus::Usage,
                    format!(
                        "--sha256 {text:?} is not a sha256: give the 64 hex digits from SHA256SUMS"
                    ),
                )
            })?;
            return Ok(Some(Pin {
                sha256,
                source: PinSource::Flag,
            }));
        }
        let Some(name) = self.path.file_name() else {
            return Ok(None);
        };
        let dir = self.path.parent().unwrap_or(Utf8Path::new("."));
        let beside = dir.join(format!("{name}.sha256"));
        if let Some(text) = read_optional(&beside)? {
            let sha256 = pin_from_sums(&text, name, true).ok_or_else(|| {
                fail(
                    ExitStatus::Usage,
                    format!("{beside} holds no sha256 for {name}: write the 64 hex digits from SHA256SUMS into it, or remove it"),
                )
            })?;
            return Ok(Some(Pin {
                sha256,
                source: PinSource::File(beside),
            }));
        }
        let sums = dir.join("SHA256SUMS");
        if let Some(text) = read_optional(&sums)? {
            if let Some(sha256) = pin_from_sums(&text, name, false) {
                return Ok(Some(Pin {
                    sha256,
                    source: PinSource::File(sums),
                }));
            }
        }
        Ok(None)
    }
}

fn ends_with_magic<F: Read + Seek>(file: &mut F, len: u64, magic: &[u8; 8]) -> io::Result<bool> {
    if len < magic.len() as u64 {
        return Ok(false);
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::Start(len - magic.len() as u64))?;
    file.read_exact(&mut tail)?;
    Ok(&tail == magic)
}

/// If a complete, self-consistent trailer sits shortly before the end, how
/// many bytes follow it. (The magic alone is no proof: the launcher's own
/// code holds it.)
fn find_magic_before_end<F: Read + Seek>(file: &mut F, len: u64) -> io::Result<Option<u64>> {
    let start = len.saturating_sub(APPENDED_SCAN_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    let trailer_len = TRAILER_LEN as usize;
    let found = (trailer_len..tail.len()).rev().find(|&end| {
        tail[end - MAGIC.len()..end] == MAGIC
            && Trailer::decode(tail[end - trailer_len..end].try_into().unwrap()).is_ok_and(|t| {
                t.payload_offset
                    .checked_add(t.payload_len)
                    .is_some_and(|e| e + TRAILER_LEN == start + end as u64)
            })
    });
    Ok(found.map(|end| len - (start + end as u64)))
}

fn read_optional(path: &Utf8Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
    }
}

/// Finds the sha256 for `name` in `sha256sum` output. With `bare_ok`, a
/// line holding only a digest also counts (an `archy-gate.sha256` file).
fn pin_from_sums(text: &str, name: &str, bare_ok: bool) -> Option<Sha256Bytes> {
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let digest = parse_hex(fields.next()?)?;
        match fields.next() {
            None if bare_ok => Some(digest),
            Some(file) if file.trim_start_matches('*') == name => Some(digest),
            Some(file)
                if bare_ok
                    && Utf8Path::new(file.trim_start_matches('*')).file_name() == Some(name) =>
            {
                Some(digest)
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines_are_matched_by_name() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let sums = format!("{a}  manifest.json\n{b}  archy-gate\n");
        assert_eq!(pin_from_sums(&sums, "archy-gate", false), Some([0xbb; 32]));
        assert_eq!(pin_from_sums(&sums, "other", false), None);
        assert_eq!(
            pin_from_sums(&format!("{a}\n"), "archy-gate", true),
            Some([0xaa; 32])
        );
        assert_eq!(pin_from_sums(&format!("{a}\n"), "archy-gate", false), None);
    }
}
