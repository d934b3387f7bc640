//! One cross suite's scenario, driven across the nodes it spans: stage by
//! stage, each step a remote run (`remote_run`) on every node holding one
//! of its roles, all of a stage at once, the next stage only once every
//! step of this one passed (the barrier). The control node of the NixOS test
//! driver and of Jepsen, over SSH to live nodes.
//!
//! Between steps the fleet carries values: what a step published comes back
//! in its run record, is checked (names, size, no node's password: the fleet
//! knows them all) and handed to every later step. An `eventually` step is
//! started again, as a new run, until it passes or its deadline passes. When
//! a step fails the rest are skipped, and what was set up is undone: the
//! cleanup steps of the steps that started (each on its own nodes: what a
//! step sets up may reach past the nodes it ran on), and the heals owed by
//! faults (on the nodes that ran the fault), latest set-up first. A suite without
//! a scenario is one step: its run.sh on the roster's `runs_on` node.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use super::answer;
use super::progress::Progress;
use super::remote_run::{self, on_node, password, roster_node, Started, StepResult};
use super::roster::Cross;
use super::ssh::{quote, Pool, Ssh};
use super::state::{
    CrossOutcome, CrossResult, Phase, ScenarioStepRun, Shared, StepKind, StepStart,
};
use super::Plan;
use crate::cross_suite::Peer;
use crate::cross_values::{self, Values};
use crate::runs::{RunRecord, RunState};
use crate::scenario::{Action, Scenario, Step};

/// What a suite's run needs: where it is, and what its nodes are.
pub struct SuiteRun<'a> {
    pub plan: &'a Plan,
    pub shared: &'a Shared,
    pub pool: &'a Pool,
    pub progress: &'a Progress,
    pub cross: &'a Cross,
    /// The bundle's scenario; None: the suite's run.sh on `runs_on`.
    pub scenario: Option<&'a Scenario>,
    /// Every node of the suite as a peer (name, RPC host, role, packages,
    /// certificate); a step on a node is told all but itself.
    pub peers: Vec<Peer>,
}

/// One step on one node, as it ended.
struct Ran {
    node: String,
    record: Option<RunRecord>,
    run: ScenarioStepRun,
}

impl SuiteRun<'_> {
    fn steps(&self) -> Vec<Step> {
        match self.scenario {
            Some(s) => s.steps.clone(),
            None => Scenario::single("").steps,
        }
    }

    /// The nodes a step runs on, in roster order.
    fn nodes_of(&self, step: &Step) -> Vec<String> {
        if self.scenario.is_none() {
            return vec![self.cross.runs_on.clone()];
        }
        self.cross
            .nodes
            .iter()
            .filter(|m| m.role.as_ref().is_some_and(|r| step.on.contains(r)))
            .map(|m| m.name.clone())
            .collect()
    }

    fn role_of(&self, node: &str) -> Option<String> {
        self.cross
            .nodes
            .iter()
            .find(|m| m.name == node)
            .and_then(|m| m.role.clone())
    }

    /// Runs the scenario to its end; the suite's result is kept current in
    /// the shared state the whole way.
    pub fn run(&self) -> CrossResult {
        let steps = self.steps();
        let stages = match self.scenario {
            Some(s) => s.stages(),
            None => vec![vec![0]],
        };
        let mut values = Values::new();
        // Where each step started: what a cleanup or a heal undoes.
        let mut ran_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut healed: Vec<String> = Vec::new();
        let mut failure: Option<String> = None;
        self.set_pending(&steps);
        for stage in &stages {
            if let Some(why) = &failure {
                for &i in stage {
                    if !steps[i].is_cleanup() {
                        self.skip(&steps[i], &format!("not started: {why}"));
                    }
                }
                continue;
            }
            let work: Vec<(&Step, String, bool)> = stage
                .iter()
                .flat_map(|&i| {
                    let step = &steps[i];
                    let (nodes, heal) = match &step.action {
                        Action::Heal { of } => (ran_on.get(of).cloned().unwrap_or_default(), true),
                        _ => (self.nodes_of(step), false),
                    };
                    nodes.into_iter().map(move |n| (step, n, heal))
                })
                .collect();
            for (step, node, _) in &work {
                ran_on
                    .entry(step.name.clone())
                    .or_default()
                    .push(node.clone());
                if let Action::Heal { of } = &step.action {
                    healed.push(of.clone());
                }
            }
            let ended = self.run_at_once(&work, &values);
            for done in ended {
                let mut run = done.run;
                let published = done
                    .record
                    .as_ref()
                    .and_then(|r| r.cross.as_ref())
                    .and_then(|c| c.step.as_ref())
                    .and_then(|s| s.published.clone())
                    .unwrap_or_default();
                if run.outcome == CrossOutcome::Passed {
                    if let Err(why) = self.take_values(&mut values, &published, &done.node) {
                        run.outcome = CrossOutcome::Failed;
                        run.reason = Some(why);
                        // The refused value came back in the fetched record:
                        // it stays nowhere here.
                        let _ = std::fs::remove_file(
                            self.local(&run.step, &done.node).join("run.json"),
                        );
                    } else {
                        run.published = published.keys().cloned().collect();
                    }
                }
                if run.outcome != CrossOutcome::Passed && failure.is_none() {
                    failure = Some(format!("step {} failed on {}", run.step, done.node));
                }
                self.put_step(run, Some(&values));
            }
        }
        // What was set up and not yet undone, undone in reverse order.
        let undo = self.undo_list(&steps, &ran_on, &healed, failure.is_some());
        for (step, nodes, heal) in undo {
            let work: Vec<(&Step, String, bool)> =
                nodes.into_iter().map(|n| (&step, n, heal)).collect();
            for done in self.run_at_once(&work, &values) {
                let mut run = done.run;
                if heal {
                    run.kind = "heal".into();
                }
                if run.outcome != CrossOutcome::Passed {
                    run.reason = Some(format!(
                        "cleanup failed: {}",
                        run.reason.unwrap_or_else(|| "see its log".into())
                    ));
                }
                self.put_step(run, None);
            }
        }
        self.settle(failure)
    }

    /// The cleanups owed at the end, in the order they run: after a
    /// failure, every cleanup step whose undone step ran and which did not
    /// run yet; always, every fault not healed. Latest set-up first.
    fn undo_list(
        &self,
        steps: &[Step],
        ran_on: &BTreeMap<String, Vec<String>>,
        healed: &[String],
        failed: bool,
    ) -> Vec<(Step, Vec<String>, bool)> {
        let mut owed: Vec<(usize, Step, Vec<String>, bool)> = Vec::new();
        for step in steps {
            let undone = match (&step.undoes, &step.action) {
                (Some(undone), _) if failed && !ran_on.contains_key(&step.name) => undone,
                (_, Action::Fault { .. }) if ran_on.contains_key(&step.name) => {
                    if healed.contains(&step.name) {
                        continue;
                    }
                    let at = steps.iter().position(|s| s.name == step.name).unwrap_or(0);
                    let mut heal = step.clone();
                    heal.eventually_secs = None;
                    owed.push((at, heal, ran_on[&step.name].clone(), true));
                    continue;
                }
                _ => continue,
            };
            // What a step set up may reach past its own nodes (A's request
            // lands on B): once it started anywhere, its cleanup runs on
            // every node the cleanup names.
            if !ran_on.contains_key(undone) {
                continue;
            }
            let nodes = self.nodes_of(step);
            let at = steps.iter().position(|s| &s.name == undone).unwrap_or(0);
            owed.push((at, step.clone(), nodes, false));
        }
        owed.sort_by_key(|o| std::cmp::Reverse(o.0));
        owed.into_iter().map(|(_, s, n, h)| (s, n, h)).collect()
    }

    /// Runs every (step, node) of `work` at once, each on its own thread.
    fn run_at_once(&self, work: &[(&Step, String, bool)], values: &Values) -> Vec<Ran> {
        thread::scope(|scope| {
            let handles: Vec<_> = work
                .iter()
                .map(|(step, node, heal)| {
                    scope.spawn(move || self.run_on(step, node, *heal, values))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a step's thread does not panic"))
                .collect()
        })
    }

    /// One step on one node: attempts until it passes, or until its
    /// `eventually` deadline (one attempt without one).
    fn run_on(&self, step: &Step, node: &str, heal: bool, values: &Values) -> Ran {
        let began = StepStart::now();
        let first = Instant::now();
        let deadline = step.eventually_secs.map(Duration::from_secs);
        let every = Duration::from_secs(step.every_secs());
        let mut run = ScenarioStepRun::pending(step, node, self.role_of(node));
        if heal {
            run.kind = "heal".into();
        }
        run.outcome = CrossOutcome::Running;
        run.started_unix = Some(began.unix());
        run.given = values.keys().cloned().collect();
        let mut record = None;
        loop {
            run.attempts += 1;
            let id = self.run_id(&step.name, node, run.attempts, heal);
            run.run_id = Some(id.clone());
            run.outcome = CrossOutcome::Running;
            self.put_step(run.clone(), None);
            if run.attempts > 1 {
                self.progress.event(
                    node,
                    &format!("step {} attempt {}", step.name, run.attempts),
                );
            }
            let ended = self.attempt(step, node, heal, run.attempts, values, &id);
            let again = match &ended {
                Ok(r) if r.state == RunState::Passed => false,
                // A link lost for good, or a node that misbehaves: trying
                // again would only ask it again.
                Err((Phase::Unreachable | Phase::Misbehaving, _)) => false,
                _ => deadline.is_some_and(|d| first.elapsed() + every < d),
            };
            match ended {
                Ok(r) => {
                    let tests = r.tests.clone().unwrap_or_default();
                    run.tests_passed = tests.passed;
                    run.tests_failed = tests.failed;
                    run.failing = tests.failing.clone();
                    run.node_started_unix = r.gate_started_unix;
                    run.node_ended_unix = r.ended_unix;
                    run.reason = reason_of(&r);
                    run.outcome = if r.state == RunState::Passed {
                        CrossOutcome::Passed
                    } else {
                        CrossOutcome::Failed
                    };
                    record = Some(r);
                }
                Err((phase, why)) => {
                    run.outcome = CrossOutcome::Failed;
                    run.reason = Some(answer::tame_str(&format!("{}: {why}", phase.word())));
                }
            }
            if !again {
                break;
            }
            thread::sleep(every);
        }
        if run.outcome != CrossOutcome::Passed {
            run.log_tail = log_tail(&self.local(&step.name, node).join(crate::runs::LOG));
        }
        run.seconds = first.elapsed().as_secs_f64();
        if run.outcome == CrossOutcome::Passed {
            run.passed_after_secs = Some(run.seconds);
        }
        let verdict = match run.outcome {
            CrossOutcome::Passed => crate::outcome::Outcome::Passed,
            _ => crate::outcome::Outcome::Failed,
        };
        let label = match self.scenario {
            Some(_) => format!("{}/{}", self.cross.suite, step.name),
            None => self.cross.suite.clone(),
        };
        let detail = match run.attempts {
            1 => run.reason.clone(),
            n => Some(format!(
                "{n} attempts{}",
                run.reason
                    .as_ref()
                    .map(|r| format!("; {r}"))
                    .unwrap_or_default()
            )),
        };
        let timed = began.ended(StepKind::Cross(label), verdict, detail);
        // On its node's lane of the timeline; a suite without a scenario on
        // the lane of every node it spans: each took part.
        let lanes = match self.scenario {
            Some(_) => vec![node.to_string()],
            None => self.cross.node_names(),
        };
        for lane in lanes {
            let timed = timed.clone();
            self.shared.update(&lane, |n| {
                n.steps.retain(|s| s.kind != timed.kind);
                n.steps.push(timed);
            });
        }
        Ran {
            node: node.to_string(),
            record,
            run,
        }
    }

    /// One attempt: start the run on the node, follow it, fetch its dir.
    fn attempt(
        &self,
        step: &Step,
        node: &str,
        heal: bool,
        attempt: u32,
        values: &Values,
        id: &str,
    ) -> StepResult<RunRecord> {
        let host = roster_node(self.plan, node);
        let launcher = quote(&host.remote_path);
        let mut command = remote_run::command(self.plan, host, id, 1);
        // Its node's preflight ran once already, as its gate started in
        // this fleet run: one preflight per node.
        if self.shared.snapshot().node(node).gate {
            command.push_str(" --skip-preflight");
        }
        let peers: Vec<&Peer> = self.peers.iter().filter(|p| p.name != node).collect();
        let peers = serde_json::to_string(&peers).map_err(|e| (Phase::Error, e.to_string()))?;
        command.push_str(&format!(
            " --cross {} --peers {} --node-name {}",
            quote(&self.cross.suite),
            quote(&peers),
            quote(node)
        ));
        if let Some(role) = self.role_of(node) {
            command.push_str(&format!(" --role {}", quote(&role)));
        }
        if self.scenario.is_some() {
            let values =
                serde_json::to_string(values).map_err(|e| (Phase::Error, e.to_string()))?;
            command.push_str(&format!(
                " --step {} --attempt {attempt} --values {}",
                quote(&step.name),
                quote(&values)
            ));
            if heal && !matches!(step.action, Action::Heal { .. }) {
                command.push_str(" --heal");
            }
            if !matches!(step.action, Action::Tests { .. }) || heal {
                command.push_str(" --allow-no-tests");
            }
        }
        let secret = password(host)?;
        let resumed = self.on_node(node, |ssh| {
            Ok(remote_run::find(ssh, &launcher, id)
                .ok()
                .flatten()
                .is_some())
        })?;
        if !resumed {
            self.on_node(node, |ssh| {
                match remote_run::start(ssh, &launcher, &command, id, secret.expose())
                    .map_err(|(p, why)| (p, format!("starting step {}: {why}", step.name)))?
                {
                    Started::Running(_) => Ok(()),
                    Started::NotReady(report) => Err((
                        Phase::NotReady,
                        format!("preflight failed at start: {}", report.counts()),
                    )),
                }
            })?;
        }
        let local = self.local(&step.name, node);
        self.on_node(node, |ssh| {
            let record =
                remote_run::follow(ssh, node, &launcher, id, 1, self.progress, &mut |_| {})?;
            remote_run::fetch(ssh, &record, &local)?;
            Ok(record)
        })
    }

    /// Where a step's run on a node is fetched: `cross/<suite>/` for a
    /// suite without a scenario (as it always was), else
    /// `cross/<suite>/<step>/<node>/`.
    fn local(&self, step: &str, node: &str) -> Utf8PathBuf {
        let dir = self.plan.dir.join("cross").join(&self.cross.suite);
        match self.scenario {
            Some(_) => dir.join(step).join(node),
            None => dir,
        }
    }

    /// The run's id on the node: the fleet run's, the suite's, the step's,
    /// the node's and the attempt's, hashed when too long for a run id.
    fn run_id(&self, step: &str, node: &str, attempt: u32, heal: bool) -> String {
        let fleet = &self.plan.fleet_id;
        let suite = &self.cross.suite;
        if self.scenario.is_none() {
            return format!("{fleet}-cross-{suite}");
        }
        let what = if heal { "heal" } else { "a" };
        let id = format!("{fleet}-x-{suite}-{step}-{node}-{what}{attempt}");
        if id.len() <= 120 {
            return id;
        }
        let digest = crate::digest::to_hex(&crate::digest::sha256(id.as_bytes()));
        format!("{fleet}-x-{}-{what}{attempt}", &digest[..16])
    }

    /// Checks what a step on `node` published and adds it to `values`.
    fn take_values(
        &self,
        values: &mut Values,
        published: &Values,
        node: &str,
    ) -> Result<(), String> {
        let secrets: Vec<(String, String)> = self
            .plan
            .roster
            .nodes
            .iter()
            .filter_map(|n| {
                let secret = n.password.as_ref()?.read().ok()?;
                Some((n.name.clone(), secret.expose().to_string()))
            })
            .collect();
        cross_values::refuse_secrets(published, &secrets)
            .map_err(|why| format!("{node}: {why}"))?;
        cross_values::merge(values, published, node)
    }

    fn on_node<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut Ssh) -> StepResult<T>,
    ) -> StepResult<T> {
        on_node(self.plan, self.shared, self.pool, self.progress, name, work)
    }

    fn fresh(&self) -> CrossResult {
        CrossResult::pending(self.cross)
    }

    fn set_pending(&self, steps: &[Step]) {
        self.shared.update_cross(&self.fresh(), |r| {
            r.scenario = self.scenario.is_some();
            r.steps.clear();
            for step in steps {
                let nodes = match &step.action {
                    Action::Heal { .. } => Vec::new(),
                    _ => self.nodes_of(step),
                };
                for node in nodes {
                    r.steps
                        .push(ScenarioStepRun::pending(step, &node, self.role_of(&node)));
                }
            }
        });
    }

    fn skip(&self, step: &Step, why: &str) {
        self.shared.update_cross(&self.fresh(), |r| {
            for s in r.steps.iter_mut().filter(|s| s.step == step.name) {
                s.outcome = CrossOutcome::Skipped;
                s.reason = Some(why.to_string());
            }
        });
    }

    /// Records a step's run on a node (replacing what was there for that
    /// step and node), and the values so far.
    fn put_step(&self, run: ScenarioStepRun, values: Option<&Values>) {
        self.shared.update_cross(&self.fresh(), |r| {
            match r
                .steps
                .iter_mut()
                .find(|s| s.step == run.step && s.node == run.node && s.kind == run.kind)
            {
                Some(s) => *s = run,
                None => r.steps.push(run),
            }
            if let Some(values) = values {
                r.values = values.clone();
            }
        });
    }

    /// The suite's result from its steps.
    fn settle(&self, failure: Option<String>) -> CrossResult {
        let mut result = self
            .shared
            .snapshot()
            .cross(&self.cross.suite)
            .cloned()
            .unwrap_or_else(|| self.fresh());
        for s in result
            .steps
            .iter_mut()
            .filter(|s| s.outcome == CrossOutcome::Pending)
        {
            s.outcome = CrossOutcome::Skipped;
            s.reason.get_or_insert_with(|| match s.kind.as_str() {
                "cleanup" => "not needed: what it undoes did not run".into(),
                _ => "not started".into(),
            });
        }
        let failed_cleanup = result
            .steps
            .iter()
            .find(|s| {
                s.outcome == CrossOutcome::Failed && (s.kind == "cleanup" || s.kind == "heal")
            })
            .map(|s| format!("cleanup {} failed on {}", s.step, s.node));
        result.tests_passed = result.steps.iter().map(|s| s.tests_passed).sum();
        result.tests_failed = result.steps.iter().map(|s| s.tests_failed).sum();
        result.failing = result
            .steps
            .iter()
            .flat_map(|s| {
                let prefix = match self.scenario {
                    Some(_) => format!("{} on {}: ", s.step, s.node),
                    None => String::new(),
                };
                s.failing.iter().map(move |f| format!("{prefix}{f}"))
            })
            .collect();
        result.seconds = result
            .started_unix
            .map(|t| crate::clock::now_unix().saturating_sub(t))
            .unwrap_or(0);
        result.outcome = if failure.is_none() && failed_cleanup.is_none() {
            CrossOutcome::Passed
        } else {
            CrossOutcome::Failed
        };
        let step_reason = |s: &ScenarioStepRun| {
            s.reason.clone().or_else(|| {
                (!s.failing.is_empty()).then(|| format!("failed: {}", s.failing.join("; ")))
            })
        };
        result.reason = match (&failure, &failed_cleanup) {
            (None, None) => None,
            (Some(why), cleanup) => {
                let first = result
                    .steps
                    .iter()
                    .find(|s| s.outcome == CrossOutcome::Failed)
                    .and_then(step_reason);
                let mut text = match self.scenario {
                    Some(_) => why.clone(),
                    None => String::new(),
                };
                if let Some(first) = first {
                    if !text.is_empty() {
                        text.push_str(": ");
                    }
                    text.push_str(&first);
                }
                if let Some(c) = cleanup {
                    text.push_str(&format!("; {c}"));
                }
                Some(answer::tame_str(&text))
            }
            (None, Some(c)) => Some(c.clone()),
        };
        if self.scenario.is_none() {
            if let Some(only) = result.steps.first() {
                result.run_id = only.run_id.clone();
                result.seconds = only.seconds.round() as u64;
            }
            result.tests = super::fetch::tap_tests(
                &self.local("suite", &self.cross.runs_on).join("cross.tap"),
            );
        } else {
            result.tests = result
                .steps
                .iter()
                .flat_map(|s| {
                    super::fetch::tap_tests(&self.local(&s.step, &s.node).join("cross.tap"))
                        .into_iter()
                        .map(move |mut t| {
                            t.name = format!("{} on {}: {}", s.step, s.node, t.name);
                            t
                        })
                })
                .collect();
        }
        result
    }
}

/// Lines of a failed step's output kept for the reports.
const LOG_TAIL_LINES: usize = 12;

/// The last lines of a fetched log, tamed (a node wrote them).
fn log_tail(path: &camino::Utf8Path) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(64 << 10)..]).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..]
        .iter()
        .map(|l| answer::tame_str(l))
        .collect()
}

/// Why a run ended as it did, when it did not pass.
fn reason_of(record: &RunRecord) -> Option<String> {
    let tests = record.tests.clone().unwrap_or_default();
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
    reason.map(|r| answer::tame_str(&r))
}
