//! The node's containers as rootless podman lists them, and the check that
//! every running one belongs to an installed package (an adopted container,
//! started by hand with plain podman, is a backend no package manages).

use std::collections::HashSet;

use serde_json::Value;

use super::{Check, Verdict};
use crate::node_cmd;

#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    pub running: bool,
}

/// `podman ps -a --format json`, or why it could not be had.
pub fn list(timeout: std::time::Duration) -> Result<Vec<Container>, String> {
    if !node_cmd::exists("podman") {
        return Err("podman is not installed".into());
    }
    let out = node_cmd::run(&["podman", "ps", "-a", "--format", "json"], timeout);
    if !out.ok {
        return Err(format!("`{}` failed: {}", out.shown, out.stderr.trim()));
    }
    let parsed: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("`{}` did not print JSON: {e}", out.shown))?;
    Ok(parsed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let name = match c.get("Names") {
                Some(Value::Array(names)) => names.first()?.as_str()?.to_string(),
                Some(Value::String(name)) => name.clone(),
                _ => return None,
            };
            // podman 4 says "running"; older ones a number or "Up …" in Status.
            let running = match c.get("State") {
                Some(Value::String(s)) => s == "running",
                _ => c
                    .get("Status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with("Up")),
            };
            Some(Container { name, running })
        })
        .collect())
}

/// Running containers that no installed package owns, by the backend's state.
pub fn adopted(
    containers: &Result<Vec<Container>, String>,
    state: &Result<Value, String>,
) -> Check {
    let id = "adopted-containers";
    let containers = match containers {
        Ok(c) => c,
        Err(why) => return Check::new(id, Verdict::Skip, format!("no container list: {why}")),
    };
    let state = match state {
        Ok(s) => s,
        Err(why) => return Check::new(id, Verdict::Skip, format!("no package list: {why}")),
    };
    let owned: HashSet<&str> = state
        .get("packages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .flat_map(|p| {
            p.get("containers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    let adopted: Vec<&Container> = containers
        .iter()
        .filter(|c| c.running && !owned.contains(c.name.as_str()))
        .collect();
    let running = containers.iter().filter(|c| c.running).count();
    if adopted.is_empty() {
        return Check::new(
            id,
            Verdict::Pass,
            format!("all {running} running containers belong to installed packages"),
        );
    }
    let names: Vec<&str> = adopted.iter().map(|c| c.name.as_str()).collect();
    Check::new(
        id,
        Verdict::Fail,
        format!(
            "{} running container(s) belong to no installed package: {}; install them as packages or remove them",
            adopted.len(),
            names.join(", ")
        ),
    )
    .evidence(
        adopted
            .iter()
            .map(|c| format!("podman ps: {} is running; no package in server.get-state lists it", c.name)),
    )
}
