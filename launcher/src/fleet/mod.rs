//! `launcher fleet`: the on-node gate across a roster. First the plan (who
//! runs, in which phase, with what), then the run: primaries first, the rest
//! only once every primary passed, at most `--jobs` nodes at a time, each
//! on its own single SSH connection; then the cross-node suites, once every
//! gate target passed. State and reports live in the fleet dir, so `fleet
//! status` works mid-run and a restarted run picks up.

mod answer;
pub mod attest;
mod cross_phase;
pub mod events;
mod fetch;
pub mod from_runs;
mod html;
pub mod inventory;
mod matrix;
mod node;
mod peer_cert;
pub mod progress;
mod remote_dir;
mod remote_run;
pub mod report;
mod retry;
pub mod roster;
mod scenario_run;
pub mod select;
mod ssh;
mod ssh_command;
pub mod state;
mod upload;
pub mod view;

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};

use crate::bundle::Bundle;
use crate::digest::to_hex;
use crate::exit::{fail, ExitStatus};
use crate::printable::printable;
use crate::private_fs::{Create, PrivateDir};
use progress::Progress;
use roster::{Node, Role, Roster};
use state::{FleetState, NodeState, Phase, Shared};

/// Everything a fleet run needs, computed before any node is touched.
pub struct Plan {
    pub roster: Roster,
    pub bundle: Utf8PathBuf,
    pub bundle_sha256: String,
    pub bundle_size: u64,
    pub fleet_id: String,
    /// The fleet dir: state.json, reports, each node's fetched run.
    pub dir: Utf8PathBuf,
    pub jobs: usize,
    /// Each `[[cross]]` suite's scenario from the bundle (None: it has
    /// none, and runs its run.sh on one node).
    pub scenarios: std::collections::BTreeMap<String, Option<crate::scenario::Scenario>>,
    /// `--cross-only`: the gates are taken as the fleet dir's last run
    /// left them; only the cross phase runs.
    pub cross_only: bool,
    /// `--limit`, `--only`: which gate nodes this run drives.
    pub selection: select::Selection,
    /// The gate nodes this run drives (all of them unless `selection`
    /// says otherwise: set by `choose`).
    pub selected: BTreeSet<String>,
    /// `--max-fail`: no new node starts once this many failed.
    pub max_fail: Option<usize>,
    /// `--wait-ready`: how long a not-ready node is waited for, and how
    /// often it is checked meanwhile.
    pub wait_ready: Option<WaitReady>,
}

/// `--wait-ready DURATION --ready-every DURATION`.
#[derive(Clone, Copy, Debug)]
pub struct WaitReady {
    pub total: Duration,
    pub every: Duration,
}

/// The fleet dir, opened by the trust rule (private_fs.rs) that `run` uses for
/// its work dir on a node: every dir on the way owned by root or us and
/// writable by no one else unless sticky, and the dir itself ours alone
/// (0700, made so with `Create::Yes`). A default dir relative to a shared
/// current dir (a CI runner's /tmp) that another user made first, or made
/// a symlink, is refused, never written through.
pub fn private_dir(dir: &Utf8Path, create: Create) -> anyhow::Result<PrivateDir> {
    PrivateDir::open(dir, create).map_err(|e| {
        let what = if e.missing {
            "start a run there with `launcher fleet run`, or name another with --out DIR"
        } else {
            "remove it, or name a dir of your own with --out DIR"
        };
        fail(ExitStatus::Environment, format!("fleet dir {e}: {what}"))
    })
}

/// The fleet dir for a roster and bundle: stable, so a restart finds it.
pub fn default_dir(roster: &Utf8Path, sha256: Option<&str>) -> Utf8PathBuf {
    let stem = roster.file_stem().unwrap_or("fleet");
    let base = Utf8PathBuf::from("archy-gate-fleet").join(stem);
    match sha256 {
        Some(sha) => base.join(&sha[..12]),
        None => base,
    }
}

impl Plan {
    pub fn new(
        roster: Roster,
        bundle: &Utf8Path,
        out: Option<&Utf8Path>,
        jobs: usize,
    ) -> anyhow::Result<Plan> {
        let roster_path = &roster.path.clone();
        let opened = Bundle::open(bundle)?;
        let checked = opened.check_digests(None)?;
        // Refused here, before any node is touched, as each node would.
        if let Some(key) = roster.trust {
            let trust = crate::trusted_keys::Trust {
                keys: vec![key],
                source: format!("{roster_path} (trust)"),
            };
            crate::trusted_keys::check(&opened, Some(&trust))?;
        }
        // A suite the bundle lacks, or whose roles the roster does not
        // give, would fail on the node, hours in: say so now.
        let mut scenarios = std::collections::BTreeMap::new();
        if !roster.cross.is_empty() {
            let manifest = crate::unpack::read_manifest_only(&opened)?;
            for c in &roster.cross {
                let refuse = |why: String| {
                    fail(
                        ExitStatus::Usage,
                        format!("roster {roster_path}: [[cross]] suite {}: {why}", c.suite),
                    )
                };
                let suite = manifest.cross_suite(&c.suite).map_err(refuse)?;
                if let Some(scenario) = &suite.scenario {
                    check_roles(c, scenario).map_err(refuse)?;
                }
                scenarios.insert(c.suite.clone(), suite.scenario.clone());
            }
        }
        let sha = to_hex(&checked.whole_sha256);
        let dir = out
            .map(Utf8Path::to_owned)
            .unwrap_or_else(|| default_dir(roster_path, Some(&sha)));
        // Unique per fleet run: a node keeps every run's record, and a later
        // fleet run of the same bundle must not collide with an earlier one.
        let fleet_id = format!(
            "fleet-{}-{}",
            &sha[..8],
            crate::clock::compact(crate::clock::now_unix())
        );
        let selected = roster
            .nodes
            .iter()
            .filter(|n| n.gate)
            .map(|n| n.name.clone())
            .collect();
        Ok(Plan {
            roster,
            selected,
            bundle: bundle.to_owned(),
            bundle_sha256: sha,
            bundle_size: opened.len,
            fleet_id,
            dir,
            jobs,
            scenarios,
            cross_only: false,
            selection: select::Selection::default(),
            max_fail: None,
            wait_ready: None,
        })
    }

    /// The fleet dir's last state, when it is of this bundle.
    pub fn last_state(&self) -> Option<FleetState> {
        FleetState::load(&self.dir)
            .ok()
            .filter(|s| s.bundle_sha256 == self.bundle_sha256)
    }

    /// Narrows the run to the nodes `selection` picks (`--only` reads the
    /// fleet dir's last state of this bundle).
    pub fn choose(&mut self, selection: select::Selection) -> anyhow::Result<()> {
        let last = self.last_state();
        self.selected = selection.nodes(&self.roster, last.as_ref())?;
        self.selection = selection;
        Ok(())
    }

    pub fn primaries(&self) -> Vec<&Node> {
        self.roster
            .nodes
            .iter()
            .filter(|n| n.gate && n.role == Role::Primary)
            .collect()
    }

    pub fn others(&self) -> Vec<&Node> {
        self.roster
            .nodes
            .iter()
            .filter(|n| n.gate && n.role != Role::Primary)
            .collect()
    }

    /// The plan in words: what `fleet run` would do, touching no node.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "fleet plan for {} with {} ({}, sha256 {})\nfleet dir: {}; at most {} node(s) at a time, one SSH connection each\n",
            self.roster.path,
            self.bundle,
            crate::human::size(self.bundle_size),
            self.bundle_sha256,
            self.dir,
            self.jobs
        );
        if self.cross_only {
            out.push_str(
                "--cross-only: no gate runs; only phase 3, on the gates the fleet dir's last run of this bundle passed\n",
            );
        }
        match &self.roster.trust {
            Some(key) => out.push_str(&format!(
                "every node checks the bundle is signed by key {} (run --trust)\n",
                key.id()
            )),
            None => out.push_str(
                "no trusted key ([defaults] trust): nodes check the pin, not who signed it\n",
            ),
        }
        if !self.selection.is_all() {
            let names: Vec<&str> = self.selected.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "{}: this run drives {}; the other nodes keep what the fleet dir's last run found, and are not connected to\n",
                self.selection.describe(),
                if names.is_empty() { "no node".to_string() } else { names.join(", ") }
            ));
        }
        if let Some((_, origins)) = &self.roster.inventory {
            out.push_str(&origins.describe());
        }
        if let Some(n) = self.max_fail {
            out.push_str(&format!(
                "--max-fail {n}: no new node starts once {n} failed (failed, unreachable, error); the running ones finish\n"
            ));
        }
        if let Some(w) = self.wait_ready {
            out.push_str(&format!(
                "--wait-ready {}: a node that is not ready is checked again every {} until it is (then its gate runs) or the time is up\n",
                crate::clock::duration(w.total.as_secs()),
                crate::clock::duration(w.every.as_secs())
            ));
        }
        let phases = [
            (
                "phase 1: primary nodes, which must all pass",
                self.primaries(),
            ),
            (
                "phase 2: the rest, once the primaries passed",
                self.others(),
            ),
        ];
        for (title, nodes) in phases {
            out.push_str(&format!("\n{title}:\n"));
            if nodes.is_empty() {
                out.push_str("  (none)\n");
            }
            for n in nodes {
                if !self.selected.contains(&n.name) {
                    out.push_str(&format!(
                        "  {:<12} {:<8} not selected: keeps its last result, not connected to\n",
                        n.name,
                        n.role.word()
                    ));
                    continue;
                }
                let password = n.password.as_ref().map(|p| {
                    let ok = p.read().is_ok();
                    format!(
                        "{} ({})",
                        p.describe(),
                        if ok { "found" } else { "MISSING" }
                    )
                });
                out.push_str(&format!(
                    "  {:<12} {:<8} ssh {}: upload to {} if it differs, preflight, then {} iteration(s){} against {}; password from {}\n",
                    n.name,
                    n.role.word(),
                    n.ssh,
                    n.remote_path,
                    n.iterations,
                    if n.allow_destructive { " with destructive tests" } else { "" },
                    n.host,
                    password.unwrap_or_default()
                ));
            }
        }
        out.push_str("\nphase 3: cross-node suites, once every gate target passed:\n");
        if self.roster.cross.is_empty() {
            out.push_str("  (none)\n");
        }
        for c in &self.roster.cross {
            let nodes: Vec<String> = c
                .nodes
                .iter()
                .map(|m| match &m.role {
                    Some(role) => format!("{} ({role})", m.name),
                    None => m.name.clone(),
                })
                .collect();
            let Some(Some(scenario)) = self.scenarios.get(&c.suite) else {
                out.push_str(&format!(
                    "  {:<12} spans {}; runs on {} (lifecycle/cross/{}/run.sh), told each peer's RPC host and package versions, never its password; skipped if a node it spans is not ready\n",
                    c.suite,
                    nodes.join(", "),
                    c.runs_on,
                    c.suite
                ));
                continue;
            };
            out.push_str(&format!(
                "  {:<12} a scenario of {} steps across {}; each step a run on its nodes with their own passwords, told each peer's RPC host and package versions, never its password; the next stage once every step of the last passed; skipped if a node it spans is not ready\n",
                c.suite,
                scenario.steps.len(),
                nodes.join(", "),
            ));
            for (i, step) in scenario.steps.iter().enumerate() {
                let on: Vec<String> = c
                    .nodes
                    .iter()
                    .filter(|m| m.role.as_ref().is_some_and(|r| step.on.contains(r)))
                    .map(|m| m.name.clone())
                    .collect();
                let on = if on.is_empty() {
                    "where its fault ran".to_string()
                } else {
                    format!("on {}", on.join(", "))
                };
                out.push_str(&format!(
                    "      step {}: {} {on}: {}\n",
                    i + 1,
                    step.name,
                    printable(&step.describe())
                ));
            }
        }
        let listed: Vec<&str> = self
            .roster
            .nodes
            .iter()
            .filter(|n| !n.gate)
            .map(|n| n.name.as_str())
            .collect();
        if !listed.is_empty() {
            out.push_str(&format!(
                "\nnot gate targets (listed only): {}\n",
                listed.join(", ")
            ));
        }
        out
    }

    /// How each gate node is reached: the master's ssh command line and
    /// the options ssh resolves for it (`ssh -G`: nothing is connected),
    /// and which config files apply, in which order.
    pub fn describe_ssh(&self) -> anyhow::Result<String> {
        let dir = tempfile::Builder::new()
            .prefix("agf-")
            .tempdir()
            .context("cannot make a private dir for the ssh config")?;
        let setup = ssh_command::Setup::new(
            dir.path(),
            self.roster.ssh_config.as_deref(),
            self.roster.password_vars(),
        )
        .context("cannot write the ssh config wrapper")?;
        let mut out = String::from(
            "\nssh, per node (one master connection each; sessions go only through it):\n",
        );
        out.push_str(&match &self.roster.ssh_config {
            Some(file) => format!(
                "  config: {file} first (the roster's ssh_config), then ~/.ssh/config, then /etc/ssh/ssh_config\n"
            ),
            None => "  config: ~/.ssh/config, then /etc/ssh/ssh_config (ssh's own)\n".to_string(),
        });
        out.push_str(&format!(
            "  removed from every ssh's environment: {}\n",
            setup.scrub.join(", ")
        ));
        let shown_dir = dir.path().display().to_string();
        for n in self.roster.nodes.iter().filter(|n| n.gate) {
            let control = dir.path().join(format!("{}.sock", n.name));
            let args: Vec<String> = setup
                .master_args(&control, &n.ssh_options)
                .into_iter()
                .map(|a| a.replace(&shown_dir, "<private dir>"))
                .collect();
            out.push_str(&format!(
                "  {}: ssh {} -- {}\n",
                n.name,
                args.join(" "),
                n.ssh
            ));
            match setup.effective(&n.ssh, &n.ssh_options) {
                Ok(options) => {
                    for (key, value) in options {
                        let value = value.replace(&shown_dir, "<private dir>");
                        out.push_str(&format!("      {key} {}\n", printable(&value)));
                    }
                }
                Err(why) => out.push_str(&format!("      ({})\n", printable(&why))),
            }
        }
        Ok(out)
    }

    fn fresh_state(&self) -> FleetState {
        let now = crate::clock::rfc3339(crate::clock::now_unix());
        FleetState {
            roster: self.roster.path.clone(),
            bundle: self.bundle.clone(),
            bundle_sha256: self.bundle_sha256.clone(),
            bundle_size: self.bundle_size,
            started: now.clone(),
            updated: now,
            nodes: self
                .roster
                .nodes
                .iter()
                .map(|n| {
                    let phase = if n.gate {
                        Phase::Pending
                    } else {
                        Phase::Skipped
                    };
                    let mut state =
                        NodeState::new(&n.name, n.role, n.gate, &n.ssh, n.iterations, phase);
                    state.reason = (!n.gate).then(|| "not a gate target (gate = false)".into());
                    state
                })
                .collect(),
            cross: self
                .roster
                .cross
                .iter()
                .map(state::CrossResult::pending)
                .collect(),
        }
    }
}

/// A scenario's roles against the roster's `[[cross]]` nodes: every role
/// it names is held by a node, a fault's peer role by exactly one, and no
/// node runs two steps of one stage (a node runs one run at a time).
fn check_roles(c: &roster::Cross, scenario: &crate::scenario::Scenario) -> Result<(), String> {
    let holders = |role: &str| -> Vec<&str> {
        c.nodes
            .iter()
            .filter(|m| m.role.as_deref() == Some(role))
            .map(|m| m.name.as_str())
            .collect()
    };
    for role in scenario.roles() {
        if holders(&role).is_empty() {
            return Err(format!(
                "its scenario has steps for role {role:?}, which none of its nodes holds: \
                 give a node that role (nodes = [{{ name = \"…\", role = \"{role}\" }}])"
            ));
        }
    }
    for step in &scenario.steps {
        if let crate::scenario::Action::Fault { peer, .. } = &step.action {
            if holders(peer).len() != 1 {
                return Err(format!(
                    "step {}: a fault acts against one node, and role {peer:?} is held by {}",
                    step.name,
                    holders(peer).len()
                ));
            }
        }
    }
    for stage in scenario.stages() {
        let mut seen: Vec<&str> = Vec::new();
        for &i in &stage {
            for role in &scenario.steps[i].on {
                for node in holders(role) {
                    if seen.contains(&node) {
                        return Err(format!(
                            "node {node} would run two steps of one stage at once (step {}): \
                             a node runs one step at a time",
                            scenario.steps[i].name
                        ));
                    }
                    seen.push(node);
                }
            }
        }
    }
    Ok(())
}

/// Runs the plan, telling `events` (if any) of every change. Returns the
/// final state.
pub fn run(plan: &Plan, events: Option<events::Stream>) -> anyhow::Result<FleetState> {
    private_dir(&plan.dir, Create::Yes)?;
    // The ssh control sockets and master logs: a fresh 0700 dir with a name
    // nobody can guess or plant first (mkdtemp), short enough for a socket
    // path, removed when the run ends.
    let control = tempfile::Builder::new()
        .prefix("agf-")
        .tempdir()
        .context("cannot make a private dir for the ssh control sockets")?;
    let mut state = match FleetState::load(&plan.dir) {
        Ok(mut previous) if plan.cross_only && previous.bundle_sha256 == plan.bundle_sha256 => {
            eprintln!(
                "fleet: --cross-only: relying on the gates of the fleet run started {} ({}); no gate runs",
                previous.started,
                plan.dir.join(state::STATE_FILE)
            );
            // The suites run afresh; the gates stay as that run left them.
            previous.cross = plan.roster.cross.iter().map(state::CrossResult::pending).collect();
            previous
        }
        _ if plan.cross_only => {
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "--cross-only: {} holds no fleet run of this bundle (sha256 {}): run `launcher fleet run` without it first",
                    plan.dir,
                    &plan.bundle_sha256[..12]
                ),
            ))
        }
        Ok(previous) if previous.bundle_sha256 == plan.bundle_sha256 => {
            if plan.selection.only.is_empty() {
                eprintln!("fleet: picking up the run in {}", plan.dir);
            } else {
                eprintln!(
                    "fleet: {}: read the fleet run started {} ({}): running {} again; the other nodes keep their results",
                    plan.selection.describe(),
                    previous.started,
                    plan.dir.join(state::STATE_FILE),
                    names_or_none(&plan.selected)
                );
            }
            previous
        }
        _ => plan.fresh_state(),
    };
    // Roster edits since: new nodes and suites join, and what is settled stays settled.
    let fresh = plan.fresh_state();
    for node in &fresh.nodes {
        if !state.nodes.iter().any(|n| n.name == node.name) {
            state.nodes.push(node.clone());
        }
    }
    // --only: the nodes it picked start over; they were settled.
    if !plan.selection.only.is_empty() {
        for n in state.nodes.iter_mut() {
            if plan.selected.contains(&n.name) {
                if let Some(fresh) = fresh.nodes.iter().find(|f| f.name == n.name) {
                    *n = fresh.clone();
                }
            }
        }
    }
    // A node left out that no run has reached yet: say why it has no result.
    if !plan.selection.is_all() {
        let why = format!("not selected ({})", plan.selection.describe());
        for n in state.nodes.iter_mut() {
            if n.gate && !plan.selected.contains(&n.name) && n.phase == Phase::Pending {
                n.phase = Phase::Skipped;
                n.reason = Some(why.clone());
            }
        }
    }
    state
        .cross
        .retain(|c| plan.roster.cross.iter().any(|r| r.suite == c.suite));
    for suite in fresh.cross {
        if state.cross(&suite.suite).is_none() {
            state.cross.push(suite);
        }
    }
    state.save(&plan.dir)?;
    let progress = Progress::new(events.as_ref().is_some_and(events::Stream::is_stdout));
    let told = progress.clone();
    let events = events.map(|stream| Arc::new(events::Writer::start(stream, plan, &state)));
    let told_events = events.clone();
    let shared =
        Shared::new(plan.dir.clone(), state).with_listener(Arc::new(move |state: &FleetState| {
            if let Some(events) = &told_events {
                events.changed(state);
            }
            told.changed(state);
        }));
    let setup = ssh_command::Setup::new(
        control.path(),
        plan.roster.ssh_config.as_deref(),
        plan.roster.password_vars(),
    )
    .context("cannot write the ssh config wrapper")?;
    let pool = ssh::Pool::new(setup);
    let done = AtomicBool::new(false);
    let failed = Failures::default();

    thread::scope(|scope| {
        // The lines a person watches, redrawn from the state.
        scope.spawn(|| {
            let every = if progress.is_live() {
                progress::REFRESH_LIVE
            } else {
                progress::REFRESH_PLAIN
            };
            while !done.load(Ordering::SeqCst) {
                progress.refresh(&shared.snapshot());
                thread::sleep(every);
            }
        });
        let run = Run {
            plan,
            shared: &shared,
            pool: &pool,
            progress: &progress,
            failed: &failed,
        };
        run.phases();
        done.store(true, Ordering::SeqCst);
    });
    progress.finish(&shared.snapshot());
    pool.close_all();
    drop(control);
    let state = shared.snapshot();
    report::write(&plan.dir, &state)?;
    if let Some(events) = events {
        events.finish(&state);
    }
    Ok(state)
}

fn names_or_none(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "no node".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The nodes of this run that failed (failed, unreachable, error…), for
/// `--max-fail`.
#[derive(Default)]
struct Failures(Mutex<Vec<String>>);

impl Failures {
    fn add(&self, what: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(what);
    }

    /// Why no new node may start, once `--max-fail` is reached.
    fn stop(&self, max: Option<usize>) -> Option<String> {
        let failed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let max = max?;
        (failed.len() >= max).then(|| {
            format!(
                "not started: --max-fail {max} reached ({})",
                failed.join(", ")
            )
        })
    }
}

/// A phase that counts against `--max-fail`: the node was tried and did
/// not pass for a reason other than not being ready.
fn is_failure(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Failed | Phase::Error | Phase::Interrupted | Phase::Unreachable | Phase::Misbehaving
    )
}

/// One fleet run under way: what every node worker shares.
struct Run<'a> {
    plan: &'a Plan,
    shared: &'a Shared,
    pool: &'a ssh::Pool,
    progress: &'a Progress,
    failed: &'a Failures,
}

/// The nodes a phase still has to drive, and how many are being driven:
/// a node waiting for readiness goes back in, to be taken again at its
/// next check, and frees its worker meanwhile.
struct Queue {
    nodes: VecDeque<(Node, Instant)>,
    in_flight: usize,
}

enum Pick {
    Node(Node),
    /// Nothing due yet: a waiting node's next check is ahead.
    Later,
    Done,
}

impl Run<'_> {
    /// Primaries, then the rest once they passed, then the cross suites.
    fn phases(&self) {
        let (plan, shared) = (self.plan, self.shared);
        if plan.cross_only {
            cross_phase::run_phase(plan, shared, self.pool, self.progress);
            return;
        }
        let chosen = |nodes: Vec<&Node>| -> Vec<Node> {
            nodes
                .into_iter()
                .filter(|n| plan.selected.contains(&n.name))
                .cloned()
                .collect()
        };
        let primaries = plan.primaries();
        self.phase(chosen(primaries.clone()));
        let snapshot = shared.snapshot();
        let blocking: Vec<String> = primaries
            .iter()
            .map(|n| snapshot.node(&n.name))
            .filter(|n| n.phase != Phase::Passed)
            .map(|n| format!("{} {}", n.name, n.phase.word()))
            .collect();
        let others = chosen(plan.others());
        if blocking.is_empty() {
            self.phase(others);
        } else {
            let why = format!("not started: primary {} did not pass", blocking.join(", "));
            self.progress.event("fleet", &why);
            for n in &others {
                shared.update(&n.name, |s| {
                    if !s.phase.is_settled() {
                        s.phase = Phase::Skipped;
                        s.reason = Some(why.clone());
                    }
                });
            }
        }
        if !plan.roster.cross.is_empty() {
            cross_phase::run_phase(plan, shared, self.pool, self.progress);
        }
    }

    /// Drives `nodes` with at most `plan.jobs` at a time; settled ones are
    /// kept. A node that a cross suite spans, or that waits for readiness,
    /// keeps its connection.
    fn phase(&self, nodes: Vec<Node>) {
        let snapshot = self.shared.snapshot();
        let now = Instant::now();
        let queue = Mutex::new(Queue {
            nodes: nodes
                .into_iter()
                .filter(|n| !snapshot.node(&n.name).phase.is_settled())
                .map(|n| (n, now))
                .collect(),
            in_flight: 0,
        });
        thread::scope(|scope| {
            for _ in 0..self.plan.jobs {
                scope.spawn(|| self.worker(&queue));
            }
        });
    }

    fn worker(&self, queue: &Mutex<Queue>) {
        loop {
            let (pick, stopped) = self.pick(queue);
            if let Some((why, nodes)) = stopped {
                for n in nodes {
                    self.shared.update(&n.name, |s| {
                        s.phase = Phase::Skipped;
                        s.reason = Some(why.clone());
                    });
                }
            }
            let node = match pick {
                Pick::Node(node) => node,
                Pick::Later => {
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Pick::Done => break,
            };
            let mut ssh = self.pool.take(&node);
            node::drive(self.plan, &node, self.shared, &mut ssh, self.progress);
            let again = node::wait_for_ready(self.plan, &node, self.shared, self.progress);
            let phase = self.shared.snapshot().node(&node.name).phase;
            if is_failure(phase) {
                self.failed.add(format!("{} {}", node.name, phase.word()));
            }
            if again.is_some() || self.plan.roster.cross.iter().any(|c| c.spans(&node.name)) {
                self.pool.put(&node.name, ssh);
            } else {
                ssh.close();
            }
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = again {
                q.nodes.push_back((node, at));
            }
            q.in_flight -= 1;
        }
    }

    /// The next node due, if any; and, once `--max-fail` is reached, the
    /// nodes that will not start, with why.
    fn pick(&self, queue: &Mutex<Queue>) -> (Pick, Option<(String, Vec<Node>)>) {
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut stopped = None;
        if !q.nodes.is_empty() {
            if let Some(why) = self.failed.stop(self.plan.max_fail) {
                let nodes: Vec<Node> = q.nodes.drain(..).map(|(n, _)| n).collect();
                stopped = Some((why, nodes));
            }
        }
        let now = Instant::now();
        let pick = match q.nodes.iter().position(|(_, due)| *due <= now) {
            Some(at) => {
                q.in_flight += 1;
                Pick::Node(q.nodes.remove(at).expect("found").0)
            }
            None if q.nodes.is_empty() && q.in_flight == 0 => Pick::Done,
            None => Pick::Later,
        };
        (pick, stopped)
    }
}

/// The fleet dir to read for status and report: given; else the one of
/// `bundle` for the roster; else the latest for the roster.
pub fn find_dir(
    roster: &Utf8Path,
    out: Option<&Utf8Path>,
    bundle: Option<&Utf8Path>,
) -> anyhow::Result<Utf8PathBuf> {
    let dir = find_unchecked(roster, out, bundle)?;
    private_dir(&dir, Create::No)?;
    Ok(dir)
}

fn find_unchecked(
    roster: &Utf8Path,
    out: Option<&Utf8Path>,
    bundle: Option<&Utf8Path>,
) -> anyhow::Result<Utf8PathBuf> {
    if let Some(dir) = out {
        return Ok(dir.to_owned());
    }
    if let Some(bundle) = bundle {
        let sha = to_hex(&Bundle::open(bundle)?.check_digests(None)?.whole_sha256);
        let dir = default_dir(roster, Some(&sha));
        if !dir.join(state::STATE_FILE).is_file() {
            return Err(fail(
                ExitStatus::Usage,
                format!(
                    "no fleet run of {bundle} (sha256 {}) for {roster}: {dir} holds none; start one with `launcher fleet run`",
                    &sha[..12]
                ),
            ));
        }
        return Ok(dir);
    }
    let base = default_dir(roster, None);
    let latest = std::fs::read_dir(&base)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(state::STATE_FILE).is_file())
        .max_by_key(|e| {
            e.path()
                .join(state::STATE_FILE)
                .metadata()
                .and_then(|m| m.modified())
                .ok()
        });
    latest
        .and_then(|e| Utf8PathBuf::from_path_buf(e.path()).ok())
        .ok_or_else(|| {
            fail(
                ExitStatus::Usage,
                format!(
                    "no fleet run for {roster} under {base}: start one with `launcher fleet run`"
                ),
            )
        })
}
