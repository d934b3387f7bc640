//! A cross suite's scenario (`cross/<suite>/scenario.toml`): a declared,
//! ordered list of steps, each run on the nodes holding a role, as their
//! own runs. `pack` reads and checks it and puts it in manifest.json, so
//! the node (`run --cross SUITE --step NAME`) and the fleet (which runs the
//! steps in order, across nodes) read the same steps from the bundle.
//!
//! Steps run in order. Consecutive steps naming the same `stage` run at
//! once; a stage starts only when every step of the one before passed on
//! every node (a barrier). A step is one of:
//!
//! * **tests**: bats files of the suite, run by its `run.sh`; with
//!   `eventually`, retried every `every` until it passes or time is up;
//! * **fault**: a script run against a peer (`fault PEER_NAME PEER_HOST`)
//!   whose `heal` (same arguments) is owed from the moment it starts;
//! * **heal**: the owed heal of an earlier fault, run here rather than at
//!   the end.
//!
//! A tests step with `undoes = "STEP"` is a cleanup: after a failure it
//! still runs, on its own nodes, if STEP started, in reverse order of what
//! they undo; owed heals run then too, on the nodes that ran the fault.

use serde::{Deserialize, Serialize};

/// The scenario's file in a suite's dir.
pub const SCENARIO_FILE: &str = "scenario.toml";
/// Seconds between attempts of an `eventually` step, unless it says.
pub const DEFAULT_EVERY_SECS: u64 = 5;
/// At most this many steps: each becomes runs on nodes and rows in reports.
pub const MAX_STEPS: usize = 200;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scenario {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    /// The roles whose nodes run it; empty for a heal (it runs where its
    /// fault ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub action: Action,
    /// Retried until it passes or this many seconds passed since its first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eventually_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u64>,
    /// This step is the cleanup of the named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    /// Bats files (paths in the suite's dir), run by the suite's run.sh.
    Tests { files: Vec<String> },
    /// `run PEER_NAME PEER_HOST`, owing `heal` with the same arguments;
    /// `peer` is a role.
    Fault {
        run: String,
        heal: String,
        peer: String,
    },
    /// The heal of the fault step `of`.
    Heal { of: String },
}

impl Step {
    pub fn kind_word(&self) -> &'static str {
        match (&self.action, &self.undoes) {
            (Action::Tests { .. }, Some(_)) => "cleanup",
            (Action::Tests { .. }, None) => "tests",
            (Action::Fault { .. }, _) => "fault",
            (Action::Heal { .. }, _) => "heal",
        }
    }

    /// What it does, for people (`inspect`, `fleet plan`): "tests
    /// tests/10.bats, eventually 1m every 2s", "fault faults/cut.sh against
    /// a (heal faults/heal.sh)", "heal of cut", with its stage and what it
    /// undoes.
    pub fn describe(&self) -> String {
        let mut text = match &self.action {
            Action::Tests { files } if files.is_empty() => "the suite's run.sh".to_string(),
            Action::Tests { files } => format!("tests {}", files.join(" ")),
            Action::Fault { run, heal, peer } => {
                format!("fault {run} against {peer} (heal {heal})")
            }
            Action::Heal { of } => format!("heal of {of}"),
        };
        if let Some(secs) = self.eventually_secs {
            text.push_str(&format!(
                ", eventually {} every {}",
                crate::clock::duration(secs),
                crate::clock::duration(self.every_secs())
            ));
        }
        if let Some(undone) = &self.undoes {
            text.push_str(&format!(", cleanup of {undone}"));
        }
        if let Some(stage) = &self.stage {
            text.push_str(&format!(", stage {stage}"));
        }
        text
    }

    pub fn every_secs(&self) -> u64 {
        self.every_secs.unwrap_or(DEFAULT_EVERY_SECS)
    }

    pub fn is_cleanup(&self) -> bool {
        self.undoes.is_some()
    }
}

impl Scenario {
    /// The scenario of a suite that has none: its run.sh, on one node.
    pub fn single(role: &str) -> Scenario {
        Scenario {
            description: String::new(),
            steps: vec![Step {
                name: "suite".into(),
                on: vec![role.to_string()],
                stage: None,
                action: Action::Tests { files: Vec::new() },
                eventually_secs: None,
                every_secs: None,
                undoes: None,
            }],
        }
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Every role a step runs on or acts against, in first-use order.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for step in &self.steps {
            let peer = match &step.action {
                Action::Fault { peer, .. } => Some(peer),
                _ => None,
            };
            for role in step.on.iter().chain(peer) {
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
            }
        }
        roles
    }

    /// The stages in order: consecutive steps sharing a `stage` name, or
    /// one step each. Indices into `steps`.
    pub fn stages(&self) -> Vec<Vec<usize>> {
        let mut stages: Vec<Vec<usize>> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let joins = i > 0
                && step.stage.is_some()
                && step.stage == self.steps[i - 1].stage
                && !stages.is_empty();
            if joins {
                stages.last_mut().expect("not empty").push(i);
            } else {
                stages.push(vec![i]);
            }
        }
        stages
    }

    /// Parses scenario.toml; `file_exists(path in the suite dir)` says
    /// whether the bundle holds a file there.
    pub fn parse(text: &str, file_exists: &dyn Fn(&str) -> bool) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut steps = Vec::new();
        for raw in raw.step {
            steps.push(raw.into_step()?);
        }
        let scenario = Scenario {
            description: raw.description.unwrap_or_default(),
            steps,
        };
        scenario.check(file_exists)?;
        Ok(scenario)
    }

    /// Whole-scenario rules; also checked on a manifest read back.
    pub fn check(&self, file_exists: &dyn Fn(&str) -> bool) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("no [[step]]: a scenario has at least one".into());
        }
        if self.steps.len() > MAX_STEPS {
            return Err(format!("{} steps, more than {MAX_STEPS}", self.steps.len()));
        }
        let mut seen_stages: Vec<&str> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("step {:?}", step.name);
            check_name("step name", &step.name)?;
            if self.steps[..i].iter().any(|s| s.name == step.name) {
                return Err(format!("{at} is named twice"));
            }
            for role in &step.on {
                check_name(&format!("{at}: role"), role)?;
            }
            if let Some(stage) = &step.stage {
                check_name(&format!("{at}: stage"), stage)?;
                let continues = i > 0 && self.steps[i - 1].stage.as_deref() == Some(stage);
                if !continues {
                    if seen_stages.contains(&stage.as_str()) {
                        return Err(format!(
                            "{at}: stage {stage:?} was used before, by steps not next to this one: \
                             a stage's steps are consecutive"
                        ));
                    }
                    seen_stages.push(stage);
                }
            }
            let earlier = |name: &str| self.steps[..i].iter().find(|s| s.name == name);
            match &step.action {
                Action::Tests { files } => {
                    if step.on.is_empty() {
                        return Err(format!("{at}: say where it runs: on = \"ROLE\""));
                    }
                    for file in files {
                        check_suite_path(&at, file, file_exists)?;
                    }
                }
                Action::Fault { run, heal, peer } => {
                    if step.on.is_empty() {
                        return Err(format!("{at}: say where the fault runs: on = \"ROLE\""));
                    }
                    check_name(&format!("{at}: peer role"), peer)?;
                    check_suite_path(&at, run, file_exists)?;
                    check_suite_path(&at, heal, file_exists)?;
                    if step.eventually_secs.is_some() {
                        return Err(format!("{at}: a fault is run once: no `eventually`"));
                    }
                }
                Action::Heal { of } => {
                    if !step.on.is_empty() {
                        return Err(format!("{at}: a heal runs where its fault ran: drop `on`"));
                    }
                    match earlier(of) {
                        Some(s) if matches!(s.action, Action::Fault { .. }) => {}
                        _ => {
                            return Err(format!(
                                "{at}: heals {of:?}, which is not an earlier fault step"
                            ))
                        }
                    }
                    if self.steps[..i]
                        .iter()
                        .any(|s| matches!(&s.action, Action::Heal { of: o } if o == of))
                    {
                        return Err(format!("{at}: fault {of:?} is healed twice"));
                    }
                    if step.eventually_secs.is_some() {
                        return Err(format!("{at}: a heal is run once: no `eventually`"));
                    }
                }
            }
            if let Some(undone) = &step.undoes {
                if !matches!(step.action, Action::Tests { .. }) {
                    return Err(format!("{at}: only a tests step can undo another"));
                }
                match earlier(undone) {
                    Some(s) if s.undoes.is_none() => {}
                    _ => {
                        return Err(format!(
                            "{at}: undoes {undone:?}, which is not an earlier step that sets \
                             something up"
                        ))
                    }
                }
            }
            if step.every_secs.is_some() && step.eventually_secs.is_none() {
                return Err(format!("{at}: `every` without `eventually`"));
            }
        }
        Ok(())
    }
}

/// Names in a scenario (steps, roles, stages) become run ids, dirs and
/// command-line words.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?}: lower-case letters, digits, '-' and '_', starting with a letter \
             or digit (at most 40)"
        ))
    }
}

fn check_suite_path(at: &str, path: &str, exists: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let plain = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !plain {
        return Err(format!(
            "{at}: {path:?} is not a plain relative path in the suite's dir"
        ));
    }
    if !exists(path) {
        return Err(format!("{at}: {path:?} is not a file in the suite's dir"));
    }
    Ok(())
}

/// Seconds from "90", "90s", "5m", "2h".
pub fn parse_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 5m, 1h)"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h")),
    };
    n.checked_mul(scale)
        .filter(|&s| s <= 24 * 3600)
        .ok_or_else(|| format!("{text:?}: at most 24h"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Option<String>,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    on: Option<OneOrMany>,
    stage: Option<String>,
    tests: Option<Vec<String>>,
    fault: Option<String>,
    heal: Option<String>,
    peer: Option<String>,
    heals: Option<String>,
    eventually: Option<String>,
    every: Option<String>,
    undoes: Option<String>,
}

impl RawStep {
    fn into_step(self) -> Result<Step, String> {
        let at = format!("step {:?}", self.name);
        let action = match (self.tests, self.fault, self.heals) {
            (Some(files), None, None) => {
                if self.heal.is_some() || self.peer.is_some() {
                    return Err(format!("{at}: `heal` and `peer` belong to a fault step"));
                }
                Action::Tests { files }
            }
            (None, Some(run), None) => Action::Fault {
                run,
                heal: self
                    .heal
                    .ok_or_else(|| format!("{at}: a fault needs its `heal` script"))?,
                peer: self.peer.ok_or_else(|| {
                    format!("{at}: a fault needs the `peer` role it acts against")
                })?,
            },
            (None, None, Some(of)) => Action::Heal { of },
            _ => {
                return Err(format!(
                    "{at}: give exactly one of `tests`, `fault` (with `heal` and `peer`) or `heals`"
                ))
            }
        };
        let on = match self.on {
            None => Vec::new(),
            Some(OneOrMany::One(role)) => vec![role],
            Some(OneOrMany::Many(roles)) => roles,
        };
        let secs = |what: &str, v: Option<String>| {
            v.map(|t| parse_secs(&t).map_err(|e| format!("{at}: {what}: {e}")))
                .transpose()
        };
        Ok(Step {
            name: self.name,
            on,
            stage: self.stage,
            action,
            eventually_secs: secs("eventually", self.eventually)?,
            every_secs: secs("every", self.every)?,
            undoes: self.undoes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACTS: &str = r#"
description = "A asks B"
[[step]]
name = "request"
on = "a"
tests = ["tests/10.bats"]
[[step]]
name = "cut"
on = "b"
fault = "faults/cut.sh"
heal = "faults/heal.sh"
peer = "a"
[[step]]
name = "accept"
on = "b"
stage = "both"
tests = ["tests/20.bats"]
eventually = "1m"
every = "2s"
[[step]]
name = "look"
on = "a"
stage = "both"
tests = ["tests/21.bats"]
[[step]]
name = "heal"
heals = "cut"
[[step]]
name = "forget"
on = ["a", "b"]
tests = ["tests/90.bats"]
undoes = "request"
"#;

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn a_scenario_reads_as_written() {
        let s = Scenario::parse(CONTACTS, &any).unwrap();
        assert_eq!(s.steps.len(), 6);
        assert_eq!(s.roles(), ["a", "b"]);
        assert_eq!(
            s.stages(),
            vec![vec![0], vec![1], vec![2, 3], vec![4], vec![5]]
        );
        assert_eq!(s.steps[2].eventually_secs, Some(60));
        assert_eq!(s.steps[2].every_secs(), 2);
        assert_eq!(s.steps[5].kind_word(), "cleanup");
        assert_eq!(s.steps[4].action, Action::Heal { of: "cut".into() });
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
    }

    #[test]
    fn bad_scenarios_are_refused_naming_the_step() {
        for (edit, why) in [
            (
                ("tests = [\"tests/10.bats\"]", "tests = [\"../x.bats\"]"),
                "plain relative",
            ),
            (("name = \"look\"", "name = \"accept\""), "named twice"),
            (
                ("heals = \"cut\"", "heals = \"request\""),
                "not an earlier fault",
            ),
            (
                ("undoes = \"request\"", "undoes = \"later\""),
                "not an earlier step",
            ),
            (("peer = \"a\"\n", ""), "needs the `peer`"),
            (("every = \"2s\"", "every = \"2x\""), "unit is s, m or h"),
            (("name = \"request\"", "name = \"Request\""), "lower-case"),
            (("description", "colour = 1\ndescription"), "unknown field"),
        ] {
            let text = CONTACTS.replacen(edit.0, edit.1, 1);
            let err = Scenario::parse(&text, &any).unwrap_err();
            assert!(err.contains(why), "{edit:?}: {err}");
        }
        let err = Scenario::parse(CONTACTS, &|p| p != "tests/20.bats").unwrap_err();
        assert!(
            err.contains("\"accept\"") && err.contains("not a file"),
            "{err}"
        );
        let apart = CONTACTS.replacen(
            "name = \"forget\"",
            "name = \"forget\"\nstage = \"both\"",
            1,
        );
        let err = Scenario::parse(&apart, &any).unwrap_err();
        assert!(err.contains("consecutive"), "{err}");
    }
}
