//! The fleet's third phase: the roster's cross-node suites, once every
//! gate target passed (a node that was not ready skips only the suites
//! that span it). One suite at a time, each on the node it names, started
//! like a gate (`run --cross SUITE --peers JSON`, detached, followed,
//! fetched into `cross/<suite>/` of the fleet dir).
//!
//! What a node learns of its peers: their names, roles, RPC addresses as it
//! reaches them, and their package versions, which the fleet reads from
//! each peer over that peer's own connection with that peer's own password
//! just before the suite starts. A password goes only to its own node.

use super::answer;
use super::progress::Progress;
use super::remote_run::{self, Started, StepResult};
use super::roster::{Cross, Node};
use super::ssh::{quote, Pool, Ssh};
use super::state::{CrossOutcome, CrossResult, Outcome, Phase, Shared, StepKind, StepStart};
use super::Plan;
use crate::cross_suite::{PackageVersion, Peer};
use crate::exit::ExitStatus;
use crate::runs::RunState;

/// The result a suite starts from, before anything is known.
pub fn pending(c: &Cross) -> CrossResult {
    CrossResult {
        suite: c.suite.clone(),
        nodes: c.node_names(),
        runs_on: c.runs_on.clone(),
        outcome: CrossOutcome::Pending,
        reason: None,
        tests_passed: 0,
        tests_failed: 0,
        seconds: 0,
        run_id: None,
        failing: Vec::new(),
        started_unix: None,
        tests: Vec::new(),
    }
}

/// Why no suite may start: the gate targets that neither passed nor were
/// merely not ready ("n101 failed, n102 unreachable"), if any.
fn blocking(shared: &Shared) -> Option<String> {
    let state = shared.snapshot();
    let blocking: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.gate && !matches!(n.phase, Phase::Passed | Phase::NotReady))
        .map(|n| format!("{} {}", n.name, n.phase.word()))
        .collect();
    (!blocking.is_empty()).then(|| blocking.join(", "))
}

/// Runs every suite of the roster, one after another.
pub fn run_phase(plan: &Plan, shared: &Shared, pool: &Pool, progress: &Progress) {
    for c in &plan.roster.cross {
        let fresh = pending(c);
        if shared.snapshot().cross(&c.suite).is_none() {
            shared.update_cross(&fresh, |_| {});
        }
    }
    let blocked = blocking(shared);
    for c in &plan.roster.cross {
        let fresh = pending(c);
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
        let run_id = previous
            .and_then(|p| p.run_id)
            .unwrap_or_else(|| format!("{}-cross-{}", plan.fleet_id, c.suite));
        shared.update_cross(&fresh, |r| {
            r.outcome = CrossOutcome::Running;
            r.reason = None;
            r.run_id = Some(run_id.clone());
            r.started_unix.get_or_insert(crate::clock::now_unix());
        });
        let began = StepStart::now();
        let ended = run_suite(plan, shared, pool, progress, c, &run_id);
        shared.update_cross(&fresh, |r| match ended {
            Ok(done) => *r = done,
            Err((_, why)) => {
                r.outcome = CrossOutcome::Failed;
                r.reason = Some(answer::tame_str(&why));
                r.seconds = crate::clock::now_unix().saturating_sub(r.started_unix.unwrap_or(0));
            }
        });
        // On the timeline of every node the suite spans: each took part.
        if let Some(done) = shared.snapshot().cross(&c.suite).cloned() {
            let verdict = match done.outcome {
                CrossOutcome::Passed => Outcome::Passed,
                _ => Outcome::Failed,
            };
            let detail = match &done.reason {
                Some(why) => why.clone(),
                None => format!(
                    "{} passed, {} failed, on {}",
                    done.tests_passed, done.tests_failed, done.runs_on
                ),
            };
            let step = began.ended(StepKind::Cross(c.suite.clone()), verdict, Some(detail));
            for member in &c.nodes {
                shared.update(&member.name, |n| {
                    n.steps
                        .retain(|s| s.kind != StepKind::Cross(c.suite.clone()));
                    n.steps.push(step.clone());
                });
            }
        }
    }
}

/// A node of the roster by name (the roster was checked: it is there).
fn roster_node<'a>(plan: &'a Plan, name: &str) -> &'a Node {
    plan.roster.node(name).expect("a checked roster")
}

/// Opens (or reuses) `name`'s connection for `work`, then puts it back.
fn on_node<T>(
    plan: &Plan,
    shared: &Shared,
    pool: &Pool,
    progress: &Progress,
    name: &str,
    work: impl FnOnce(&mut Ssh) -> StepResult<T>,
) -> StepResult<T> {
    let node = roster_node(plan, name);
    let mut ssh = pool.take(node);
    let before = ssh.connections;
    let done = remote_run::connect(&mut ssh, name, progress).and_then(|()| work(&mut ssh));
    let opened = ssh.connections - before;
    if opened > 0 {
        shared.update(name, |n| n.connections += opened);
    }
    pool.put(name, ssh);
    done
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

fn password(node: &Node) -> StepResult<crate::secret::Secret> {
    node.password
        .as_ref()
        .ok_or((Phase::Error, format!("{}: no password source", node.name)))?
        .read()
        .map_err(|e| (Phase::Error, format!("{}: password: {e}", node.name)))
}

/// Starts (or follows) the suite on its node, and reads how it ended.
fn run_suite(
    plan: &Plan,
    shared: &Shared,
    pool: &Pool,
    progress: &Progress,
    c: &Cross,
    run_id: &str,
) -> StepResult<CrossResult> {
    let host = roster_node(plan, &c.runs_on);
    let launcher = quote(&host.remote_path);
    let resumed = on_node(plan, shared, pool, progress, &c.runs_on, |ssh| {
        Ok(remote_run::find(ssh, &launcher, run_id)
            .ok()
            .flatten()
            .is_some())
    })?;
    if resumed {
        progress.event(&c.runs_on, &format!("resuming cross suite {}", c.suite));
    } else {
        let mut peers = Vec::new();
        for m in c.nodes.iter().filter(|m| m.name != c.runs_on) {
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
        let peers = serde_json::to_string(&peers).map_err(|e| (Phase::Error, e.to_string()))?;
        let mut command = remote_run::command(plan, host, run_id, 1);
        // Its node's preflight ran once already, as its gate started in
        // this fleet run (a suite runs only once every node it spans
        // passed): one preflight per node.
        if shared.snapshot().node(&c.runs_on).gate {
            command.push_str(" --skip-preflight");
        }
        command.push_str(&format!(
            " --cross {} --peers {} --node-name {}",
            quote(&c.suite),
            quote(&peers),
            quote(&c.runs_on)
        ));
        let own = c.nodes.iter().find(|m| m.name == c.runs_on);
        if let Some(role) = own.and_then(|m| m.role.as_ref()) {
            command.push_str(&format!(" --role {}", quote(role)));
        }
        let secret = password(host)?;
        on_node(plan, shared, pool, progress, &c.runs_on, |ssh| {
            let started = remote_run::start(ssh, &launcher, &command, run_id, secret.expose())
                .map_err(|(phase, why)| (phase, format!("starting suite {}: {why}", c.suite)))?;
            match started {
                Started::Running(_) => Ok(()),
                Started::NotReady(report) => Err((
                    Phase::NotReady,
                    format!("preflight failed at start: {}", report.counts()),
                )),
            }
        })?;
        progress.event(
            &c.runs_on,
            &format!("cross suite {} started: run {run_id}", c.suite),
        );
    }
    let local = plan.dir.join("cross").join(&c.suite);
    let started = std::time::Instant::now();
    let record = on_node(plan, shared, pool, progress, &c.runs_on, |ssh| {
        let record =
            remote_run::follow(ssh, &c.runs_on, &launcher, run_id, 1, progress, &mut |_| {})?;
        remote_run::fetch(ssh, &record, &local)?;
        Ok(record)
    })?;
    // The node's word on how long the suite took, no longer than this host
    // saw it run (for a resumed suite: since it was first started).
    let seen = match shared
        .snapshot()
        .cross(&c.suite)
        .and_then(|r| r.started_unix)
    {
        Some(first) => crate::clock::now_unix().saturating_sub(first),
        None => started.elapsed().as_secs(),
    };
    let mut result = shared
        .snapshot()
        .cross(&c.suite)
        .cloned()
        .unwrap_or_else(|| pending(c));
    let tests = record.tests.clone().unwrap_or_default();
    result.outcome = match record.state {
        RunState::Passed => CrossOutcome::Passed,
        _ => CrossOutcome::Failed,
    };
    result.tests_passed = tests.passed;
    result.tests_failed = tests.failed;
    result.failing = tests.failing.clone();
    // The suite's own TAP (`$ARCHY_GATE_RUN_DIR/cross.tap`), read once.
    result.tests = super::fetch::tap_tests(&local.join("cross.tap"));
    result.seconds = record.duration_secs.unwrap_or(0).min(seen);
    let reason = match record.state {
        RunState::Passed => None,
        RunState::Failed if !tests.failing.is_empty() => {
            Some(format!("failed: {}", tests.failing.join("; ")))
        }
        state => Some(format!(
            "the run ended {state}{}",
            record
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
    };
    result.reason = reason.map(|r| answer::tame_str(&r));
    Ok(result)
}
