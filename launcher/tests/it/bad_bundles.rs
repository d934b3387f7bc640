//! Bad bundles: a corpus of damaged, forged and hostile single files. Each is
//! refused by both `verify` and `extract` with exit 3 and a message that
//! names the damage, and nothing is written anywhere: not the target, not a
//! staging leftover, not an escape beside or above it. Black-box: the real
//! binary against real files.
//!
//! Two kinds of damage. Byte-level: a good bundle (packed by the launcher)
//! truncated, flipped, relabelled or extended. Crafted: a payload written
//! here, tar header by tar header, then sealed with a *correct* embedded
//! digest, so that what rejects it is the content check and not the digest.
//! A crafted control bundle, written the same way, must pass: it proves the
//! crafting is faithful and that each rejection is the defect's doing.

use crate::support;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use support::{launcher, sha256_hex, tree, Run, Stage};

const TRAILER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"ARCHYGAT";
const INTEGRITY: i32 = 3;
const MTIME: u64 = 315_532_800;
const SCRIPT: &[u8] = b"#!/bin/sh\necho gate\n";
const TOOL: &[u8] = b"#!/bin/sh\necho tool\n";
const NOTES: &[u8] = b"notes\n";

// ---------------------------------------------------------------------------
// The good bundle everything is derived from.

struct Good {
    bytes: Vec<u8>,
    payload_offset: usize,
}

impl Good {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn head(&self) -> &[u8] {
        &self.bytes[..self.payload_offset]
    }

    fn trailer_start(&self) -> usize {
        self.len() - TRAILER_LEN
    }

    /// A copy with `f` applied.
    fn with(&self, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        f(&mut bytes);
        bytes
    }

    fn truncated(&self, len: usize) -> Vec<u8> {
        self.bytes[..len].to_vec()
    }

    fn flipped(&self, at: usize) -> Vec<u8> {
        self.with(|b| b[at] ^= 0x10)
    }

    /// A copy whose trailer field at `at` (a u64) holds `value`.
    fn trailer_u64(&self, at: usize, value: u64) -> Vec<u8> {
        let at = self.trailer_start() + at;
        self.with(|b| b[at..at + 8].copy_from_slice(&value.to_le_bytes()))
    }
}

/// A bundle packed by the launcher itself: a directory, a regular file, an
/// executable and a relative symlink inside the tree.
fn good() -> &'static Good {
    static GOOD: OnceLock<Good> = OnceLock::new();
    GOOD.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let stage = Stage::minimal(tmp.path().join("stage"))
            .file("bin/tool", TOOL, 0o755)
            .symlink("bin/alias", "tool")
            .file("lib/data.txt", b"data\n", 0o644)
            .dir("lib/empty");
        let bytes = fs::read(stage.pack(&tmp.path().join("out"))).unwrap();
        let t = bytes.len() - TRAILER_LEN;
        assert_eq!(
            &bytes[t + 56..],
            MAGIC,
            "the packed bundle ends in the magic"
        );
        let offset = u64::from_le_bytes(bytes[t + 8..t + 16].try_into().unwrap()) as usize;
        let length = u64::from_le_bytes(bytes[t + 16..t + 24].try_into().unwrap()) as usize;
        assert_eq!(
            offset + length,
            t,
            "the trailer places the payload right before it"
        );
        Good {
            bytes,
            payload_offset: offset,
        }
    })
}

/// `[head][payload][trailer]` with a correct trailer and embedded digest.
fn seal(head: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + payload.len() + TRAILER_LEN);
    out.extend_from_slice(head);
    out.extend_from_slice(payload);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(TRAILER_LEN as u32).to_le_bytes());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(MAGIC);
    out
}

fn sealed(payload: &[u8]) -> Vec<u8> {
    seal(good().head(), payload)
}

// ---------------------------------------------------------------------------
// Writing payloads by hand: raw tar headers, so that names tar's own builder
// refuses (`..`, absolute) can be written, gzip'd as `pack` does.

struct Tar {
    gz: GzEncoder<Vec<u8>>,
}

fn header(kind: tar::EntryType, name: &[u8], mode: u32, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(size);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name);
    old.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h
}

impl Tar {
    fn new() -> Tar {
        Tar {
            gz: GzEncoder::new(Vec::new(), Compression::fast()),
        }
    }

    /// A header, then `data` padded to a whole block.
    fn raw(mut self, h: &tar::Header, data: &[u8]) -> Tar {
        self.gz.write_all(h.as_bytes()).unwrap();
        self.gz.write_all(data).unwrap();
        self.pad(data.len() as u64)
    }

    fn pad(mut self, written: u64) -> Tar {
        let rest = (512 - written % 512) % 512;
        self.gz.write_all(&vec![0; rest as usize]).unwrap();
        self
    }

    /// A header, then `n` zero bytes (a bomb that compresses to little).
    fn zeros(mut self, h: &tar::Header, n: u64) -> Tar {
        self.gz.write_all(h.as_bytes()).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            self.gz.write_all(&chunk[..k]).unwrap();
            left -= k as u64;
        }
        self.pad(n)
    }

    fn entry(self, kind: tar::EntryType, name: &str, mode: u32, data: &[u8]) -> Tar {
        let h = header(kind, name.as_bytes(), mode, data.len() as u64, b"");
        self.raw(&h, data)
    }

    fn manifest(self, files: &[Value]) -> Tar {
        self.manifest_bytes(&manifest_json(files))
    }

    fn manifest_bytes(self, text: &[u8]) -> Tar {
        self.entry(tar::EntryType::Regular, "manifest.json", 0o644, text)
    }

    fn item(self, item: &Item) -> Tar {
        match item {
            Item::Dir(path) => self.entry(tar::EntryType::Directory, path, 0o755, b""),
            Item::File(path, mode, data) => self.entry(tar::EntryType::Regular, path, *mode, data),
            Item::Symlink(path, target) => {
                let h = header(
                    tar::EntryType::Symlink,
                    path.as_bytes(),
                    0o777,
                    0,
                    target.as_bytes(),
                );
                self.raw(&h, b"")
            }
        }
    }

    fn items(self, items: &[Item]) -> Tar {
        items.iter().fold(self, Tar::item)
    }

    /// An item as `pack` writes one whose path or target is longer than a
    /// header holds: a GNU long-name ('L') or long-link ('K') record first.
    fn long_item(self, item: &Item) -> Tar {
        let (kind, path, link, mode, data): (_, &str, &str, u32, &[u8]) = match item {
            Item::Dir(path) => (tar::EntryType::Directory, path, "", 0o755, b""),
            Item::File(path, mode, data) => (tar::EntryType::Regular, path, "", *mode, data),
            Item::Symlink(path, target) => (tar::EntryType::Symlink, path, target, 0o777, b""),
        };
        let mut tar = self;
        if path.len() > 100 {
            tar = tar.long_name(tar::EntryType::GNULongName, path.as_bytes());
        }
        if link.len() > 100 {
            tar = tar.long_name(tar::EntryType::GNULongLink, link.as_bytes());
        }
        let cut = |s: &str| s.as_bytes()[..s.len().min(100)].to_vec();
        let h = header(kind, &cut(path), mode, data.len() as u64, &cut(link));
        tar.raw(&h, data)
    }

    /// A GNU long-name entry naming the next header.
    fn long_name(self, kind: tar::EntryType, name: &[u8]) -> Tar {
        let mut data = name.to_vec();
        data.push(0);
        let h = header(kind, b"././@LongLink", 0o644, data.len() as u64, b"");
        self.raw(&h, &data)
    }

    /// A pax extended header for the next entry.
    fn pax(self, key: &str, value: &[u8]) -> Tar {
        let body_len = 1 + key.len() + 1 + value.len() + 1;
        let mut n = body_len + 1;
        while n.to_string().len() + body_len != n {
            n = n.to_string().len() + body_len;
        }
        let mut data = format!("{n} {key}=").into_bytes();
        data.extend_from_slice(value);
        data.push(b'\n');
        let h = header(
            tar::EntryType::XHeader,
            b"PaxHeaders/x",
            0o644,
            data.len() as u64,
            b"",
        );
        self.raw(&h, &data)
    }

    /// The gzip stream's end, without the tar's end-of-archive marker.
    fn unfinished(self) -> Vec<u8> {
        self.gz.finish().unwrap()
    }

    /// The end-of-archive marker, then the gzip stream's end.
    fn finish(mut self) -> Vec<u8> {
        self.gz.write_all(&[0; 1024]).unwrap();
        self.gz.finish().unwrap()
    }
}

#[derive(Clone)]
enum Item {
    Dir(String),
    File(String, u32, Vec<u8>),
    Symlink(String, String),
}

fn dir(path: &str) -> Item {
    Item::Dir(path.into())
}

fn file(path: &str, mode: u32, data: &[u8]) -> Item {
    Item::File(path.into(), mode, data.to_vec())
}

fn symlink(path: &str, target: &str) -> Item {
    Item::Symlink(path.into(), target.into())
}

/// The crafted bundle's tree, in the manifest's order.
fn base() -> Vec<Item> {
    vec![
        dir("bin"),
        symlink("bin/alias", "tool"),
        file("bin/tool", 0o755, TOOL),
        dir("lifecycle"),
        file("lifecycle/run-gate.sh", 0o755, SCRIPT),
        file("notes.txt", 0o644, NOTES),
    ]
}

fn listed(item: &Item) -> Value {
    match item {
        Item::Dir(path) => json!({"type": "dir", "path": path}),
        Item::File(path, mode, data) => json!({
            "type": "file",
            "path": path,
            "size": data.len(),
            "mode": format!("{:04o}", mode & 0o7777),
            "sha256": sha256_hex(data),
        }),
        Item::Symlink(path, target) => json!({"type": "symlink", "path": path, "target": target}),
    }
}

fn listing(items: &[Item]) -> Vec<Value> {
    items.iter().map(listed).collect()
}

fn manifest_value(files: &[Value]) -> Value {
    json!({
        "format": 1,
        "name": "archy-gate",
        "version": "0.0.0-bad-bundles",
        "entry": "lifecycle/run-gate.sh",
        "source_date_epoch": MTIME,
        "tools": [{"name": "tool", "version": "unknown", "path": "bin/tool"}],
        "sources": {"suite": "sha256:0000"},
        "files": files,
    })
}

fn manifest_json(files: &[Value]) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(&manifest_value(files)).unwrap();
    text.push(b'\n');
    text
}

/// A payload whose manifest lists `files` and whose tar holds `items`.
fn payload(files: &[Value], items: &[Item]) -> Vec<u8> {
    Tar::new().manifest(files).items(items).finish()
}

/// A sealed bundle whose manifest and tar agree on `items`.
fn consistent(items: &[Item]) -> Vec<u8> {
    sealed(&payload(&listing(items), items))
}

/// `base()` with the item at `path` replaced (or removed with `None`).
fn base_with(path: &str, replacement: Option<Item>) -> Vec<Item> {
    let mut items = base();
    let at = items.iter().position(|i| item_path(i) == path).unwrap();
    match replacement {
        Some(item) => items[at] = item,
        None => {
            items.remove(at);
        }
    }
    items
}

fn item_path(item: &Item) -> &str {
    match item {
        Item::Dir(p) | Item::File(p, ..) | Item::Symlink(p, _) => p,
    }
}

/// The raw tar header of a special entry at `name`.
fn special(kind: tar::EntryType, name: &str, link: &str) -> tar::Header {
    header(kind, name.as_bytes(), 0o644, 0, link.as_bytes())
}

// ---------------------------------------------------------------------------
// Running the launcher on a case and checking it left no trace.

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Words the error must contain (case-insensitive): what is wrong.
    expect: &'static str,
    /// A pin (`archy-gate.sha256`) to place beside the file.
    pin: Option<String>,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name: name.into(),
        bytes,
        expect,
        pin: None,
    }
}

/// A case checked against a pin beside the file: the good bundle's sha256.
fn pinned(name: &str, bytes: Vec<u8>, expect: &'static str) -> Case {
    Case {
        pin: Some(sha256_hex(&good().bytes)),
        ..case(name, bytes, expect)
    }
}

/// Every launcher run here gets this much address space and no more:
/// whatever a bundle says, verify and extract stay within it.
const MEMORY_LIMIT: u64 = 100 << 20;

/// And this much CPU time, every thread counted (RLIMIT_CPU: the kernel
/// kills a run that spends more). A bound on work, not a speed target:
/// the biggest honest case here needs about a second of a debug build's
/// time, and a bundle that made the work grow faster than its size (a
/// quadratic check, an inflate with no cap) would need minutes. CPU time,
/// unlike the wall clock, does not grow with the machine's load.
const CPU_SECONDS: u64 = 8;

fn run_in<I, S>(cwd: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(launcher());
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH");
    support::limit(&mut cmd, MEMORY_LIMIT, CPU_SECONDS);
    Run::of(cmd.output().expect("launcher runs"))
}

/// Runs `verify` and `extract` on the case in a fresh sandbox holding only
/// the bad file and an empty parent dir; returns what `verify` said and
/// what went wrong.
fn check(case: &Case, outside: &Path) -> (String, Vec<String>) {
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path();
    let bundle = root.join("archy-gate");
    fs::write(&bundle, &case.bytes).unwrap();
    if let Some(pin) = &case.pin {
        fs::write(root.join("archy-gate.sha256"), format!("{pin}\n")).unwrap();
    }
    let parent = root.join("parent");
    fs::create_dir(&parent).unwrap();
    let target = parent.join("target");
    // `extract` also accepts an existing empty dir: it must stay empty.
    let empty = parent.join("empty");
    fs::create_dir(&empty).unwrap();
    let before = tree(root);

    let mut problems = Vec::new();
    let mut message = String::new();
    let runs: [(&str, Vec<&OsStr>); 3] = [
        ("verify", vec!["verify".as_ref(), bundle.as_os_str()]),
        (
            "extract",
            vec![
                "extract".as_ref(),
                bundle.as_os_str(),
                "--to".as_ref(),
                target.as_os_str(),
            ],
        ),
        (
            "extract into an empty dir",
            vec![
                "extract".as_ref(),
                bundle.as_os_str(),
                "--to".as_ref(),
                empty.as_os_str(),
            ],
        ),
    ];
    for (what, args) in runs {
        let run = run_in(root, args);
        let said = run.stderr.trim().replace('\n', " | ");
        if message.is_empty() {
            message = said.replace(&root.display().to_string(), "SANDBOX");
        }
        if run.code != INTEGRITY {
            problems.push(format!(
                "{what}: exit {}, want {INTEGRITY}: {said}",
                run.code
            ));
        } else if !run
            .stderr
            .to_lowercase()
            .contains(&case.expect.to_lowercase())
        {
            problems.push(format!(
                "{what}: the message does not say {:?}: {said}",
                case.expect
            ));
        }
        let after = tree(root);
        if after != before {
            problems.push(format!(
                "{what} changed the sandbox: {before:?} became {after:?}"
            ));
        }
        if fs::read(&bundle).unwrap() != case.bytes {
            problems.push(format!("{what} changed the bundle file"));
        }
    }
    // The launcher's cwd, the sandbox's parent-dir escapes and the
    // absolute-path targets: all covered by the two trees.
    let escaped = tree(outside);
    if !escaped.is_empty() {
        problems.push(format!("something was written outside: {escaped:?}"));
    }
    (message, problems)
}

/// Runs every case (in parallel), prints a table, and fails listing each
/// case that was not refused as it should be.
fn refuse_all(cases: &[Case]) {
    let outside = outside();
    let results: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|c| s.spawn(move || check(c, outside)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut failed = Vec::new();
    for (case, (message, problems)) in cases.iter().zip(&results) {
        let verdict = if problems.is_empty() {
            "refused"
        } else {
            "WRONG"
        };
        println!("{verdict:8} {}\n         {message}", case.name);
        if !problems.is_empty() {
            failed.push(format!("{}:\n    {}", case.name, problems.join("\n    ")));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} bad bundles were not refused with exit 3 and a clear message, or left traces:\n  {}",
        failed.len(),
        cases.len(),
        failed.join("\n  ")
    );
}

/// An empty directory outside every sandbox: absolute-path entries aim here.
fn outside() -> &'static Path {
    static OUTSIDE: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUTSIDE.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

// ---------------------------------------------------------------------------
// The corpus.

/// Damage to the bytes of a good bundle: truncation, flipped bits, a trailer
/// that lies, bytes appended, a foreign magic or version.
fn byte_level() -> Vec<Case> {
    let g = good();
    let (off, len, t) = (g.payload_offset, g.len(), g.trailer_start());
    // The payload ends where the trailer starts.
    let end = t;
    let payload_len = (end - off) as u64;
    let mid = off + (end - off) / 2;
    vec![
        case("truncated to nothing", g.truncated(0), "truncated"),
        case("truncated inside the ELF header (40 bytes)", g.truncated(40), "truncated"),
        case("truncated inside the launcher (4 KiB)", g.truncated(4096), "truncated"),
        case("truncated late inside the launcher", g.truncated(off - 100), "truncated"),
        case("truncated where the payload starts", g.truncated(off), "truncated"),
        case("truncated in the middle of the payload", g.truncated(mid), "truncated"),
        case("truncated before the trailer", g.truncated(t), "truncated"),
        case("truncated inside the trailer's digest", g.truncated(t + 40), "truncated"),
        case("truncated by one byte (inside the magic)", g.truncated(len - 1), "truncated"),
        pinned(
            "bit flip in the launcher, caught by the pin beside the file",
            g.flipped(off / 2),
            "not the artifact",
        ),
        pinned(
            "a byte appended after the trailer, with the pin beside the file",
            g.with(|b| b.push(0)),
            "appended",
        ),
        case("bit flip in the payload's first byte", g.flipped(off), "sha256"),
        case("bit flip in the middle of the payload", g.flipped(mid), "sha256"),
        case("bit flip in the payload's last byte", g.flipped(end - 1), "sha256"),
        case("bit flip in the trailer's version", g.flipped(t), "format"),
        case("bit flip in the trailer's length field", g.flipped(t + 4), "corrupt trailer"),
        case("bit flip in the trailer's payload offset", g.flipped(t + 8), "trailer"),
        case("bit flip in the trailer's payload length", g.flipped(t + 16), "trailer"),
        case("bit flip in the trailer's payload digest", g.flipped(t + 24), "sha256"),
        case("bit flip in the trailer's magic", g.flipped(len - 1), "not a bundle"),
        case(
            "wrong magic",
            g.with(|b| b[len - 8..].copy_from_slice(b"NOTAGATE")),
            "not a bundle",
        ),
        case(
            "trailer format version 2",
            g.with(|b| b[t..t + 4].copy_from_slice(&2u32.to_le_bytes())),
            "format 2",
        ),
        case(
            "trailer claims 1000 more payload bytes than there are",
            g.trailer_u64(16, payload_len + 1000),
            "trailer",
        ),
        case(
            "trailer claims one payload byte fewer",
            g.trailer_u64(16, payload_len - 1),
            "trailer",
        ),
        case(
            "trailer claims an overflowing payload length",
            g.trailer_u64(16, u64::MAX),
            "trailer",
        ),
        case(
            "trailer places the payload past the end of the file",
            g.trailer_u64(8, len as u64 * 2),
            "trailer",
        ),
        case(
            "trailer shifts the payload one byte early (offset and length still add up)",
            g.with(|b| {
                b[t + 8..t + 16].copy_from_slice(&(off as u64 - 1).to_le_bytes());
                b[t + 16..t + 24].copy_from_slice(&(payload_len + 1).to_le_bytes());
            }),
            "sha256",
        ),
        case(
            "one byte appended after the trailer",
            g.with(|b| b.push(b'\n')),
            "appended",
        ),
        case(
            "4 KiB appended after the trailer",
            g.with(|b| b.extend_from_slice(&[0xab; 4096])),
            "appended",
        ),
        case(
            "a second copy of the trailer appended",
            g.with(|b| {
                let trailer = b[t..].to_vec();
                b.extend_from_slice(&trailer);
            }),
            "trailer",
        ),
        case(
            "the launcher alone, without payload or trailer",
            g.head().to_vec(),
            "not a bundle",
        ),
        case(
            "a text file",
            b"#!/bin/sh\necho this is not a bundle at all, but it is long enough to hold a trailer\n"
                .to_vec(),
            "not a bundle",
        ),
    ]
}

/// Payloads written by hand and sealed with a correct digest: what rejects
/// them is the check of their contents against their manifest.
fn crafted() -> Vec<Case> {
    let files = listing(&base());
    let manifest_text = manifest_json(&files);
    let abs = outside().join("abs-escape");
    let abs = abs.to_str().unwrap();
    let bomb = 200u64 << 20;
    vec![
        // The payload's framing.
        case(
            "payload is a plain tar, not gzip'd",
            sealed(&{
                let mut raw = tar::Builder::new(Vec::new());
                let mut h = tar::Header::new_gnu();
                h.set_size(manifest_text.len() as u64);
                h.set_mode(0o644);
                raw.append_data(&mut h, "manifest.json", manifest_text.as_slice())
                    .unwrap();
                raw.into_inner().unwrap()
            }),
            "gzip",
        ),
        case(
            "payload is gzip'd text, not a tar",
            sealed(&{
                let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
                gz.write_all(&manifest_text).unwrap();
                gz.finish().unwrap()
            }),
            "tar",
        ),
        case(
            "payload is an empty tar",
            sealed(&Tar::new().finish()),
            "no manifest",
        ),
        case(
            "payload is a truncated gzip stream (digest resealed)",
            sealed(&{
                let p = payload(&files, &base());
                p[..p.len() / 2].to_vec()
            }),
            "incomplete deflate stream",
        ),
        // The manifest itself.
        case(
            "manifest is not the first entry",
            sealed(
                &Tar::new()
                    .item(&dir("bin"))
                    .manifest(&files)
                    .items(&base()[1..])
                    .finish(),
            ),
            "first entry",
        ),
        case(
            "manifest is not JSON",
            sealed(
                &Tar::new()
                    .manifest_bytes(b"format = 1\n")
                    .items(&base())
                    .finish(),
            ),
            "manifest is not valid",
        ),
        case(
            "bit flip in the manifest breaks its JSON (digest resealed)",
            sealed(
                &Tar::new()
                    .manifest_bytes(&flip_first(&manifest_text, b'{'))
                    .items(&base())
                    .finish(),
            ),
            "manifest is not valid",
        ),
        case(
            "bit flip in the manifest changes a file's sha256 (digest resealed)",
            sealed(
                &Tar::new()
                    .manifest_bytes(&flip_digest(&manifest_text, &sha256_hex(NOTES)))
                    .items(&base())
                    .finish(),
            ),
            "sha256",
        ),
        case(
            "manifest format 2",
            sealed(
                &Tar::new()
                    .manifest_bytes(&{
                        let mut m = manifest_value(&files);
                        m["format"] = json!(2);
                        serde_json::to_vec(&m).unwrap()
                    })
                    .items(&base())
                    .finish(),
            ),
            "format 2",
        ),
        case(
            "manifest is not sorted",
            sealed(&payload(
                &{
                    let mut f = files.clone();
                    f.swap(1, 2);
                    f
                },
                &base(),
            )),
            "not sorted",
        ),
        case(
            "manifest lists a path twice",
            sealed(&payload(
                &{
                    let mut f = files.clone();
                    f.insert(5, f[5].clone());
                    f
                },
                &base(),
            )),
            "twice",
        ),
        case(
            "manifest lists a file whose parent dir it does not list",
            consistent(&[
                file("bin/tool", 0o755, TOOL),
                dir("lifecycle"),
                file("lifecycle/run-gate.sh", 0o755, SCRIPT),
            ]),
            "parent",
        ),
        case(
            "manifest names an entry script that is not in the bundle",
            sealed(
                &Tar::new()
                    .manifest_bytes(&{
                        let mut m = manifest_value(&files);
                        m["entry"] = json!("lifecycle/missing.sh");
                        serde_json::to_vec(&m).unwrap()
                    })
                    .items(&base())
                    .finish(),
            ),
            "entry script",
        ),
        case(
            "manifest entry claims 64 MiB",
            sealed(
                &Tar::new()
                    .raw(
                        &header(
                            tar::EntryType::Regular,
                            b"manifest.json",
                            0o644,
                            64 << 20,
                            b"",
                        ),
                        &manifest_text,
                    )
                    .finish(),
            ),
            "manifest claims",
        ),
        // Manifest and files disagreeing.
        case(
            "payload holds an entry twice",
            sealed(&payload(&files, &{
                let mut items = base();
                items.insert(5, items[4].clone());
                items
            })),
            "twice",
        ),
        case(
            "payload holds the manifest twice",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .manifest(&files)
                    .items(&base())
                    .finish(),
            ),
            "manifest.json is reserved",
        ),
        case(
            "payload holds a file the manifest does not list",
            sealed(&payload(&files, &{
                let mut items = base();
                items.push(file("stowaway", 0o644, b"x"));
                items
            })),
            "does not list",
        ),
        case(
            "payload lacks a file the manifest lists",
            sealed(&payload(&files, &base_with("notes.txt", None))),
            "ends before",
        ),
        case(
            "payload holds entries out of the manifest's order",
            sealed(&payload(&files, &{
                let mut items = base();
                items.swap(1, 2);
                items
            })),
            "order",
        ),
        case(
            "a file's bytes do not match its sha256",
            sealed(&payload(
                &files,
                &base_with("notes.txt", Some(file("notes.txt", 0o644, b"NOTES\n"))),
            )),
            "sha256",
        ),
        case(
            "a file holds fewer bytes than declared",
            sealed(&payload(
                &files,
                &base_with("notes.txt", Some(file("notes.txt", 0o644, b"note\n"))),
            )),
            "manifest declares",
        ),
        case(
            "a file holds more bytes than declared",
            sealed(&payload(
                &files,
                &base_with("notes.txt", Some(file("notes.txt", 0o644, b"notes!\n"))),
            )),
            "manifest declares",
        ),
        case(
            "a file's mode disagrees with the manifest",
            sealed(&payload(
                &files,
                &base_with("notes.txt", Some(file("notes.txt", 0o755, NOTES))),
            )),
            "mode",
        ),
        case(
            "a file is setuid",
            sealed(&payload(
                &files,
                &base_with("bin/tool", Some(file("bin/tool", 0o4755, TOOL))),
            )),
            "mode",
        ),
        case(
            "the tar header's size runs past the end of the stream",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(
                        &header(
                            tar::EntryType::Regular,
                            b"notes.txt",
                            0o644,
                            NOTES.len() as u64,
                            b"",
                        ),
                        b"",
                    )
                    .unfinished(),
            ),
            "notes.txt",
        ),
        case(
            "the manifest says symlink, the payload holds a file",
            sealed(&payload(
                &files,
                &base_with("bin/alias", Some(file("bin/alias", 0o644, b""))),
            )),
            "is a file, but the manifest declares a symlink",
        ),
        case(
            "a symlink's target differs from the manifest's",
            sealed(&payload(
                &files,
                &base_with("bin/alias", Some(symlink("bin/alias", "../notes.txt"))),
            )),
            "points to",
        ),
        // Leaving the tree.
        case(
            "path traversal: a ../ entry",
            sealed(&payload(&files, &{
                let mut items = base();
                items.insert(0, file("../escape", 0o644, b"x"));
                items
            })),
            "traversal",
        ),
        case(
            "path traversal two levels up, inside a listed dir's name",
            sealed(&payload(
                &files,
                &base_with(
                    "notes.txt",
                    Some(file("lifecycle/../../escape", 0o644, NOTES)),
                ),
            )),
            "traversal",
        ),
        case(
            "path traversal declared in the manifest too",
            consistent(&{
                let mut items = base();
                items.insert(0, file("../escape", 0o644, b"x"));
                items
            }),
            "traversal",
        ),
        case(
            "path traversal through a GNU long name",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .long_name(tar::EntryType::GNULongName, b"../escape")
                    .item(&file("notes.txt", 0o644, NOTES))
                    .finish(),
            ),
            "traversal",
        ),
        case(
            "path traversal through a pax path",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .pax("path", b"../escape")
                    .item(&file("notes.txt", 0o644, NOTES))
                    .finish(),
            ),
            "pax record",
        ),
        case(
            "an absolute path",
            sealed(&payload(
                &files,
                &base_with("notes.txt", Some(file(abs, 0o644, NOTES))),
            )),
            "absolute",
        ),
        case(
            "an absolute path declared in the manifest too",
            consistent(&base_with("notes.txt", Some(file(abs, 0o644, NOTES)))),
            "absolute",
        ),
        case(
            "symlink escape: the payload's link leaves, the manifest's does not",
            sealed(&payload(
                &files,
                &base_with("bin/alias", Some(symlink("bin/alias", "../../etc"))),
            )),
            "symlink",
        ),
        case(
            "symlink escape declared consistently in the manifest",
            consistent(&base_with(
                "bin/alias",
                Some(symlink("bin/alias", "../../etc")),
            )),
            "points outside",
        ),
        case(
            "symlink to an absolute path",
            consistent(&base_with(
                "bin/alias",
                Some(symlink("bin/alias", "/etc/passwd")),
            )),
            "points outside",
        ),
        case(
            "a file beneath a symlinked dir, declared in the manifest",
            consistent(&[
                dir("bin"),
                symlink("bin/up", ".."),
                file("bin/up/planted", 0o644, b"x"),
                dir("lifecycle"),
                file("lifecycle/run-gate.sh", 0o755, SCRIPT),
            ]),
            "beneath the symlink",
        ),
        case(
            "a listed dir arrives as a symlink out of the tree, then a file beneath it",
            sealed(&payload(
                &listing(&base()),
                &base_with("bin", Some(symlink("bin", "../../.."))),
            )),
            "symlink",
        ),
        // Entries a bundle never holds.
        case(
            "a hard link declared as a file",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(&special(tar::EntryType::Link, "notes.txt", "bin/tool"), b"")
                    .finish(),
            ),
            "hard link",
        ),
        case(
            "a hard link escaping the tree",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(
                        &special(tar::EntryType::Link, "notes.txt", "../../../../etc/passwd"),
                        b"",
                    )
                    .finish(),
            ),
            "hard link",
        ),
        case(
            "a character device",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(&device(tar::EntryType::Char, 1, 3), b"")
                    .finish(),
            ),
            "device",
        ),
        case(
            "a block device",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(&device(tar::EntryType::Block, 8, 0), b"")
                    .finish(),
            ),
            "device",
        ),
        case(
            "a FIFO",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .raw(&special(tar::EntryType::Fifo, "notes.txt", ""), b"")
                    .finish(),
            ),
            "fifo",
        ),
        // Size bombs.
        case(
            "size bomb: a file's header claims 200 MiB of zeros, the manifest 6 bytes",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .zeros(
                        &header(tar::EntryType::Regular, b"notes.txt", 0o644, bomb, b""),
                        bomb,
                    )
                    .finish(),
            ),
            "manifest declares 6",
        ),
        case(
            "size bomb: a directory entry carrying 64 MiB of zeros",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..3])
                    .zeros(
                        &header(
                            tar::EntryType::Directory,
                            b"lifecycle",
                            0o755,
                            64 << 20,
                            b"",
                        ),
                        64 << 20,
                    )
                    .items(&base()[4..])
                    .finish(),
            ),
            "size bomb",
        ),
        case(
            "size bomb: the manifest declares 8 GiB",
            sealed(&payload(
                &{
                    let mut f = files.clone();
                    f[5]["size"] = json!(8u64 << 30);
                    f
                },
                &base(),
            )),
            "more than",
        ),
    ]
}

fn device(kind: tar::EntryType, major: u32, minor: u32) -> tar::Header {
    let mut h = special(kind, "notes.txt", "");
    h.set_device_major(major).unwrap();
    h.set_device_minor(minor).unwrap();
    h.set_cksum();
    h
}

/// `text` with one bit flipped in its first `byte`.
fn flip_first(text: &[u8], byte: u8) -> Vec<u8> {
    let mut out = text.to_vec();
    let at = out.iter().position(|&b| b == byte).unwrap();
    out[at] ^= 0x20;
    out
}

/// `text` with one bit flipped in the first hex digit of `digest`.
fn flip_digest(text: &[u8], digest: &str) -> Vec<u8> {
    let at = text
        .windows(digest.len())
        .position(|w| w == digest.as_bytes())
        .unwrap();
    let mut out = text.to_vec();
    // A hex digit with one bit flipped: '0'<->'1', 'a'<->'c', ...
    out[at] = match out[at] {
        b'0'..=b'9' => b'0' + ((out[at] - b'0') ^ 1),
        other => b'a' + ((other - b'a') ^ 2) % 6,
    };
    out
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn the_good_bundles_pass_so_each_rejection_is_the_damages_doing() {
    let crafted_good = consistent(&base());
    for (name, bytes) in [("packed", good().bytes.clone()), ("crafted", crafted_good)] {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("archy-gate");
        fs::write(&bundle, &bytes).unwrap();
        let run = run_in(tmp.path(), [OsStr::new("verify"), bundle.as_os_str()]);
        assert_eq!(
            run.code, 0,
            "the {name} control fails verify: {}",
            run.stderr
        );
        let target = tmp.path().join("parent/target");
        let run = run_in(
            tmp.path(),
            [
                OsStr::new("extract"),
                bundle.as_os_str(),
                OsStr::new("--to"),
                target.as_os_str(),
            ],
        );
        assert_eq!(
            run.code, 0,
            "the {name} control fails extract: {}",
            run.stderr
        );
        assert!(target.join("lifecycle/run-gate.sh").is_file());
        assert_eq!(
            fs::read_link(target.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
    }
}

#[test]
fn the_corpus_holds_at_least_twenty_bad_bundles_of_each_kind() {
    let (bytes, crafted) = (byte_level(), crafted());
    assert!(bytes.len() >= 20, "only {} byte-level cases", bytes.len());
    assert!(crafted.len() >= 20, "only {} crafted cases", crafted.len());
    let mut names: Vec<&str> = bytes
        .iter()
        .chain(&crafted)
        .map(|c| c.name.as_str())
        .collect();
    names.sort();
    let total = names.len();
    names.dedup();
    assert_eq!(names.len(), total, "case names are unique");
}

#[test]
fn damaged_bytes_are_refused_with_exit_3_and_leave_no_trace() {
    refuse_all(&byte_level());
}

#[test]
fn crafted_payloads_are_refused_with_exit_3_and_leave_no_trace() {
    refuse_all(&crafted());
}

// ---------------------------------------------------------------------------
// Bad bundles that earlier versions of the launcher let through.

/// A symlink chain that stays inside the tree when read lexically but leaves
/// it when the kernel resolves it: `bin/up -> ..` lands on the bundle's root,
/// so `out -> bin/up/..` lands on the root's parent, outside the bundle.
#[test]
fn a_symlink_that_escapes_through_another_symlink_is_refused() {
    let items = [
        dir("bin"),
        symlink("bin/alias", "tool"),
        file("bin/tool", 0o755, TOOL),
        symlink("bin/up", ".."),
        dir("lifecycle"),
        file("lifecycle/run-gate.sh", 0o755, SCRIPT),
        file("notes.txt", 0o644, NOTES),
        symlink("out", "bin/up/.."),
    ];
    refuse_all(&[case(
        "a symlink escaping through another symlink",
        consistent(&items),
        "resolves through the symlink",
    )]);
}

/// A symlink target holding a NUL byte (a GNU long link name can carry one,
/// and JSON can spell it): no symlink can point there.
#[test]
fn a_symlink_target_with_a_nul_byte_is_refused() {
    let files = listing(&base_with(
        "bin/alias",
        Some(symlink("bin/alias", "tool\0x")),
    ));
    let bytes = sealed(
        &Tar::new()
            .manifest(&files)
            .item(&dir("bin"))
            .long_name(tar::EntryType::GNULongLink, b"tool\0x")
            .raw(&special(tar::EntryType::Symlink, "bin/alias", ""), b"")
            .items(&base()[2..])
            .finish(),
    );
    refuse_all(&[case("a symlink target with a NUL byte", bytes, "nul")]);
}

/// A failed extract into a dir whose parent does not exist yet leaves no
/// trace either: not the parent, not its parents.
#[test]
fn a_failed_extract_leaves_no_parent_dirs_behind() {
    let bytes = sealed(&payload(
        &listing(&base()),
        &base_with("notes.txt", Some(file("notes.txt", 0o644, b"NOTES\n"))),
    ));
    let sandbox = tempfile::tempdir().unwrap();
    let bundle = sandbox.path().join("archy-gate");
    fs::write(&bundle, &bytes).unwrap();
    let before = tree(sandbox.path());
    let target = sandbox.path().join("new/deeper/target");
    let run = run_in(
        sandbox.path(),
        [
            OsStr::new("extract"),
            bundle.as_os_str(),
            OsStr::new("--to"),
            target.as_os_str(),
        ],
    );
    assert_eq!(run.code, INTEGRITY, "{}", run.stderr);
    assert!(run.stderr.contains("sha256"), "{}", run.stderr);
    assert_eq!(
        tree(sandbox.path()),
        before,
        "the failed extract left dirs behind"
    );
}

/// Bytes the launcher never reads: after the tar's end-of-archive marker the
/// gzip stream is not drained, so its CRC is never checked and whatever
/// follows it (junk, a second gzip member holding more entries) passes as
/// "contents ok". The payload is a gzip'd tar and nothing else.
#[test]
fn bytes_hidden_after_the_archive_are_refused() {
    let good = payload(&listing(&base()), &base());
    let mut junk = good.clone();
    junk.extend_from_slice(b"junk after the gzip stream");
    let mut member = good.clone();
    member.extend_from_slice(&Tar::new().item(&file("stowaway", 0o644, b"x")).finish());
    let mut crc = good.clone();
    let at = crc.len() - 8;
    crc[at] ^= 1;
    // Inside the one gzip stream, after the tar's end-of-archive marker.
    let mut after_end = Tar::new().manifest(&listing(&base())).items(&base());
    after_end.gz.write_all(&[0; 1024]).unwrap();
    let after_end = after_end.item(&file("stowaway", 0o644, b"x")).finish();
    refuse_all(&[
        case(
            "an entry after the tar's end-of-archive marker",
            sealed(&after_end),
            "the payload holds data after the end of its archive",
        ),
        case(
            "junk after the payload's gzip stream",
            sealed(&junk),
            "the payload holds bytes after its gzip stream",
        ),
        // A second member is, to a reader of one gzip stream, bytes after it:
        // refused as such, and never read.
        case(
            "a second gzip member with more entries",
            sealed(&member),
            "the payload holds bytes after its gzip stream",
        ),
        case(
            "a wrong gzip CRC (digest resealed)",
            sealed(&crc),
            "the payload's gzip stream is damaged",
        ),
    ]);
}

// ---------------------------------------------------------------------------
// Bounds: whatever a bundle's tar and manifest say, verify and extract finish
// within CPU_SECONDS and MEMORY_LIMIT, and what verify accepts extract can
// write.

/// A sealed bundle whose manifest and tar agree on `items`, long names
/// written as `pack` writes them.
fn consistent_long(items: &[Item]) -> Vec<u8> {
    let tar = Tar::new().manifest(&listing(items));
    sealed(&items.iter().fold(tar, Tar::long_item).finish())
}

/// A chain of `depth` directories, each named `width` bytes, then a file.
fn deep_tree(depth: usize, width: usize) -> (Vec<Item>, String) {
    let mut items = base();
    let mut path = String::new();
    for i in 0..depth {
        if !path.is_empty() {
            path.push('/');
        }
        // One letter per level: every name exactly `width` bytes.
        path.push_str(&char::from(b'a' + (i % 26) as u8).to_string().repeat(width));
        items.push(dir(&path));
    }
    let deep = format!("{path}/f");
    items.push(file(&deep, 0o644, NOTES));
    items.sort_by(|a, b| item_path(a).as_bytes().cmp(item_path(b).as_bytes()));
    (items, deep)
}

/// The base listing plus `n` directories: a manifest as large as wanted.
fn many_dirs(n: usize) -> Vec<Value> {
    let mut files = listing(&base());
    files.extend((0..n).map(|i| json!({"type": "dir", "path": format!("z{i:07}")})));
    files
}

fn bounds() -> Vec<Case> {
    let files = listing(&base());
    // The manifest declares a file big enough to let the long-name record's
    // bytes through the decompression budget: only its own bound stops it.
    let mut roomy = files.clone();
    roomy.push(json!({
        "type": "file", "path": "zz.bin", "size": 62u64 << 20,
        "mode": "0644", "sha256": "0".repeat(64),
    }));
    let huge_long_name = 60u64 << 20;
    let mut bomb = files.clone();
    bomb.push(json!({
        "type": "file", "path": "zz.bin", "size": 1u64 << 30,
        "mode": "0644", "sha256": "0".repeat(64),
    }));
    vec![
        case(
            "a GNU long-name record longer than any path",
            sealed(
                &Tar::new()
                    .manifest(&files)
                    .items(&base()[..5])
                    .long_name(tar::EntryType::GNULongName, &[b'a'; 3000])
                    .item(&file("notes.txt", 0o644, NOTES))
                    .finish(),
            ),
            "long-name record",
        ),
        case(
            "a 60 MiB GNU long-name record under a roomy manifest",
            sealed(
                &Tar::new()
                    .manifest(&roomy)
                    .items(&base())
                    .zeros(
                        &header(
                            tar::EntryType::GNULongName,
                            b"././@LongLink",
                            0o644,
                            huge_long_name,
                            b"",
                        ),
                        huge_long_name,
                    )
                    .finish(),
            ),
            "long-name record",
        ),
        case(
            "a 1 GiB file of zeros: a decompression bomb the manifest declares",
            sealed(
                &Tar::new()
                    .manifest(&bomb)
                    .items(&base())
                    .zeros(
                        &header(tar::EntryType::Regular, b"zz.bin", 0o644, 1 << 30, b""),
                        1 << 30,
                    )
                    .finish(),
            ),
            "bomb",
        ),
        case(
            "a symlink target of 300,000 components",
            consistent_long(&base_with(
                "bin/alias",
                Some(symlink(
                    "bin/alias",
                    &format!("{}tool", "a/..".repeat(300_000)),
                )),
            )),
            "longer than",
        ),
        case(
            "a symlink target longer than PATH_MAX",
            consistent_long(&base_with(
                "bin/alias",
                Some(symlink(
                    "bin/alias",
                    &format!("{}tool", "../bin/".repeat(700)),
                )),
            )),
            "longer than",
        ),
        case(
            "a symlink target with a name longer than NAME_MAX",
            consistent_long(&base_with(
                "bin/alias",
                Some(symlink("bin/alias", &"t".repeat(300))),
            )),
            "longer than",
        ),
        case(
            "a path longer than PATH_MAX",
            consistent_long(&deep_tree(21, 200).0),
            "longer than",
        ),
        case(
            "a manifest of 4 MiB and more",
            sealed(
                &Tar::new()
                    .manifest(&many_dirs(120_000))
                    .items(&base())
                    .finish(),
            ),
            "allowed",
        ),
        case(
            "a manifest listing more entries than a bundle may hold",
            sealed(
                &Tar::new()
                    .manifest(&many_dirs(10_001))
                    .items(&base())
                    .finish(),
            ),
            "entries, more than",
        ),
    ]
}

#[test]
fn hostile_bounds_are_refused_with_exit_3_and_leave_no_trace() {
    refuse_all(&bounds());
}

/// Each run of each bound case ends by itself within CPU_SECONDS (the
/// kernel would kill it: no exit code). Wall times are printed for people;
/// benchmarks, not tests, judge speed.
#[test]
fn hostile_bounds_are_refused_in_bounded_time() {
    let mut killed = Vec::new();
    for case in bounds() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("archy-gate");
        fs::write(&bundle, &case.bytes).unwrap();
        let target = tmp.path().join("target");
        for args in [
            vec![OsStr::new("verify"), bundle.as_os_str()],
            vec![
                OsStr::new("extract"),
                bundle.as_os_str(),
                OsStr::new("--to"),
                target.as_os_str(),
            ],
        ] {
            let started = std::time::Instant::now();
            let run = run_in(tmp.path(), &args);
            let took = started.elapsed();
            println!(
                "{:>8.3}s exit {}  {} ({:?})",
                took.as_secs_f64(),
                run.code,
                case.name,
                args[0]
            );
            if run.code < 0 {
                killed.push(format!("{} {:?} after {took:?}", case.name, args[0]));
            }
        }
    }
    assert!(
        killed.is_empty(),
        "killed at {CPU_SECONDS} CPU-seconds or {MEMORY_LIMIT} bytes: {killed:?}"
    );
}

/// The controls for the bounds: long paths and targets within them, written
/// with GNU long-name records as `pack` writes them, pass verify and extract
/// and land where they should.
#[test]
fn long_paths_and_targets_within_the_bounds_pass() {
    let (mut items, deep) = deep_tree(9, 200);
    let long_target = format!("{}tool", "../bin/".repeat(280));
    let at = items
        .iter()
        .position(|i| item_path(i) == "bin/alias")
        .unwrap();
    items[at] = symlink("bin/alias", &long_target);
    let widest = format!("bin/{}", "w".repeat(255));
    items.push(file(&widest, 0o644, NOTES));
    items.sort_by(|a, b| item_path(a).as_bytes().cmp(item_path(b).as_bytes()));
    let bytes = consistent_long(&items);
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("archy-gate");
    fs::write(&bundle, &bytes).unwrap();
    let run = run_in(tmp.path(), [OsStr::new("verify"), bundle.as_os_str()]);
    assert_eq!(run.code, 0, "verify: {}", run.stderr);
    let target = tmp.path().join("target");
    let run = run_in(
        tmp.path(),
        [
            OsStr::new("extract"),
            bundle.as_os_str(),
            OsStr::new("--to"),
            target.as_os_str(),
        ],
    );
    assert_eq!(run.code, 0, "extract: {}", run.stderr);
    assert_eq!(fs::read(target.join(&deep)).unwrap(), NOTES);
    assert_eq!(fs::read(target.join(&widest)).unwrap(), NOTES);
    assert_eq!(
        fs::read_link(target.join("bin/alias")).unwrap(),
        Path::new(&long_target)
    );
    assert_eq!(fs::read(target.join("bin/alias")).unwrap(), TOOL);

    // And `pack` itself, which writes such records for long paths.
    let stage_dir = tmp.path().join("stage");
    let long_dir = "d".repeat(150);
    let stage = Stage::minimal(&stage_dir)
        .file(&format!("lib/{long_dir}/{}", "f".repeat(200)), NOTES, 0o644)
        .symlink("lib/alias", &format!("{long_dir}/{}", "f".repeat(200)));
    let packed = stage.pack(&tmp.path().join("out"));
    let run = run_in(tmp.path(), [OsStr::new("verify"), packed.as_os_str()]);
    assert_eq!(run.code, 0, "verify of a packed long path: {}", run.stderr);
    let run = run_in(
        tmp.path(),
        [
            OsStr::new("extract"),
            packed.as_os_str(),
            OsStr::new("--to"),
            tmp.path().join("packed").as_os_str(),
        ],
    );
    assert_eq!(run.code, 0, "extract of a packed long path: {}", run.stderr);
}
