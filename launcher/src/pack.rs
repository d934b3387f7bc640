//! Packing a stage tree into a bundle: first compute the plan (walk, check,
//! describe), then write it (payload, single file, manifest, SHA256SUMS).
//!
//! The payload is deterministic: entries sorted bytewise by path, one mtime
//! (`SOURCE_DATE_EPOCH`), owner 0:0 without names, modes 0755/0644, GNU
//! headers with no pax records, gzip with mtime 0, no name, OS 255, and the
//! pinned miniz_oxide backend at level 9. The same tree gives the same bytes
//! whoever owns it, whatever its mtimes, umask or creation order.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use flate2::{Compression, GzBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::bundle::Bundle;
use crate::digest::{sha256, to_hex};
use crate::elf;
use crate::exit::{fail, ExitStatus, WithStatus};
use crate::manifest::{
    check_cross_name, check_path, resolve_link, CrossSuite, Entry, LinkError, Manifest, Mode, Tool,
    DEFAULT_ENTRY, MANIFEST_NAME,
};
use crate::scenario::{Scenario, SCENARIO_FILE};
use crate::trailer::{Trailer, FORMAT_VERSION};

/// The stage's own description, read by `pack` and not packed itself.
pub const STAGE_DESCRIPTION: &str = "stage.json";
/// The mtime of every entry when `SOURCE_DATE_EPOCH` is unset: 1980-01-01.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 315_532_800;
/// Names of the files `pack` writes into `--out`.
pub const BUNDLE_FILE: &str = "archy-gate";
pub const SUMS_FILE: &str = "SHA256SUMS";

/// The store prefix, spelt backwards: the launcher is packed into bundles
/// itself, and must not carry the very string it refuses.
const NIX_STORE_REVERSED: &[u8] = b"/erots/xin/";
/// A store path's hash: 32 characters, all `e` once scrubbed.
const SCRUBBED_HASH_LEN: usize = 32;
const GZIP_LEVEL: u32 = 9;

/// `STAGE/stage.json`: everything about the bundle the tree itself can't say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDescription {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub entry: Option<String>,
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

/// Everything `pack` will write, computed and checked before any byte is.
pub struct PackPlan {
    pub manifest: Manifest,
    /// File contents by path, as read (and checked) from the stage.
    contents: HashMap<String, Vec<u8>>,
    launcher_head: Vec<u8>,
}

/// What `pack` wrote.
pub struct Packed {
    pub bundle: Utf8PathBuf,
    pub manifest: Utf8PathBuf,
    pub sums: Utf8PathBuf,
    pub sha256: String,
    pub size: u64,
    pub payload_size: u64,
}

fn refuse(message: String) -> anyhow::Error {
    fail(ExitStatus::Usage, message)
}

/// Reads `SOURCE_DATE_EPOCH`, or the fixed default.
pub fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text.trim().parse().map_err(|_| {
            refuse(format!(
                "SOURCE_DATE_EPOCH={text:?} is not a whole number of seconds since 1970"
            ))
        }),
        Err(_) => Ok(DEFAULT_SOURCE_DATE_EPOCH),
    }
}

/// Walks and checks the stage, reads the launcher, and describes the bundle.
pub fn plan(stage: &Utf8Path, launcher: &Utf8Path, mtime: u64) -> anyhow::Result<PackPlan> {
    let meta = fs::metadata(stage).status(ExitStatus::Usage, || {
        format!("cannot read the stage {stage}: check the path")
    })?;
    if !meta.is_dir() {
        return Err(refuse(format!("the stage {stage} is not a directory")));
    }
    let description = read_description(stage)?;
    let launcher_head = read_launcher(launcher)?;

    let mut walked = Vec::new();
    walk(stage, "", &mut walked)?;
    walked.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let symlinks: HashMap<&str, bool> = walked
        .iter()
        .map(|(p, m)| (p.as_str(), m.file_type().is_symlink()))
        .collect();
    let is_symlink = |p: &str| symlinks.get(p).copied().unwrap_or(false);
    let mut files = Vec::with_capacity(walked.len());
    let mut contents = HashMap::new();
    for (path, meta) in &walked {
        let on_disk = stage.join(path);
        let kind = meta.file_type();
        if kind.is_dir() {
            files.push(Entry::Dir { path: path.clone() });
        } else if kind.is_symlink() {
            let target = fs::read_link(&on_disk)
                .with_context(|| format!("cannot read the symlink {on_disk}"))?;
            let target = target
                .to_str()
                .ok_or_else(|| refuse(format!("the symlink {on_disk} has a non-UTF-8 target")))?;
            match resolve_link(path, target, &is_symlink) {
                Ok(inside) if inside.is_empty() || symlinks.contains_key(inside.as_str()) => {}
                Ok(inside) => {
                    return Err(refuse(format!(
                        "the symlink {on_disk} -> {target} points to {inside}, which is not in the stage"
                    )))
                }
                Err(LinkError::Leaves) => {
                    return Err(refuse(format!(
                        "the symlink {on_disk} -> {target} leaves the stage: a bundle must be self-contained; copy the file in instead"
                    )))
                }
                Err(e) => {
                    return Err(refuse(format!("the symlink {on_disk} -> {target} {e}")))
                }
            }
            files.push(Entry::Symlink {
                path: path.clone(),
                target: target.to_string(),
            });
        } else if kind.is_file() {
            let bytes = fs::read(&on_disk).with_context(|| format!("cannot read {on_disk}"))?;
            check_hermetic(&on_disk, &bytes)?;
            files.push(Entry::File {
                path: path.clone(),
                size: bytes.len() as u64,
                mode: Mode::from_permissions(meta.permissions().mode()),
                sha256: to_hex(&sha256(&bytes)),
            });
            contents.insert(path.clone(), bytes);
        } else {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device file"
            } else {
                "a special file"
            };
            return Err(refuse(format!(
                "{on_disk} is {what}: a bundle holds only files, directories and symlinks"
            )));
        }
    }

    let entry = description
        .entry
        .clone()
        .unwrap_or_else(|| DEFAULT_ENTRY.to_string());
    let tools = if description.tools.is_empty() {
        tools_from_bin(&files)
    } else {
        description.tools.clone()
    };
    let mut sources = description.sources.clone();
    sources.insert(
        "suite".into(),
        format!("sha256:{}", suite_digest(&files, &entry)),
    );
    let cross = find_cross_suites(&files, &contents, &entry)?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        name: description
            .name
            .clone()
            .unwrap_or_else(|| "archy-gate".into()),
        version: description
            .version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        entry,
        source_date_epoch: mtime,
        tools,
        sources,
        cross,
        files,
    };
    check_description(stage, &manifest)?;
    manifest.validate().map_err(|e| {
        refuse(format!(
            "the stage {stage} does not make a valid bundle: {e}"
        ))
    })?;
    Ok(PackPlan {
        manifest,
        contents,
        launcher_head,
    })
}

fn read_description(stage: &Utf8Path) -> anyhow::Result<StageDescription> {
    let path = stage.join(STAGE_DESCRIPTION);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            refuse(format!(
                "{path} is not a valid stage description: {e} (fields: name, version, entry, tools, sources)"
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(StageDescription::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
    }
}

/// The launcher that heads the single file: a static ELF. When handed a
/// bundle, its head is taken, so `--launcher result/archy-gate` works.
fn read_launcher(path: &Utf8Path) -> anyhow::Result<Vec<u8>> {
    let bytes = match Bundle::open(path) {
        Ok(bundle) => bundle.head().to_vec(),
        Err(_) => fs::read(path).status(ExitStatus::Usage, || {
            format!("cannot read the launcher {path}: check --launcher")
        })?,
    };
    if !elf::is_elf(&bytes) {
        return Err(refuse(format!(
            "--launcher {path} is not an ELF executable: give the static launcher binary"
        )));
    }
    check_hermetic(path, &bytes)?;
    Ok(bytes)
}

/// Refuses what cannot run on a node without /nix and without libraries.
///
/// A store path is refused wherever it is live: in a script (what it runs),
/// in an ELF's interpreter or run-time search path. Inside a static ELF, and
/// only there, the scrubbed form nixpkgs' remove-references-to and
/// nukeReferences leave (`/nix/store/` + 32 `e` + `-`) is accepted: it is a
/// compiled-in default the program may search or print (bash's loadables
/// path, jq's build configuration), names no path that exists anywhere, and
/// the builder has said so by scrubbing it. Any other store path is refused.
fn check_hermetic(path: &Utf8Path, bytes: &[u8]) -> anyhow::Result<()> {
    let store: Vec<u8> = NIX_STORE_REVERSED.iter().rev().copied().collect();
    let elf = elf::is_elf(bytes);
    if elf {
        let linkage = elf::linkage(bytes).map_err(|e| {
            refuse(format!(
                "{path} looks like an ELF file but is malformed: {e}"
            ))
        })?;
        if !linkage.is_static() {
            return Err(refuse(format!(
                "{path} is dynamically linked ({}): nodes lack those libraries; stage a statically linked build",
                linkage.describe()
            )));
        }
        if let Some(live) = linkage
            .search_path
            .iter()
            .find(|p| find(p.as_bytes(), &store).is_some())
        {
            return Err(refuse(format!(
                "{path} names the Nix store in its run-time search path (RPATH/RUNPATH {live}): nodes have no /nix; build it without store references"
            )));
        }
    }
    let mut from = 0;
    while let Some(i) = find(&bytes[from..], &store) {
        let at = from + i;
        from = at + store.len();
        if elf && is_scrubbed(&bytes[from..]) {
            continue;
        }
        let end = bytes[at..]
            .iter()
            .position(|b| !b.is_ascii_graphic())
            .map_or(bytes.len(), |n| at + n);
        let shown = String::from_utf8_lossy(&bytes[at..end.min(at + 80)]);
        let why = if is_scrubbed(&bytes[from..]) {
            " (a scrubbed store path is accepted only as data inside a static ELF; in a script it is still a path that runs)"
        } else {
            ""
        };
        return Err(refuse(format!(
            "{path} names the Nix store at byte {at} ({shown}): nodes have no /nix; build it without store references{why}"
        )));
    }
    Ok(())
}

/// After the store prefix: the hash remove-references-to writes, then `-`.
fn is_scrubbed(rest: &[u8]) -> bool {
    rest.len() > SCRUBBED_HASH_LEN
        && rest[..SCRUBBED_HASH_LEN].iter().all(|&b| b == b'e')
        && rest[SCRUBBED_HASH_LEN] == b'-'
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn walk(stage: &Utf8Path, rel: &str, out: &mut Vec<(String, fs::Metadata)>) -> anyhow::Result<()> {
    let dir = if rel.is_empty() {
        stage.to_owned()
    } else {
        stage.join(rel)
    };
    for item in fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_str().ok_or_else(|| {
            refuse(format!(
                "{dir}/{} has a non-UTF-8 name: rename it",
                name.to_string_lossy()
            ))
        })?;
        if rel.is_empty() && name == STAGE_DESCRIPTION {
            continue;
        }
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if rel.is_empty() && name == MANIFEST_NAME {
            return Err(refuse(format!(
                "{stage}/{MANIFEST_NAME} is reserved: pack writes the manifest itself; remove it from the stage"
            )));
        }
        check_path(&path).map_err(|e| refuse(format!("{dir}/{name}: {e}")))?;
        let meta = fs::symlink_metadata(item.path())?;
        let is_dir = meta.is_dir();
        out.push((path.clone(), meta));
        if is_dir {
            walk(stage, &path, out)?;
        }
    }
    Ok(())
}

/// Without a stage description, each file in `bin/` is a tool of unknown version.
fn tools_from_bin(files: &[Entry]) -> Vec<Tool> {
    files
        .iter()
        .filter(|e| !matches!(e, Entry::Dir { .. }))
        .filter_map(|e| {
            let name = e.path().strip_prefix("bin/")?;
            (!name.contains('/')).then(|| Tool {
                name: name.to_string(),
                version: "unknown".into(),
                path: e.path().to_string(),
                source: String::new(),
            })
        })
        .collect()
}

/// The cross-node suites: every `<entry dir>/cross/<name>/run.sh` file,
/// with its scenario when `scenario.toml` is beside it (read and checked
/// here, so a bad one stops the build, not a fleet run).
/// A dir there without run.sh is a helper dir (shared lib), not a suite.
fn find_cross_suites(
    files: &[Entry],
    contents: &HashMap<String, Vec<u8>>,
    entry: &str,
) -> anyhow::Result<Vec<CrossSuite>> {
    let prefix = format!("{}/", Manifest::cross_dir_for(entry));
    let mut suites = Vec::new();
    for e in files {
        let Entry::Dir { path } = e else { continue };
        let Some(name) = path
            .strip_prefix(&prefix)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        else {
            continue;
        };
        let run = Manifest::cross_entry_for(entry, name);
        if !files
            .iter()
            .any(|f| matches!(f, Entry::File { path, .. } if *path == run))
        {
            continue;
        }
        check_cross_name(name).map_err(|why| refuse(format!("{run}: {why}: rename its dir")))?;
        let dir = format!("{path}/");
        let scenario_path = format!("{dir}{SCENARIO_FILE}");
        let scenario = match contents.get(&scenario_path) {
            None => None,
            Some(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| refuse(format!("{scenario_path} is not UTF-8")))?;
                let is_file = |rel: &str| {
                    let want = format!("{dir}{rel}");
                    files
                        .iter()
                        .any(|f| matches!(f, Entry::File { path, .. } if *path == want))
                };
                Some(
                    Scenario::parse(text, &is_file)
                        .map_err(|why| refuse(format!("{scenario_path}: {why}")))?,
                )
            }
        };
        suites.push(CrossSuite {
            name: name.to_string(),
            entry: run,
            scenario,
        });
    }
    Ok(suites)
}

/// The digest of the suite: the entry's top directory, each entry's path,
/// kind, mode and content digest (or link target), in order.
fn suite_digest(files: &[Entry], entry: &str) -> String {
    let top = entry.split('/').next().unwrap_or(entry);
    let prefix = format!("{top}/");
    let mut hasher = Sha256::new();
    for e in files
        .iter()
        .filter(|e| e.path() == top || e.path().starts_with(&prefix))
    {
        let line = match e {
            Entry::Dir { path } => format!("{path}\tdir\n"),
            Entry::File {
                path, mode, sha256, ..
            } => format!("{path}\tfile\t{mode}\t{sha256}\n"),
            Entry::Symlink { path, target } => format!("{path}\tsymlink\t{target}\n"),
        };
        hasher.update(line.as_bytes());
    }
    to_hex(&hasher.finalize())
}

fn check_description(stage: &Utf8Path, manifest: &Manifest) -> anyhow::Result<()> {
    let listed: HashMap<&str, &Entry> = manifest.files.iter().map(|e| (e.path(), e)).collect();
    if !matches!(
        listed.get(manifest.entry.as_str()),
        Some(Entry::File { .. })
    ) {
        return Err(refuse(format!(
            "the stage {stage} has no entry script {}: add the lifecycle suite, or name the entry in {stage}/{STAGE_DESCRIPTION}",
            manifest.entry
        )));
    }
    for tool in &manifest.tools {
        if !listed.contains_key(tool.path.as_str()) {
            return Err(refuse(format!(
                "{stage}/{STAGE_DESCRIPTION} lists the tool {} at {}, which is not in the stage",
                tool.name, tool.path
            )));
        }
    }
    Ok(())
}

impl PackPlan {
    /// The sha256 of the launcher that heads the file (for the evidence).
    pub fn launcher_sha256(&self) -> String {
        to_hex(&sha256(&self.launcher_head))
    }

    /// Writes the gzip'd tar payload.
    pub fn write_payload<W: Write>(&self, out: W) -> io::Result<W> {
        let mtime = self.manifest.source_date_epoch;
        let gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(out, Compression::new(GZIP_LEVEL));
        let mut tar = tar::Builder::new(gz);
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(mtime);
            h.set_size(size);
            h
        };
        let manifest = self.manifest.to_json();
        let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64);
        tar.append_data(&mut h, MANIFEST_NAME, manifest.as_slice())?;
        for entry in &self.manifest.files {
            match entry {
                Entry::Dir { path } => {
                    let mut h = header(tar::EntryType::Directory, 0o755, 0);
                    tar.append_data(&mut h, path, io::empty())?;
                }
                Entry::Symlink { path, target } => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    tar.append_link(&mut h, path, target)?;
                }
                Entry::File {
                    path, mode, size, ..
                } => {
                    let mut h = header(tar::EntryType::Regular, mode.bits(), *size);
                    tar.append_data(&mut h, path, self.contents[path].as_slice())?;
                }
            }
        }
        tar.into_inner()?.finish()
    }

    /// Writes `out/archy-gate`, `out/manifest.json` and `out/SHA256SUMS`,
    /// each through a temporary file renamed into place.
    pub fn write(&self, out: &Utf8Path) -> anyhow::Result<Packed> {
        fs::create_dir_all(out).with_context(|| format!("cannot create the output dir {out}"))?;
        let payload = self.write_payload(Vec::new())?;
        let trailer = Trailer {
            version: FORMAT_VERSION,
            payload_offset: self.launcher_head.len() as u64,
            payload_len: payload.len() as u64,
            payload_sha256: sha256(&payload),
        };
        let mut single = Vec::with_capacity(self.launcher_head.len() + payload.len() + 64);
        single.extend_from_slice(&self.launcher_head);
        single.extend_from_slice(&payload);
        single.extend_from_slice(&trailer.encode());
        let whole = to_hex(&sha256(&single));
        let manifest = self.manifest.to_json();
        let sums = format!(
            "{whole}  {BUNDLE_FILE}\n{}  {MANIFEST_NAME}\n",
            to_hex(&sha256(&manifest))
        );

        let bundle = out.join(BUNDLE_FILE);
        crate::atomic_file::write(&bundle, &single, 0o755)?;
        let manifest_path = out.join(MANIFEST_NAME);
        crate::atomic_file::write(&manifest_path, &manifest, 0o644)?;
        let sums_path = out.join(SUMS_FILE);
        crate::atomic_file::write(&sums_path, sums.as_bytes(), 0o644)?;
        Ok(Packed {
            bundle,
            manifest: manifest_path,
            sums: sums_path,
            sha256: whole,
            size: single.len() as u64,
            payload_size: payload.len() as u64,
        })
    }
}
