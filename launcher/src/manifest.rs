//! `manifest.json`: what a bundle holds, written by `pack`, first entry of
//! every payload, and the yardstick every unpacked byte is checked against.
//!
//! Also the rules a path inside a bundle must follow ([`check_path`]) and the
//! whole-manifest invariants ([`Manifest::validate`]) that make unpacking
//! safe: sorted unique paths, every parent a listed directory, nothing
//! beneath a symlink, every symlink resolving inside the tree.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::trailer::FORMAT_VERSION;

/// The payload's first entry.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The entry script when the stage names none.
pub const DEFAULT_ENTRY: &str = "lifecycle/run-gate.sh";
/// The longest file name Linux filesystems hold.
pub const NAME_MAX: usize = 255;
/// The longest path, or symlink target, a bundle may hold. Linux refuses a
/// path of PATH_MAX (4096) bytes or more in any call; half of it leaves room
/// for the directory `extract` or `run` unpacks into, so that what `verify`
/// accepts can always be written.
pub const PATH_MAX_BYTES: usize = 2048;
/// A manifest larger than this is refused before it is read. A real one is
/// tens of KiB; parsing takes about six times its size in memory, and
/// verify must stay within 100 MiB whatever the bundle says.
pub const MANIFEST_MAX_BYTES: u64 = 4 << 20;
/// A manifest listing more entries is refused: a gate bundle holds
/// hundreds, and each entry costs extract a file system call or three.
pub const ENTRIES_MAX: usize = 10_000;
/// A bundle declaring more than this many unpacked bytes is refused: a gate
/// bundle is tens of MiB, so this only stops a size bomb.
pub const UNPACKED_MAX_BYTES: u64 = 4 << 30;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub entry: String,
    pub source_date_epoch: u64,
    pub tools: Vec<Tool>,
    /// What the bundle was built from: builder, pinned inputs, the suite's digest.
    pub sources: BTreeMap<String, String>,
    /// The cross-node suites beside the gate (`fleet`'s third phase), found by
    /// `pack` at `<entry dir>/cross/<name>/run.sh`. Absent from a bundle without
    /// any, so such a bundle's manifest is what it always was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross: Vec<CrossSuite>,
    pub files: Vec<Entry>,
}

/// A cross-node suite: run on one node of a fleet, told about its peers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrossSuite {
    /// What a roster's `[[cross]] suite` names.
    pub name: String,
    /// Its entry script, like the gate's `entry`.
    pub entry: String,
    /// Its steps across nodes (`scenario.toml` beside run.sh), when it has
    /// them; a suite without runs its run.sh on one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<crate::scenario::Scenario>,
}

impl CrossSuite {
    /// The suite's dir in the bundle (`lifecycle/cross/NAME`).
    pub fn dir(&self) -> &str {
        parent_of(&self.entry)
    }
}

/// The dir under the entry's dir that holds the cross-node suites.
pub const CROSS_DIR: &str = "cross";
/// Each cross-node suite's entry script, in its own dir.
pub const CROSS_ENTRY: &str = "run.sh";

/// A cross suite's name: it becomes a run id, a dir of the fleet dir and a
/// command-line word, so letters, digits, '-' and '_' only.
pub fn check_cross_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cross suite name {name:?}: start with a letter or digit, then letters, digits, '-' and '_' (at most 64)"
        ))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        size: u64,
        mode: Mode,
        sha256: String,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Dir { .. } => "directory",
            Entry::File { .. } => "file",
            Entry::Symlink { .. } => "symlink",
        }
    }
}

/// A file's mode after normalisation: executable or not, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Executable,
    Regular,
}

impl Mode {
    pub fn from_permissions(mode: u32) -> Mode {
        if mode & 0o111 != 0 {
            Mode::Executable
        } else {
            Mode::Regular
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            Mode::Executable => 0o755,
            Mode::Regular => 0o644,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.bits())
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        match String::deserialize(d)?.as_str() {
            "0755" => Ok(Mode::Executable),
            "0644" => Ok(Mode::Regular),
            other => Err(serde::de::Error::custom(format!(
                "mode {other:?} is neither \"0755\" nor \"0644\""
            ))),
        }
    }
}

/// Checks one path inside a bundle: relative, `/`-separated, no `.`, `..` or
/// empty components, no NUL, not the reserved manifest name.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.starts_with('/') {
        return Err(format!("absolute path {path:?}"));
    }
    if path.contains('\0') {
        return Err(format!("path {path:?} contains a NUL byte"));
    }
    if path.len() > PATH_MAX_BYTES {
        return Err(format!(
            "a path of {} bytes, longer than the {PATH_MAX_BYTES} a bundle may hold",
            path.len()
        ));
    }
    for component in path.split('/') {
        match component {
            ".." => return Err(format!("path traversal in {path:?} (a `..` component)")),
            "" | "." => return Err(format!("path {path:?} is not in normal form")),
            c if c.len() > NAME_MAX => {
                return Err(format!(
                    "path {path:?} has a name longer than {NAME_MAX} bytes"
                ))
            }
            _ => {}
        }
    }
    if path == MANIFEST_NAME {
        return Err(format!(
            "{MANIFEST_NAME} is reserved for the manifest itself"
        ));
    }
    Ok(())
}

/// The directory holding `path`, `""` for the root.
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Why a symlink is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Absolute, empty, or climbs above the root.
    Leaves,
    /// Resolving it goes through another symlink, whose target the lexical
    /// check cannot see: `a -> ..` makes `b -> a/..` escape.
    Through(String),
    /// A NUL byte: no filesystem can hold it.
    Nul,
    /// Longer than PATH_MAX_BYTES, or a component longer than NAME_MAX:
    /// no filesystem could resolve it.
    TooLong,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Leaves => f.write_str("points outside the bundle"),
            LinkError::Through(via) => write!(f, "resolves through the symlink {via:?}"),
            LinkError::Nul => f.write_str("has a NUL byte in its target"),
            LinkError::TooLong => write!(
                f,
                "has a target longer than {PATH_MAX_BYTES} bytes or a name in it longer than {NAME_MAX}"
            ),
        }
    }
}

/// Where a symlink at `link` pointing at `target` lands, lexically. It must
/// stay inside the tree and may not pass through a symlink on the way (the
/// last component may itself be one).
pub fn resolve_link(
    link: &str,
    target: &str,
    is_symlink: &dyn Fn(&str) -> bool,
) -> Result<String, LinkError> {
    if target.contains('\0') {
        return Err(LinkError::Nul);
    }
    if target.is_empty() || target.starts_with('/') {
        return Err(LinkError::Leaves);
    }
    if target.len() > PATH_MAX_BYTES || target.split('/').any(|c| c.len() > NAME_MAX) {
        return Err(LinkError::TooLong);
    }
    // The resolved path grows and shrinks in one buffer, `ends` marking
    // where each component ends: rebuilding it per component made a long
    // target quadratic.
    let mut here = String::new();
    let mut ends: Vec<usize> = Vec::new();
    fn push(here: &mut String, ends: &mut Vec<usize>, component: &str) {
        if !here.is_empty() {
            here.push('/');
        }
        here.push_str(component);
        ends.push(here.len());
    }
    for component in parent_of(link).split('/').filter(|c| !c.is_empty()) {
        push(&mut here, &mut ends, component);
    }
    let components: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    for (i, component) in components.iter().enumerate() {
        if *component == ".." {
            ends.pop().ok_or(LinkError::Leaves)?;
            let keep = ends.last().copied().unwrap_or(0);
            here.truncate(keep);
            continue;
        }
        push(&mut here, &mut ends, component);
        if i + 1 < components.len() && is_symlink(&here) {
            return Err(LinkError::Through(here));
        }
    }
    Ok(here)
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        out.push(b'\n');
        out
    }

    /// Total bytes of regular files.
    pub fn unpacked_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|e| match e {
                Entry::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }

    /// The invariants that make unpacking safe and the manifest meaningful.
    /// Each error says what is wrong with which path.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT_VERSION {
            return Err(format!(
                "manifest format {} is not supported by this launcher (it reads format {FORMAT_VERSION})",
                self.format
            ));
        }
        if self.files.len() > ENTRIES_MAX {
            return Err(format!(
                "manifest lists {} entries, more than the {ENTRIES_MAX} a bundle may hold",
                self.files.len()
            ));
        }
        let mut kinds: HashMap<&str, &Entry> = HashMap::new();
        let mut previous: Option<&str> = None;
        let mut declared: u64 = 0;
        for entry in &self.files {
            let path = entry.path();
            check_path(path).map_err(|e| format!("manifest lists a bad path: {e}"))?;
            if let Some(prev) = previous {
                if prev == path {
                    return Err(format!("manifest lists {path:?} twice"));
                }
                if prev.as_bytes() > path.as_bytes() {
                    return Err(format!(
                        "manifest is not sorted: {prev:?} comes before {path:?}"
                    ));
                }
            }
            previous = Some(path);
            let parent = parent_of(path);
            if !parent.is_empty() {
                match kinds.get(parent) {
                    Some(Entry::Dir { .. }) => {}
                    Some(Entry::Symlink { .. }) => {
                        return Err(format!("{path:?} lies beneath the symlink {parent:?}"))
                    }
                    _ => {
                        return Err(format!(
                            "{path:?} has no directory entry for its parent {parent:?}"
                        ))
                    }
                }
            }
            match entry {
                Entry::File { size, sha256, .. } => {
                    if crate::digest::parse_hex(sha256).is_none() || sha256.len() != 64 {
                        return Err(format!("{path:?} has a malformed sha256 {sha256:?}"));
                    }
                    declared = declared.saturating_add(*size);
                }
                Entry::Symlink { .. } | Entry::Dir { .. } => {}
            }
            kinds.insert(path, entry);
        }
        let is_symlink = |p: &str| matches!(kinds.get(p), Some(Entry::Symlink { .. }));
        for entry in &self.files {
            if let Entry::Symlink { path, target } = entry {
                resolve_link(path, target, &is_symlink)
                    .map_err(|e| format!("symlink {path:?} -> {target:?} {e}"))?;
            }
        }
        if declared > UNPACKED_MAX_BYTES {
            return Err(format!(
                "manifest declares {declared} unpacked bytes, more than the {UNPACKED_MAX_BYTES} a bundle may hold"
            ));
        }
        match kinds.get(self.entry.as_str()) {
            Some(Entry::File { .. }) => {}
            _ => {
                return Err(format!(
                    "the entry script {:?} is not a file in the bundle",
                    self.entry
                ))
            }
        }
        let mut names = std::collections::HashSet::new();
        for suite in &self.cross {
            check_cross_name(&suite.name)?;
            if !names.insert(suite.name.as_str()) {
                return Err(format!(
                    "manifest lists the cross suite {:?} twice",
                    suite.name
                ));
            }
            if !matches!(kinds.get(suite.entry.as_str()), Some(Entry::File { .. })) {
                return Err(format!(
                    "the cross suite {:?}'s entry {:?} is not a file in the bundle",
                    suite.name, suite.entry
                ));
            }
            if let Some(scenario) = &suite.scenario {
                let dir = suite.dir();
                let is_file = |rel: &str| {
                    matches!(
                        kinds.get(format!("{dir}/{rel}").as_str()),
                        Some(Entry::File { .. })
                    )
                };
                scenario
                    .check(&is_file)
                    .map_err(|e| format!("the cross suite {:?}'s scenario: {e}", suite.name))?;
            }
        }
        Ok(())
    }

    /// The cross suite called `name`, or an error naming what the bundle has.
    pub fn cross_suite(&self, name: &str) -> Result<&CrossSuite, String> {
        self.cross.iter().find(|s| s.name == name).ok_or_else(|| {
            format!(
                "the bundle has no cross suite {name:?}; it has {}",
                self.cross_names()
            )
        })
    }

    /// "federation, upgrade", or "none" for people.
    pub fn cross_names(&self) -> String {
        if self.cross.is_empty() {
            "none".into()
        } else {
            self.cross
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The dir of cross suites for a gate entry: `lifecycle/cross`.
    pub fn cross_dir_for(entry: &str) -> String {
        match parent_of(entry) {
            "" => CROSS_DIR.to_string(),
            dir => format!("{dir}/{CROSS_DIR}"),
        }
    }

    /// Where a cross suite named `name` lives, by the rule `pack` finds them.
    pub fn cross_entry_for(entry: &str, name: &str) -> String {
        format!("{}/{name}/{CROSS_ENTRY}", Manifest::cross_dir_for(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_or_confuse_the_tree_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "..",
            "a//b",
            "./a",
            "a/",
            "manifest.json",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["bin/jq", "lib/bats-core/bin/bats", "a..b", ".hidden"] {
            assert!(check_path(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn symlinks_resolve_lexically_inside_the_tree() {
        let none = |_: &str| false;
        let ok = |link, target| resolve_link(link, target, &none);
        assert_eq!(
            ok("bin/bats", "../lib/bats-core/bin/bats"),
            Ok("lib/bats-core/bin/bats".into())
        );
        assert_eq!(ok("a", "b"), Ok("b".into()));
        assert_eq!(ok("bin/x", "../../etc"), Err(LinkError::Leaves));
        assert_eq!(ok("x", "/etc/passwd"), Err(LinkError::Leaves));
        assert_eq!(ok("x", ""), Err(LinkError::Leaves));
        assert_eq!(ok("x", "a\0b"), Err(LinkError::Nul));
        assert_eq!(ok("a/b/x", "../c/../../d"), Ok("d".into()));
        for long in ["y".repeat(NAME_MAX + 1), "y/".repeat(PATH_MAX_BYTES)] {
            assert_eq!(resolve_link("x", &long, &none), Err(LinkError::TooLong));
        }
        let up_is_link = |p: &str| p == "bin/up";
        assert_eq!(
            resolve_link("out", "bin/up/..", &up_is_link),
            Err(LinkError::Through("bin/up".into()))
        );
        assert_eq!(
            resolve_link("alias", "bin/up", &up_is_link),
            Ok("bin/up".into())
        );
    }
}
