//! The fleet's third phase: the roster's cross-node suites, once every
//! gate target passed (a node that was not ready skips only the suites
//! that span it). One suite at a time: a suite with a scenario runs its
//! steps across its nodes (`scenario_run.rs`); one without runs on the
//! node it names, started like a gate (`run --cross SUITE --peers JSON`,
//! detached, followed, fetched into `cross/<suite>/` of the fleet dir).
//!
//! What a node learns of its peers: their names, roles, RPC addresses as it
//! reaches them, their package versions and the certificate each serves,
//! which the fleet reads from each peer over that peer's own connection with
//! that peer's own password just before the suite starts. A password goes
//! only to its own node.

use super::answer;
use super::progress::Progress;
use super::remote_run::{self, on_node, password, roster_node, StepResult};
use super::roster::{Cross, Node};
use super::scenario_run::SuiteRun;
use super::ssh::{quote, Pool, Ssh};
use super::state::{CrossOutcome, CrossResult, Phase, Shared};
use super::Plan;
use crate::cross_suite::{PackageVersion, Peer};
use crate::exit::ExitStatus;

/// Why no suite may start: the gate targets that neither passed nor were
/// merely not ready ("n101 failed, n102 unreachable"), if any. (A node
/// still waiting for readiness when the phase starts is not ready.)
fn blocking(shared: &Shared) -> Option<String> {
    let state = shared.snapshot();
    let blocking: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.gate && !matches!(n.phase, Phase::Passed | Phase::NotReady | Phase::Waiting))
        .map(|n| format!("{} {}", n.name, n.phase.word()))
        .collect();
    (!blocking.is_empty()).then(|| blocking.join(", "))
}

/// Runs every suite of the roster, one after another.
pub fn run_phase(plan: &Plan, shared: &Shared, pool: &Pool, progress: &Progress) {
    for c in &plan.roster.cross {
        let fresh = CrossResult::pending(c);
        if shared.snapshot().cross(&c.suite).is_none() {
            shared.update_cross(&fresh, |_| {});
        }
    }
    let blocked = blocking(shared);
    for c in &plan.roster.cross {
        let fresh = CrossResult::pending(c);
        let previous = shared.snapshot().cross(&c.suite).cloned();
        if previous.as_ref().is_some_and(CrossResult::is_settled) {
            continue;
        }
        let skip = |why: String| {
            shared.update_cross(&fresh, |r| {
                r.outcome = CrossOutcome::Skipped;
                r.reason = Some(why);
            })
        };
        if let Some(why) = &blocked {
            skip(format!("not started: gate {why}"));
            continue;
        }
        let state = shared.snapshot();
        let not_ready: Vec<String> = c
            .nodes
            .iter()
            .map(|m| state.node(&m.name))
            .filter(|n| n.phase != Phase::Passed)
            .map(|n| {
                format!(
                    "{} not ready: {}",
                    n.name,
                    n.reason.as_deref().unwrap_or(&n.phase.word())
                )
            })
            .collect();
        if !not_ready.is_empty() {
            skip(not_ready.join("; "));
            continue;
        }
        shared.update_cross(&fresh, |r| {
            r.outcome = CrossOutcome::Running;
            r.reason = None;
            r.started_unix.get_or_insert(crate::clock::now_unix());
        });
        let ended = run_suite(plan, shared, pool, progress, c);
        shared.update_cross(&fresh, |r| match ended {
            Ok(done) => *r = done,
            Err((_, why)) => {
                r.outcome = CrossOutcome::Failed;
                r.reason = Some(answer::tame_str(&why));
                r.seconds = crate::clock::now_unix().saturating_sub(r.started_unix.unwrap_or(0));
            }
        });
    }
}

/// The packages and versions a peer's RPC lists, read on the peer itself
/// with its own password.
fn peer_packages(ssh: &mut Ssh, node: &Node) -> StepResult<Vec<PackageVersion>> {
    let password = password(node)?;
    let out = remote_run::retry(
        ssh,
        &format!(
            "{} rpc --password-stdin --host {} server.get-state",
            quote(&node.remote_path),
            quote(&node.host)
        ),
        password.expose().as_bytes(),
        answer::JSON,
    )
    .map_err(|e| e.step(&node.name))?;
    if out.code != ExitStatus::Success.code() {
        return Err((
            Phase::Error,
            format!(
                "cannot read {}'s package versions: {}",
                node.name,
                remote_run::last_line(&out.stderr)
            ),
        ));
    }
    #[derive(serde::Deserialize)]
    struct State {
        packages: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        id: String,
        version: String,
    }
    let state: State = answer::json(&out.stdout).map_err(|e| {
        (
            Phase::Error,
            format!("{}'s server.get-state has no package list ({e})", node.name),
        )
    })?;
    Ok(state
        .packages
        .into_iter()
        .map(|p| PackageVersion {
            id: p.id,
            version: p.version,
        })
        .collect())
}

/// Reads what the suite's nodes are to each other, then runs it: its
/// scenario's steps across them, or its run.sh on the node it names.
fn run_suite(
    plan: &Plan,
    shared: &Shared,
    pool: &Pool,
    progress: &Progress,
    c: &Cross,
) -> StepResult<CrossResult> {
    let scenario = plan.scenarios.get(&c.suite).and_then(Option::as_ref);
    let mut peers = Vec::new();
    for m in &c.nodes {
        // A suite without a scenario runs on one node: it needs the others.
        if scenario.is_none() && m.name == c.runs_on {
            continue;
        }
        let peer = roster_node(plan, &m.name);
        let (packages, cert) = on_node(plan, shared, pool, progress, &m.name, |ssh| {
            Ok((
                peer_packages(ssh, peer)?,
                super::peer_cert::read(ssh, peer)?,
            ))
        })?;
        peers.push(Peer {
            name: m.name.clone(),
            host: peer.peer_host.clone().expect("a checked roster"),
            role: m.role.clone(),
            packages: Some(packages),
            cert: Some(cert.pem),
            cert_sha256: Some(cert.sha256.as_str().to_owned()),
        });
    }
    let suite = SuiteRun {
        plan,
        shared,
        pool,
        progress,
        cross: c,
        scenario,
        peers,
    };
    let what = match scenario {
        Some(s) => format!("scenario {} ({} steps)", c.suite, s.steps.len()),
        None => format!("cross suite {}", c.suite),
    };
    progress.event(&c.runs_on, &format!("{what} started"));
    Ok(suite.run())
}
