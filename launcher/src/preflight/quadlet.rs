//! Orphan quadlet units: a `*.container` whose container name matches no
//! container podman knows (the app was removed, its unit left behind), and
//! user units stuck activating.
//!
//! The app user writes its own quadlet dir: a unit there is opened without
//! following a symlink and without blocking (a FIFO must not hang the
//! preflight, and with it a `run` holding the node lock), read only when it
//! is a regular file, and only up to UNIT_MAX_BYTES.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::containers::Container;
use super::{Check, Verdict};
use crate::node_cmd;

/// The system's and the app user's quadlet dirs.
pub fn quadlet_dirs() -> Vec<PathBuf> {
    let home = crate::app_user::home();
    vec![
        PathBuf::from("/etc/containers/systemd"),
        home.join(".config/containers/systemd"),
    ]
}

/// The container name a quadlet file gives its container: `ContainerName=`
/// in `[Container]`, else quadlet's default `systemd-<unit name>`.
fn container_name(path: &Path, text: &str) -> String {
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Container]" {
            if let Some(value) = line.strip_prefix("ContainerName=") {
                return value.trim().to_string();
            }
        }
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    format!("systemd-{stem}")
}

/// A quadlet unit is a few hundred bytes; more is not a unit.
const UNIT_MAX_BYTES: u64 = 1 << 20;

/// A unit file's text, when it is a regular file of sane size; else why not.
fn read_unit(path: &Path) -> Result<String, String> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > UNIT_MAX_BYTES {
        return Err(format!("{} bytes, more than a unit holds", meta.len()));
    }
    let mut text = String::new();
    file.take(UNIT_MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(text)
}

pub fn orphans(containers: &Result<Vec<Container>, String>) -> Check {
    let id = "quadlet-orphans";
    let mut units = Vec::new();
    let mut unreadable = Vec::new();
    for dir in quadlet_dirs() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = items
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "container"))
            .collect();
        files.sort();
        for path in files {
            match read_unit(&path) {
                Ok(text) => units.push((container_name(&path, &text), path)),
                Err(why) => unreadable.push(format!("{}: passed over: {why}", path.display())),
            }
        }
    }
    if units.is_empty() {
        return Check::new(
            id,
            Verdict::Skip,
            "no quadlet .container units found".into(),
        )
        .evidence(
            quadlet_dirs()
                .iter()
                .map(|d| format!("looked in {}", d.display())),
        )
        .evidence(unreadable);
    }
    let containers = match containers {
        Ok(c) => c,
        Err(why) => {
            return Check::new(
                id,
                Verdict::Skip,
                format!(
                    "{} quadlet units, but no container list: {why}",
                    units.len()
                ),
            )
        }
    };
    let known: HashSet<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let orphans: Vec<&(String, PathBuf)> = units
        .iter()
        .filter(|(name, _)| !known.contains(name.as_str()))
        .collect();
    if orphans.is_empty() {
        return Check::new(
            id,
            Verdict::Pass,
            format!("all {} quadlet units have their container", units.len()),
        )
        .evidence(unreadable);
    }
    Check::new(
        id,
        Verdict::Fail,
        format!(
            "{} quadlet unit(s) name a container podman does not know: {}; remove the unit or reinstall its app",
            orphans.len(),
            orphans.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    )
    .evidence(orphans.iter().map(|(name, path)| {
        format!("{}: ContainerName {name}, not in podman ps -a", path.display())
    }))
    .evidence(unreadable)
}

pub fn activating(timeout: std::time::Duration) -> Check {
    let id = "units-activating";
    if !node_cmd::exists("systemctl") {
        return Check::new(id, Verdict::Skip, "systemctl is not installed".into());
    }
    let out = node_cmd::run(
        &[
            "systemctl",
            "--user",
            "list-units",
            "--type=service",
            "--state=activating",
            "--no-legend",
            "--plain",
        ],
        timeout,
    );
    if !out.ok {
        return Check::new(
            id,
            Verdict::Skip,
            format!("`{}` failed: {}", out.shown, out.stderr.trim()),
        );
    }
    let stuck: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if stuck.is_empty() {
        return Check::new(id, Verdict::Pass, "no user unit is stuck activating".into());
    }
    Check::new(
        id,
        Verdict::Fail,
        format!(
            "{} unit(s) stuck activating: {}",
            stuck.len(),
            stuck.join(", ")
        ),
    )
    .evidence([format!("{}:", out.shown)])
    .evidence(out.stdout.lines().map(|l| format!("  {}", l.trim())))
}
