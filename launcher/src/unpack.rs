//! Reading a payload back: every entry checked against the manifest, and,
//! when a destination is given, written beneath it and nowhere else.
//!
//! `verify` walks the payload with no destination; `extract` and `run`
//! write into a fresh staging directory that the caller renames into place.
//! The rules: the first entry is `manifest.json`; then exactly the manifest's
//! entries, in its order; only files, directories and symlinks; each file's
//! size, mode and sha256 as declared; never more bytes than declared.

use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use flate2::bufread::GzDecoder;
use sha2::{Digest, Sha256};

use crate::bundle::{Bundle, Checked, Pin};
use crate::digest::HashingWriter;
use crate::exit::{fail, ExitStatus};
use crate::manifest::{check_path, Entry, Manifest, MANIFEST_MAX_BYTES, MANIFEST_NAME};
use crate::private_fs::PrivateDir;
use crate::tar_names::{self, Named};

/// What a payload held, once every entry was checked.
pub struct Unpacked {
    pub manifest: Manifest,
    pub files: usize,
    pub bytes: u64,
}

fn corrupt(bundle: &Bundle, message: impl std::fmt::Display) -> anyhow::Error {
    fail(ExitStatus::Integrity, format!("{}: {message}", bundle.path))
}

/// Checks every entry of the payload; with `dest`, writes them beneath it.
/// `dest` must be an empty directory the caller owns. The payload digest
/// must be checked too, first (`Bundle::check_digests`) or alongside
/// (`check_and_unpack`), so that a flipped bit is reported as such rather
/// than as whatever it broke.
pub fn unpack(bundle: &Bundle, dest: Option<&Path>) -> anyhow::Result<Unpacked> {
    let budget = Budget::new(3 * 512 + MANIFEST_MAX_BYTES);
    let decompressed = BudgetReader {
        inner: GzDecoder::new(bundle.payload()),
        budget: budget.clone(),
    };
    let mut archive = tar::Archive::new(decompressed);
    let mut entries = tar_names::entries(&mut archive)
        .map_err(|e| corrupt(bundle, format!("the payload is not a gzip'd tar: {e}")))?;

    let manifest = read_manifest(bundle, entries.next())?;
    budget.grant(expansion_budget(bundle, &manifest)?);

    let mut seen = std::collections::HashSet::new();
    let mut expected = manifest.files.iter();
    // One buffer for every file: 256 KiB reads and writes, not io::copy's 8 KiB.
    let mut buf = vec![0u8; 256 << 10];
    let umask = current_umask();
    let mut files = 0usize;
    let mut bytes = 0u64;
    for item in entries {
        let Named {
            mut entry,
            path,
            link: link_bytes,
        } = item.map_err(|e| corrupt(bundle, format!("the payload's tar is damaged: {e}")))?;
        let path = entry_path(bundle, &entry, &path)?;
        let kind = entry.header().entry_type();
        let Some(declared) = expected.next() else {
            return Err(corrupt(bundle, unlisted(&path, &seen, &manifest)));
        };
        if declared.path() != path {
            return Err(corrupt(bundle, unlisted(&path, &seen, &manifest)));
        }
        seen.insert(path.clone());
        let target = dest.map(|d| d.join(&path));
        match declared {
            Entry::Dir { .. } => {
                expect_kind(bundle, &path, kind, tar::EntryType::Directory, declared)?;
                if let Some(target) = &target {
                    fs::create_dir(target)
                        .with_context(|| format!("cannot create {}", target.display()))?;
                }
            }
            Entry::Symlink { target: link, .. } => {
                expect_kind(bundle, &path, kind, tar::EntryType::Symlink, declared)?;
                let found = link_bytes
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if &found != link {
                    return Err(corrupt(
                        bundle,
                        format!(
                            "symlink {path:?} points to {found:?}, but the manifest says {link:?}"
                        ),
                    ));
                }
                if let Some(target) = &target {
                    symlink(link, target)
                        .with_context(|| format!("cannot create symlink {}", target.display()))?;
                }
            }
            Entry::File {
                size, mode, sha256, ..
            } => {
                expect_kind(bundle, &path, kind, tar::EntryType::Regular, declared)?;
                let held = entry.header().size().unwrap_or(u64::MAX);
                if held != *size {
                    return Err(corrupt(
                        bundle,
                        format!("{path:?} holds {held} bytes, but the manifest declares {size}"),
                    ));
                }
                let header_mode = entry.header().mode().unwrap_or(0) & 0o7777;
                if header_mode != mode.bits() {
                    return Err(corrupt(
                        bundle,
                        format!(
                            "{path:?} has mode {header_mode:04o}, but the manifest declares {mode}"
                        ),
                    ));
                }
                let mut out: Box<dyn Write> = match &target {
                    // create_new (O_EXCL) never follows a symlink at the target.
                    Some(target) => Box::new(
                        OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(mode.bits())
                            .open(target)
                            .with_context(|| format!("cannot create {}", target.display()))?,
                    ),
                    None => Box::new(io::sink()),
                };
                let mut hasher = HashingWriter::new(&mut out);
                let copied = copy_with(&mut buf, &mut (&mut entry).take(*size), &mut hasher)
                    .map_err(|e| {
                        corrupt(
                            bundle,
                            format!("cannot read {path:?} from the payload: {e}"),
                        )
                    })?;
                let digest = hasher.hex();
                if copied != *size {
                    return Err(corrupt(
                        bundle,
                        format!("{path:?} ends after {copied} of its {size} bytes"),
                    ));
                }
                if &digest != sha256 {
                    return Err(corrupt(
                        bundle,
                        format!("{path:?} has sha256 {digest}, but the manifest declares {sha256}"),
                    ));
                }
                out.flush()?;
                if let Some(target) = target.as_ref().filter(|_| mode.bits() & umask != 0) {
                    // create_new applied the umask; the manifest's mode is the truth.
                    fs::set_permissions(target, fs::Permissions::from_mode(mode.bits()))?;
                }
                files += 1;
                bytes += size;
            }
        }
    }
    if let Some(missing) = expected.next() {
        return Err(corrupt(
            bundle,
            format!(
                "the manifest lists {:?}, but the payload ends before it",
                missing.path()
            ),
        ));
    }
    // Nothing may hide after the archive: only tar's zero padding, then the
    // gzip member's end (which checks its CRC), then the payload's end.
    let mut rest = archive.into_inner();
    let mut tail = [0u8; 8192];
    loop {
        let n = rest
            .read(&mut tail)
            .map_err(|e| corrupt(bundle, format!("the payload's gzip stream is damaged: {e}")))?;
        if n == 0 {
            break;
        }
        if tail[..n].iter().any(|&b| b != 0) {
            return Err(corrupt(
                bundle,
                "the payload holds data after the end of its archive",
            ));
        }
    }
    let mut raw = rest.inner.into_inner();
    if raw.read(&mut tail)? != 0 {
        return Err(corrupt(
            bundle,
            "the payload holds bytes after its gzip stream",
        ));
    }
    Ok(Unpacked {
        manifest,
        files,
        bytes,
    })
}

/// Checks the digests and every entry in one pass over the bytes: the
/// digests on other cores while this one inflates, checks and (with
/// `dest`) writes. A digest that disagrees is the error reported, whatever
/// the bad bytes broke in the unpacking.
pub fn check_and_unpack(
    bundle: &Bundle,
    pin: Option<Pin>,
    dest: Option<&Path>,
) -> anyhow::Result<(Checked, Unpacked)> {
    std::thread::scope(|scope| {
        let digests = scope.spawn(|| bundle.digests());
        let unpacked = unpack(bundle, dest);
        let digests = digests.join().expect("hashing does not panic");
        let checked = bundle.check(digests, pin)?;
        Ok((checked, unpacked?))
    })
}

/// The process's umask (reading it means setting it: set back at once).
fn current_umask() -> u32 {
    use rustix::fs::Mode;
    let mask = rustix::process::umask(Mode::from_raw_mode(0o022));
    rustix::process::umask(mask);
    mask.bits() as u32
}

/// `io::copy` with the caller's buffer.
fn copy_with(buf: &mut [u8], from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Unpacks into `target` (absent or empty) through a staging directory
/// beside it, renamed into place only when the digests and every entry
/// checked out. On any failure the staging directory is removed and
/// `target` is untouched.
pub fn unpack_to(
    bundle: &Bundle,
    pin: Option<Pin>,
    target: &Utf8Path,
) -> anyhow::Result<(Checked, Unpacked)> {
    let parent = match target.parent() {
        Some(p) if !p.as_str().is_empty() => p.to_owned(),
        _ => Utf8Path::new(".").to_owned(),
    };
    let staging = Staging::create(&parent, target.file_name().unwrap_or("bundle"))?;
    let done = check_and_unpack(bundle, pin, Some(&staging.path))?;
    staging.commit(target)?;
    Ok(done)
}

/// Reads just the manifest: the payload's first entry.
pub fn read_manifest_only(bundle: &Bundle) -> anyhow::Result<Manifest> {
    let decompressed = BudgetReader {
        inner: GzDecoder::new(bundle.payload()),
        budget: Budget::new(3 * 512 + MANIFEST_MAX_BYTES),
    };
    let mut archive = tar::Archive::new(decompressed);
    let mut entries = tar_names::entries(&mut archive)
        .map_err(|e| corrupt(bundle, format!("the payload is not a gzip'd tar: {e}")))?;
    read_manifest(bundle, entries.next())
}

fn read_manifest<R: Read>(
    bundle: &Bundle,
    first: Option<io::Result<Named<'_, R>>>,
) -> anyhow::Result<Manifest> {
    let Named {
        mut entry, path, ..
    } = first
        .ok_or_else(|| corrupt(bundle, "the payload is empty: it has no manifest"))?
        .map_err(|e| corrupt(bundle, format!("the payload is not a gzip'd tar: {e}")))?;
    let path = String::from_utf8_lossy(&path).into_owned();
    if path != MANIFEST_NAME || entry.header().entry_type() != tar::EntryType::Regular {
        return Err(corrupt(
            bundle,
            format!("the payload's first entry is {path:?}, not {MANIFEST_NAME}"),
        ));
    }
    let size = entry.header().size().unwrap_or(u64::MAX);
    if size > MANIFEST_MAX_BYTES {
        return Err(corrupt(
            bundle,
            format!("its manifest claims {size} bytes, more than the {MANIFEST_MAX_BYTES} allowed"),
        ));
    }
    let mut text = Vec::with_capacity(size as usize);
    (&mut entry)
        .take(size)
        .read_to_end(&mut text)
        .map_err(|e| corrupt(bundle, format!("cannot read its manifest: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| corrupt(bundle, format!("its manifest is not valid: {e}")))?;
    manifest
        .validate()
        .map_err(|e| corrupt(bundle, format!("its manifest is not valid: {e}")))?;
    Ok(manifest)
}

fn entry_path<R: Read>(
    bundle: &Bundle,
    entry: &tar::Entry<'_, R>,
    raw: &[u8],
) -> anyhow::Result<String> {
    let text = std::str::from_utf8(raw).map_err(|_| {
        corrupt(
            bundle,
            format!(
                "entry {:?} has a non-UTF-8 path",
                String::from_utf8_lossy(raw)
            ),
        )
    })?;
    // Directories may carry tar's trailing slash.
    let path = match entry.header().entry_type() {
        tar::EntryType::Directory => text.strip_suffix('/').unwrap_or(text),
        _ => text,
    };
    check_path(path).map_err(|e| corrupt(bundle, format!("refusing entry: {e}")))?;
    Ok(path.to_string())
}

fn expect_kind(
    bundle: &Bundle,
    path: &str,
    found: tar::EntryType,
    want: tar::EntryType,
    declared: &Entry,
) -> anyhow::Result<()> {
    if found == want {
        return Ok(());
    }
    let what = match found {
        tar::EntryType::Link => "a hard link (bundles never hold hard links)".to_string(),
        tar::EntryType::Char => "a character device (bundles never hold devices)".to_string(),
        tar::EntryType::Block => "a block device (bundles never hold devices)".to_string(),
        tar::EntryType::Fifo => "a FIFO (bundles never hold special files)".to_string(),
        tar::EntryType::GNUSparse => {
            "a sparse file (bundles never hold sparse entries)".to_string()
        }
        tar::EntryType::Regular => "a file".to_string(),
        tar::EntryType::Directory => "a directory".to_string(),
        tar::EntryType::Symlink => "a symlink".to_string(),
        other => format!("an entry of tar type {:?}", other.as_byte() as char),
    };
    Err(corrupt(
        bundle,
        format!(
            "{path:?} is {what}, but the manifest declares a {}",
            declared.kind()
        ),
    ))
}

fn unlisted(path: &str, seen: &std::collections::HashSet<String>, manifest: &Manifest) -> String {
    if path == MANIFEST_NAME || seen.contains(path) {
        format!("the payload holds {path:?} twice (a duplicate entry)")
    } else if manifest.files.iter().any(|e| e.path() == path) {
        format!("the payload holds {path:?} out of the manifest's order")
    } else {
        format!("the payload holds {path:?}, which the manifest does not list")
    }
}

/// How many more decompressed bytes the payload may yield: what its
/// manifest declares, as long as that is a plausible expansion of the
/// compressed bytes. Without the ratio a 10 MB bundle of zeros declaring
/// 4 GiB would keep `verify` inflating and hashing for many seconds.
fn expansion_budget(bundle: &Bundle, manifest: &Manifest) -> anyhow::Result<u64> {
    let bound = tar_bytes_bound(manifest);
    let allowed = bundle
        .trailer
        .payload_len
        .saturating_mul(EXPANSION_MAX)
        .max(EXPANSION_FLOOR);
    if bound > allowed {
        return Err(corrupt(
            bundle,
            format!(
                "its manifest declares {bound} bytes of tar from {} compressed bytes, more than \
                 {EXPANSION_MAX} times as many: a decompression bomb?",
                bundle.trailer.payload_len
            ),
        ));
    }
    Ok(bound)
}

/// A gate bundle (static binaries, scripts) compresses 3 to 5 times; gzip
/// at best about 1000 times. Only a bomb lies between.
const EXPANSION_MAX: u64 = 32;
/// Below this many decompressed bytes the ratio does not matter: reading
/// them is quick whatever they hold.
const EXPANSION_FLOOR: u64 = 64 << 20;

/// An upper bound of the tar stream's size for this manifest: headers, long
/// names, data padded to blocks, the end marker and a record's padding.
fn tar_bytes_bound(manifest: &Manifest) -> u64 {
    let blocks = |n: u64| n.div_ceil(512) * 512;
    manifest
        .files
        .iter()
        .map(|e| {
            let name = e.path().len() as u64
                + match e {
                    Entry::Symlink { target, .. } => target.len() as u64,
                    _ => 0,
                };
            let data = match e {
                Entry::File { size, .. } => *size,
                _ => 0,
            };
            3 * 512 + 2 * blocks(name + 1) + blocks(data)
        })
        .sum::<u64>()
        + 20 * 512
}

/// Shared count of decompressed bytes still allowed: a gzip bomb stops here.
#[derive(Clone)]
struct Budget(Rc<Cell<u64>>);

impl Budget {
    fn new(bytes: u64) -> Budget {
        Budget(Rc::new(Cell::new(bytes)))
    }

    fn grant(&self, bytes: u64) {
        self.0.set(self.0.get().saturating_add(bytes));
    }
}

struct BudgetReader<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let left = self.budget.0.get();
        if n as u64 > left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "it unpacks to more bytes than its manifest declares (a size bomb?)",
            ));
        }
        self.budget.0.set(left - n as u64);
        Ok(n)
    }
}

/// A staging directory that disappears unless committed, together with any
/// parent directories created for it.
struct Staging {
    path: PathBuf,
    created_parents: Vec<PathBuf>,
    committed: bool,
}

impl Staging {
    fn create(parent: &Utf8Path, name: &str) -> anyhow::Result<Staging> {
        let mut created_parents = Vec::new();
        let mut missing = parent.as_std_path();
        while !missing.as_os_str().is_empty() && !missing.exists() {
            created_parents.push(missing.to_path_buf());
            missing = missing.parent().unwrap_or(Path::new(""));
        }
        fs::create_dir_all(parent).with_context(|| format!("cannot create {parent}"))?;
        let path = parent
            .join(format!(".{name}.partial-{}", std::process::id()))
            .into_std_path_buf();
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        let staging = Staging {
            path,
            created_parents,
            committed: false,
        };
        fs::create_dir(&staging.path)
            .with_context(|| format!("cannot create {}", staging.path.display()))?;
        Ok(staging)
    }

    fn commit(mut self, target: &Utf8Path) -> anyhow::Result<()> {
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o755))?;
        fs::rename(&self.path, target)
            .with_context(|| format!("cannot move the unpacked bundle into {target}"))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
            // Deepest first; remove_dir leaves any that something else filled.
            for dir in &self.created_parents {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

/// How `ensure` came by an unpacked bundle.
pub enum Prepared {
    /// A complete earlier unpack, re-checked file by file.
    Reused,
    /// A complete earlier unpack whose stat still equals its seal.
    Sealed,
    Unpacked,
    /// An earlier unpack failed its re-check (the reason) and was replaced.
    Rebuilt(String),
}

/// Makes `bdir/name` an unpacked copy of `bundle`: reuses a complete one
/// that is ours alone after re-checking every entry against the manifest,
/// replaces anything else. The caller holds the node lock, so whatever
/// partial or stale dirs lie in `bdir` belong to runs that died: they go.
pub fn ensure(
    bundle: &Bundle,
    manifest: Manifest,
    bdir: &PrivateDir,
    name: &str,
) -> anyhow::Result<(Manifest, Prepared)> {
    sweep_leftovers(bdir);
    let dir = bdir.path().join(name);
    let mut why = None;
    let seal = format!(".{name}.seal");
    match bdir.open_dir(name) {
        // Untouched since it was checked and sealed: no need to hash again.
        Ok(_) if seal_holds(bdir, &seal, &dir) => return Ok((manifest, Prepared::Sealed)),
        Ok(_) => match check_tree(&dir, &manifest) {
            Ok(()) => {
                write_seal(bdir, &seal, &dir);
                return Ok((manifest, Prepared::Reused));
            }
            Err(problem) => why = Some(problem),
        },
        Err(e) if e.missing => {}
        Err(e) => why = Some(e.why),
    }
    let _ = bdir.remove_all(&seal);
    if why.is_some() {
        bdir.remove_all(name)
            .with_context(|| format!("cannot remove {dir}"))?;
    }
    let staging = format!(".{name}.partial-{}", std::process::id());
    bdir.remove_all(&staging)?;
    let Some(_) = bdir.create_dir(&staging)? else {
        return Err(fail(
            ExitStatus::Environment,
            format!("cannot make {}/{staging}", bdir.path()),
        ));
    };
    let staged = bdir.path().join(&staging);
    let unpacked = unpack(bundle, Some(staged.as_std_path())).and_then(|unpacked| {
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o755))?;
        bdir.rename(&staging, name)
            .with_context(|| format!("cannot move the unpacked bundle into {dir}"))?;
        Ok(unpacked)
    });
    match unpacked {
        Ok(unpacked) => {
            write_seal(bdir, &seal, &dir);
            Ok((
                unpacked.manifest,
                why.map_or(Prepared::Unpacked, Prepared::Rebuilt),
            ))
        }
        Err(e) => {
            let _ = bdir.remove_all(&staging);
            Err(e)
        }
    }
}

/// The seal of an unpacked tree: every entry's path, inode, owner, mode,
/// size, mtime and ctime, taken right after the tree was unpacked or fully
/// re-checked. The tree lies in root's private dir, so only root can change
/// it, and any change (a write, a chmod, a replaced file) moves a ctime or
/// an inode: a tree whose stat still equals its seal is the tree that was
/// checked, and a warm run need not hash it again. Anything else gets the
/// full re-check.
fn seal_of(dir: &Utf8Path) -> Option<String> {
    let mut lines = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::from("."))];
    while let Some((abs, rel)) = stack.pop() {
        let meta = fs::symlink_metadata(&abs).ok()?;
        lines.push(format!(
            "{rel}\t{}\t{}\t{:o}\t{}\t{}.{}\t{}.{}",
            meta.ino(),
            meta.uid(),
            meta.mode(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ));
        if meta.is_dir() {
            for item in fs::read_dir(&abs).ok()? {
                let name = item.ok()?.file_name().into_string().ok()?;
                stack.push((abs.join(&name), format!("{rel}/{name}")));
            }
        }
    }
    lines.sort();
    Some(lines.join("\n") + "\n")
}

fn write_seal(bdir: &PrivateDir, seal: &str, dir: &Utf8Path) {
    if let Some(text) = seal_of(dir) {
        let _ = bdir.write_atomic(seal, text.as_bytes(), 0o600);
    }
}

fn seal_holds(bdir: &PrivateDir, seal: &str, dir: &Utf8Path) -> bool {
    let Ok(mut file) = bdir.open_file(seal) else {
        return false;
    };
    let mut sealed = String::new();
    file.read_to_string(&mut sealed).is_ok() && seal_of(dir).is_some_and(|now| now == sealed)
}

/// Removes what runs killed mid-unpack (or mid-removal) left behind.
fn sweep_leftovers(bdir: &PrivateDir) {
    for name in bdir.list().unwrap_or_default() {
        if name.starts_with('.') && (name.contains(".partial-") || name.contains(".stale-")) {
            let _ = bdir.remove_all(&name);
        }
    }
}

/// Compares an unpacked tree with its manifest: every entry there with its
/// kind, size, mode, sha256 or target, and nothing else; every entry ours
/// and writable by no one else, or another uid could change it after the
/// check.
pub fn check_tree(dir: &Utf8Path, manifest: &Manifest) -> Result<(), String> {
    let me = crate::private_fs::my_uid();
    let mut listed = std::collections::HashSet::new();
    let mut to_hash = Vec::new();
    for entry in &manifest.files {
        let path = entry.path();
        listed.insert(path.to_string());
        let on_disk = dir.join(path);
        let meta = fs::symlink_metadata(&on_disk).map_err(|_| format!("{path} is missing"))?;
        if meta.uid() != me {
            return Err(format!(
                "{path} is owned by uid {}, not by you (uid {me})",
                meta.uid()
            ));
        }
        if !meta.file_type().is_symlink() && meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{path} is writable by others (mode {:04o})",
                meta.mode() & 0o7777
            ));
        }
        match entry {
            Entry::Dir { .. } if !meta.is_dir() => {
                return Err(format!("{path} is not a directory"))
            }
            Entry::Symlink { target, .. } => {
                let found =
                    fs::read_link(&on_disk).map_err(|_| format!("{path} is not a symlink"))?;
                if found.as_os_str() != target.as_str() {
                    return Err(format!("{path} points elsewhere"));
                }
            }
            Entry::File {
                size, mode, sha256, ..
            } => {
                if !meta.is_file() {
                    return Err(format!("{path} is not a file"));
                }
                if meta.len() != *size {
                    return Err(format!("{path} changed size"));
                }
                if meta.permissions().mode() & 0o7777 != mode.bits() {
                    return Err(format!("{path} changed mode"));
                }
                to_hash.push((path, on_disk, sha256.as_str(), *size));
            }
            Entry::Dir { .. } => {}
        }
    }
    check_contents(to_hash)?;
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((abs, rel)) = stack.pop() {
        let items = fs::read_dir(&abs).map_err(|e| format!("cannot list {abs}: {e}"))?;
        for item in items.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if !listed.contains(&path) {
                return Err(format!("{path} is not part of the bundle"));
            }
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((abs.join(item.file_name().to_string_lossy().as_ref()), path));
            }
        }
    }
    Ok(())
}

/// Hashes files against their declared sha256, on two cores: a warm `run`
/// spends most of its time here.
fn check_contents(mut files: Vec<(&str, Utf8PathBuf, &str, u64)>) -> Result<(), String> {
    // Largest first, dealt out in turn: the two halves weigh about the same.
    files.sort_by_key(|f| std::cmp::Reverse(f.3));
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (i, file) in files.into_iter().enumerate() {
        if i % 2 == 0 {
            left.push(file);
        } else {
            right.push(file);
        }
    }
    let check = |files: Vec<(&str, Utf8PathBuf, &str, u64)>| -> Result<(), String> {
        for (path, on_disk, sha256, _) in files {
            let bytes = fs::read(&on_disk).map_err(|e| format!("{path}: {e}"))?;
            if crate::digest::to_hex(&Sha256::digest(&bytes)) != sha256 {
                return Err(format!("{path} changed content"));
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| check(right));
        let mine = check(left);
        let theirs = other.join().expect("hashing does not panic");
        mine.and(theirs)
    })
}
