//! A run's dir on the node (run.json, gate.log, TAP, JUnit), copied into
//! the fleet dir as plain data. The node's tar stream is read entry by
//! entry under `answer`'s caps (bytes and entries); only regular files and
//! directories with plain names are kept, each created exclusively and
//! without following anything, beneath the fleet's private dir. A symlink,
//! hard link, device, FIFO, long-name or pax record, odd name or unexpected
//! kind of file is never created: it is named in the node's report. The
//! node's file times are neither put on disk nor kept: the timeline reads
//! the times the node's launcher recorded in run.json, and clamps them.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;
use tar::EntryType;

use super::answer;
use super::retry;
use super::ssh::{quote, Ssh, SshError};
use super::state::TestResult;
use crate::private_fs::{Create, PrivateDir};

/// The kinds of file a run dir holds: the record, the log, TAP, JUnit, text.
const KEPT_EXTENSIONS: &[&str] = &["json", "log", "tap", "xml", "txt"];
/// Directories below the run dir (bats' `iteration-N/`), one level deep.
const MAX_DEPTH: usize = 2;

/// One file kept. Its time on the node is not: the timeline takes the
/// times the node's launcher recorded, clamped to what this host saw.
#[derive(Debug, Clone)]
pub struct FetchedFile {
    /// Relative to the run dir, `/`-separated.
    pub path: String,
}

/// What a fetch kept and what it refused.
#[derive(Debug, Default)]
pub struct Fetched {
    pub files: Vec<FetchedFile>,
    /// Each entry not kept, and why ("iteration-1.tap: a symlink, not kept").
    pub refused: Vec<String>,
    /// The fetch did not complete (the node's tar failed), in words.
    pub incomplete: Option<String>,
}

/// Why a fetch ended without a result.
pub enum FetchError {
    /// The link broke on every try.
    Link(String),
    /// The node sent more than the caps allow, or a broken stream.
    Misbehaved(String),
    /// This host could not write its own dir.
    Local(String),
}

/// Copies the node's `remote` run dir into `local` (made afresh: whatever
/// an earlier fetch left there is removed first).
pub fn run_dir(ssh: &mut Ssh, remote: &str, local: &Utf8Path) -> Result<Fetched, FetchError> {
    let command = format!("cd {} && tar cf - .", quote(remote));
    let mut tries = retry::COMMAND.start();
    let mut last = String::new();
    while tries.next() {
        let into = fresh_dir(local)?;
        let mut unpacked: Option<Result<Fetched, Unpack>> = None;
        let outcome = ssh.run_into(&command, answer::RUN_DIR_STREAM, &mut |stream| {
            unpacked = Some(unpack(stream, &into));
            Ok(())
        });
        // What the stream held decides first: a run dir that broke a cap
        // is named for that, whatever became of the rest of the stream.
        let unpacked = match unpacked {
            Some(Err(Unpack::Misbehaved(why))) => return Err(FetchError::Misbehaved(why)),
            Some(Err(Unpack::Local(why))) => return Err(FetchError::Local(why)),
            Some(Ok(fetched)) => Some(fetched),
            None => None,
        };
        match outcome {
            Ok(out) => {
                let mut fetched = unpacked.unwrap_or_default();
                if out.code != 0 {
                    fetched.incomplete = Some(format!(
                        "the node's tar of {} ended with exit {}: {}",
                        answer::tame_str(remote),
                        out.code,
                        answer::tame_str(out.stderr.trim())
                    ));
                }
                return Ok(fetched);
            }
            Err(SshError::Misbehaved(why)) => return Err(FetchError::Misbehaved(why)),
            Err(e) => {
                last = e.to_string();
                if tries.left() {
                    tries.pause();
                }
            }
        }
    }
    Err(FetchError::Link(last))
}

/// `local`, made afresh inside its private parent: whatever an earlier
/// fetch left there is removed first.
fn fresh_dir(local: &Utf8Path) -> Result<PrivateDir, FetchError> {
    let (Some(parent), Some(name)) = (local.parent(), local.file_name()) else {
        return Err(FetchError::Local(format!(
            "{local}: not a dir to fetch into"
        )));
    };
    let parent =
        PrivateDir::open(parent, Create::Yes).map_err(|e| FetchError::Local(e.to_string()))?;
    parent
        .remove_all(name)
        .map_err(|e| FetchError::Local(format!("{local}: {e}")))?;
    parent
        .ensure_dir(name)
        .map_err(|e| FetchError::Local(e.to_string()))
}

/// A run dir's tar stream from elsewhere (`from_runs.rs`: a dir fetched
/// by Ansible, walked without following anything) unpacked into `local`,
/// made afresh, by the same rule as a node's.
pub fn from_stream(stream: &mut dyn Read, local: &Utf8Path) -> Result<Fetched, FetchError> {
    let into = fresh_dir(local)?;
    let mut capped = answer::Capped::new(stream, answer::RUN_DIR_STREAM);
    match unpack(&mut capped, &into) {
        Ok(fetched) => Ok(fetched),
        Err(Unpack::Misbehaved(why)) => Err(FetchError::Misbehaved(why)),
        Err(Unpack::Local(why)) => Err(FetchError::Local(why)),
    }
}

enum Unpack {
    Misbehaved(String),
    Local(String),
}

/// A name a run dir's entry may have: letters, digits, `.`, `_`, `-`, not
/// starting with `.`, at most 100 bytes.
fn plain(component: &str) -> bool {
    !component.is_empty()
        && component.len() <= 100
        && !component.starts_with('.')
        && component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn kind_words(kind: EntryType) -> String {
    match kind {
        EntryType::Symlink => "a symlink".into(),
        EntryType::Link => "a hard link".into(),
        EntryType::Char | EntryType::Block => "a device".into(),
        EntryType::Fifo => "a FIFO".into(),
        EntryType::GNULongName | EntryType::GNULongLink => "a GNU long-name record".into(),
        EntryType::XHeader | EntryType::XGlobalHeader => "a pax record".into(),
        EntryType::GNUSparse => "a sparse file".into(),
        other => format!("an entry of type {:?}", other.as_byte() as char),
    }
}

/// The tar stream's entries, kept or refused one by one.
fn unpack(stream: &mut dyn Read, into: &PrivateDir) -> Result<Fetched, Unpack> {
    let mut fetched = Fetched::default();
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| Unpack::Misbehaved(format!("its run dir is not a tar stream: {e}")))?
        .raw(true);
    let mut dirs: HashMap<String, PrivateDir> = HashMap::new();
    let mut count = 0usize;
    let mut bytes = 0u64;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| Unpack::Misbehaved(format!("its run dir's tar stream is broken: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let rel = name.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() || rel == "." {
            continue;
        }
        count += 1;
        if count > answer::RUN_DIR_ENTRIES {
            return Err(Unpack::Misbehaved(format!(
                "its run dir has more than {} entries, the most the fleet keeps",
                answer::RUN_DIR_ENTRIES
            )));
        }
        let shown = answer::tame_str(rel);
        let kind = entry.header().entry_type();
        let parts: Vec<&str> = rel.split('/').collect();
        if std::str::from_utf8(&raw).is_err()
            || parts.len() > MAX_DEPTH
            || !parts.iter().all(|p| plain(p))
        {
            fetched
                .refused
                .push(format!("{shown}: not a plain name, not kept"));
            continue;
        }
        match kind {
            EntryType::Directory if parts.len() == 1 => {
                if !dirs.contains_key(rel) {
                    let dir = into
                        .ensure_dir(rel)
                        .map_err(|e| Unpack::Local(e.to_string()))?;
                    dirs.insert(rel.to_string(), dir);
                }
            }
            EntryType::Directory => fetched
                .refused
                .push(format!("{shown}: a directory too deep, not kept")),
            EntryType::Regular | EntryType::Continuous => {
                let file_name = parts[parts.len() - 1];
                let kept = file_name
                    .rsplit_once('.')
                    .is_some_and(|(_, ext)| KEPT_EXTENSIONS.contains(&ext));
                if !kept {
                    fetched.refused.push(format!(
                        "{shown}: not a record, log or report (.{}), not kept",
                        KEPT_EXTENSIONS.join(" .")
                    ));
                    continue;
                }
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > answer::RUN_DIR_BYTES - bytes {
                    return Err(Unpack::Misbehaved(format!(
                        "its run dir holds more than {}, the most the fleet keeps",
                        crate::human::size(answer::RUN_DIR_BYTES)
                    )));
                }
                let dir = if parts.len() == 2 {
                    if !dirs.contains_key(parts[0]) {
                        let dir = into
                            .ensure_dir(parts[0])
                            .map_err(|e| Unpack::Local(e.to_string()))?;
                        dirs.insert(parts[0].to_string(), dir);
                    }
                    &dirs[parts[0]]
                } else {
                    into
                };
                let mut file = match dir.create_file(file_name, 0o600) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        fetched
                            .refused
                            .push(format!("{shown}: sent twice, the second not kept"));
                        continue;
                    }
                    Err(e) => return Err(Unpack::Local(format!("{}/{rel}: {e}", into.path()))),
                };
                let copied = io::copy(&mut (&mut entry).take(size), &mut file).map_err(|e| {
                    Unpack::Misbehaved(format!("its run dir's tar stream broke in {shown}: {e}"))
                })?;
                bytes += copied;
                fetched.files.push(FetchedFile {
                    path: rel.to_string(),
                });
            }
            other => fetched
                .refused
                .push(format!("{shown}: {}, not kept", kind_words(other))),
        }
    }
    Ok(fetched)
}

/// A fetched file's text, at most `cap` bytes: opened without following a
/// symlink, read only when it is a regular file (a fleet dir an older
/// launcher filled may hold a node's symlinks). Missing or refused: empty.
pub fn read_text(path: &Utf8Path, cap: u64) -> String {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let Ok(file) = opened else {
        return String::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(cap).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Lines of a failed test's output kept, each at most this many characters,
/// and at most this many characters of output in all per TAP file: enough
/// for bats' diagnostics, bounded whatever a node writes.
const OUTPUT_LINES: usize = 20;
const OUTPUT_WIDTH: usize = 500;
const OUTPUT_CHARS: usize = 64 << 10;

/// The tests of a fetched TAP file, each name tamed, at most
/// `answer::LIST_ITEMS` of them, with their times and a failed test's
/// output (tamed, and capped above): the one read of a node's TAP, kept in
/// the state for every report.
pub fn tap_tests(path: &Utf8Path) -> Vec<TestResult> {
    let mut budget = OUTPUT_CHARS;
    crate::reports::tap_tests(&read_text(path, answer::RUN_DIR_BYTES))
        .into_iter()
        .take(answer::LIST_ITEMS)
        .map(|t| TestResult {
            name: answer::tame_str(&t.name),
            outcome: t.outcome,
            ms: t.ms,
            output: t
                .output
                .iter()
                .take(OUTPUT_LINES)
                .map_while(|line| {
                    let mut line = answer::tame_str(line);
                    if line.chars().count() > OUTPUT_WIDTH {
                        line = line.chars().take(OUTPUT_WIDTH).collect::<String>() + "…";
                    }
                    budget = budget.checked_sub(line.chars().count())?;
                    Some(line)
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn header(kind: EntryType, size: u64, mtime: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h
    }

    #[test]
    fn only_plain_files_and_dirs_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap().join("run");
        let into = PrivateDir::open(&root, Create::Yes).unwrap();
        let bytes = tar_of(|b| {
            b.append_data(
                &mut header(EntryType::Regular, 4, 7),
                "./run.json",
                &b"{}\n\n"[..],
            )
            .unwrap();
            b.append_data(
                &mut header(EntryType::Directory, 0, 7),
                "./iteration-1/",
                io::empty(),
            )
            .unwrap();
            b.append_data(
                &mut header(EntryType::Regular, 3, 9),
                "./iteration-1/report.xml",
                &b"<a>"[..],
            )
            .unwrap();
            let mut link = header(EntryType::Symlink, 0, 7);
            link.set_link_name("/dev/zero").unwrap();
            b.append_data(&mut link, "./iteration-2.tap", io::empty())
                .unwrap();
            b.append_data(
                &mut header(EntryType::Fifo, 0, 7),
                "./fifo.log",
                io::empty(),
            )
            .unwrap();
            b.append_data(
                &mut header(EntryType::Regular, 2, 7),
                "./evil.html",
                &b"<>"[..],
            )
            .unwrap();
            b.append_data(
                &mut header(EntryType::Regular, 2, 7),
                "./.hidden.log",
                &b"<>"[..],
            )
            .unwrap();
        });
        let fetched = match unpack(&mut bytes.as_slice(), &into) {
            Ok(f) => f,
            Err(_) => panic!("unpacked"),
        };
        let kept: Vec<&str> = fetched.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(kept, ["run.json", "iteration-1/report.xml"]);
        assert_eq!(fetched.refused.len(), 4, "{:?}", fetched.refused);
        assert!(fetched.refused[0].starts_with("iteration-2.tap: a symlink"));
        assert!(fetched.refused[1].starts_with("fifo.log: a FIFO"));
        assert!(fetched.refused[2].starts_with("evil.html: not a record"));
        assert!(fetched.refused[3].starts_with(".hidden.log: not a plain name"));
        let on_disk: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(on_disk.len(), 2, "{on_disk:?}");
    }

    #[test]
    fn too_many_bytes_or_entries_is_misbehaviour() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap().join("run");
        let into = PrivateDir::open(&root, Create::Yes).unwrap();
        // A header that claims more than the cap (no data follows).
        let mut h = header(EntryType::Regular, answer::RUN_DIR_BYTES + 1, 0);
        h.set_path("gate.log").unwrap();
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend([0u8; 1024]);
        match unpack(&mut bytes.as_slice(), &into) {
            Err(Unpack::Misbehaved(why)) => assert!(why.contains("64.0 MiB"), "{why}"),
            _ => panic!("a run dir over the cap is misbehaviour"),
        }
        let many = tar_of(|b| {
            for i in 0..=answer::RUN_DIR_ENTRIES {
                b.append_data(
                    &mut header(EntryType::Regular, 0, 0),
                    format!("f{i}.txt"),
                    io::empty(),
                )
                .unwrap();
            }
        });
        let into = PrivateDir::open(&root.join("again"), Create::Yes).unwrap();
        match unpack(&mut many.as_slice(), &into) {
            Err(Unpack::Misbehaved(why)) => assert!(why.contains("1000 entries"), "{why}"),
            _ => panic!("a run dir over the entry cap is misbehaviour"),
        }
    }
}
