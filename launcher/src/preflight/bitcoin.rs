//! Bitcoin fully synced and archival: `getblockchaininfo` says
//! `initialblockdownload: false` and `pruned: false`. The command is found
//! on the node (bitcoin-cli, or inside a bitcoin container through podman)
//! or given; a node without bitcoin skips the check.

use serde_json::Value;

use super::containers::Container;
use super::{Check, Verdict};
use crate::node_cmd;

const ID: &str = "bitcoin-synced";

/// The command that prints getblockchaininfo, and how it was found.
fn command(
    configured: Option<&str>,
    containers: &Result<Vec<Container>, String>,
) -> Option<Vec<String>> {
    if let Some(cmd) = configured {
        return Some(cmd.split_whitespace().map(String::from).collect());
    }
    if node_cmd::exists("bitcoin-cli") {
        return Some(vec!["bitcoin-cli".into()]);
    }
    let container = containers
        .as_ref()
        .ok()?
        .iter()
        .find(|c| c.running && c.name.contains("bitcoin"))?;
    Some(vec![
        "podman".into(),
        "exec".into(),
        container.name.clone(),
        "bitcoin-cli".into(),
    ])
}

pub fn check(
    configured: Option<&str>,
    containers: &Result<Vec<Container>, String>,
    timeout: std::time::Duration,
) -> Check {
    let Some(mut argv) = command(configured, containers) else {
        return Check::new(
            ID,
            Verdict::Skip,
            "no bitcoin on this node (no bitcoin-cli, no bitcoin container)".to_string(),
        );
    };
    argv.push("getblockchaininfo".into());
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = node_cmd::run(&args, timeout);
    if !out.ok {
        return Check::new(
            ID,
            Verdict::Fail,
            format!("`{}` failed: {}", out.shown, first_line(&out.stderr)),
        );
    }
    let info: Value = match serde_json::from_str(&out.stdout) {
        Ok(v) => v,
        Err(e) => {
            return Check::new(
                ID,
                Verdict::Fail,
                format!("`{}` did not print JSON: {e}", out.shown),
            )
        }
    };
    let num = |k: &str| info.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (blocks, headers) = (num("blocks"), num("headers"));
    let progress = info
        .get("verificationprogress")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let ibd = info.get("initialblockdownload").and_then(Value::as_bool);
    let pruned = info.get("pruned").and_then(Value::as_bool);
    let evidence = format!(
        "{}: blocks {blocks}, headers {headers}, verificationprogress {progress}, initialblockdownload {}, pruned {}",
        out.shown,
        ibd.map_or("?".into(), |b| b.to_string()),
        pruned.map_or("?".into(), |b| b.to_string()),
    );
    let (verdict, reason) = match (ibd, pruned) {
        (Some(true), _) => (
            Verdict::Fail,
            format!(
                "still in initial block download: {blocks} of {headers} blocks, {:.1}% verified; not a gate target until synced",
                progress * 100.0
            ),
        ),
        (_, Some(true)) => (
            Verdict::Fail,
            "the node is pruned: the gate needs an archival node".to_string(),
        ),
        (Some(false), Some(false)) => (
            Verdict::Pass,
            format!("synced and archival at block {blocks} ({:.2}% verified)", progress * 100.0),
        ),
        _ => (
            Verdict::Fail,
            "getblockchaininfo lacks initialblockdownload or pruned".to_string(),
        ),
    };
    Check::new(ID, verdict, reason).evidence([evidence])
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
