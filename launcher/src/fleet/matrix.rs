//! The flakiness matrix: every test of the gate nodes, on every gate node, in
//! every iteration (passed, failed, skipped, or not run), and what that
//! makes the test on that node: passed, **flaky** (it both passed and
//! failed there), failing (it failed and never passed there), skipped, or
//! not run. Made once from the state's iteration results (each iteration's
//! TAP, read when fetched); report.json carries it as `matrix`, report.md
//! lists the flaky and failing tests from it, report.html draws it, and
//! junit.xml marks the flaky tests by it. Nothing here reads a file.

use serde::Serialize;

use super::state::{FleetState, NodeState};
use crate::outcome::Outcome;

/// One test in one iteration on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    Pass,
    Fail,
    Skip,
    /// The iteration did not run, or ran without this test.
    NotRun,
}

impl Mark {
    pub fn word(self) -> &'static str {
        match self {
            Mark::Pass => "pass",
            Mark::Fail => "fail",
            Mark::Skip => "skip",
            Mark::NotRun => "not-run",
        }
    }
}

/// What a test's iterations on one node make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestVerdict {
    /// Passed in every iteration it ran (skips aside), failed in none.
    Passed,
    /// Passed in some iterations and failed in others, on this node.
    Flaky,
    /// Failed, and never passed, on this node.
    Failing,
    /// Only skipped.
    Skipped,
    NotRun,
}

impl TestVerdict {
    pub fn word(self) -> &'static str {
        match self {
            TestVerdict::Passed => "passed",
            TestVerdict::Flaky => "flaky",
            TestVerdict::Failing => "failing",
            TestVerdict::Skipped => "skipped",
            TestVerdict::NotRun => "not-run",
        }
    }
}

/// One test on one node: its mark in each of the node's iterations.
#[derive(Clone, Debug, Serialize)]
pub struct TestOnNode {
    pub node: String,
    pub verdict: TestVerdict,
    /// Iteration 1 first, as many as the node was to run.
    pub iterations: Vec<Mark>,
}

impl TestOnNode {
    /// The iterations (from 1) marked `mark`.
    pub fn marked(&self, mark: Mark) -> Vec<u32> {
        (1..)
            .zip(&self.iterations)
            .filter(|(_, m)| **m == mark)
            .map(|(n, _)| n)
            .collect()
    }

    /// "iteration 2 of 5", "iterations 1, 2 and 4 of 5": where it failed.
    pub fn failed_in_words(&self) -> String {
        let failed = self.marked(Mark::Fail);
        let numbers: Vec<String> = failed.iter().map(u32::to_string).collect();
        let list = match numbers.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => numbers.join(""),
        };
        format!(
            "iteration{} {list} of {}",
            if failed.len() == 1 { "" } else { "s" },
            self.iterations.len()
        )
    }
}

/// One test's row: the test on each gate node, in roster order.
#[derive(Clone, Debug, Serialize)]
pub struct MatrixRow {
    pub test: String,
    pub nodes: Vec<TestOnNode>,
}

/// Tests (in the order first seen, node by node) × gate nodes (roster
/// order) × iterations.
#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    pub nodes: Vec<String>,
    pub tests: Vec<MatrixRow>,
}

impl Matrix {
    pub fn of(state: &FleetState) -> Matrix {
        let gate: Vec<&NodeState> = state.nodes.iter().filter(|n| n.gate).collect();
        let mut names: Vec<&str> = Vec::new();
        for n in &gate {
            for i in &n.iteration_results {
                for t in &i.tests {
                    if !names.contains(&t.name.as_str()) {
                        names.push(&t.name);
                    }
                }
            }
        }
        let tests = names
            .into_iter()
            .map(|test| MatrixRow {
                test: test.to_string(),
                nodes: gate.iter().map(|n| on_node(n, test)).collect(),
            })
            .collect();
        Matrix {
            nodes: gate.iter().map(|n| n.name.clone()).collect(),
            tests,
        }
    }

    /// Each (test, its place on a node) whose verdict there is `verdict`,
    /// row by row.
    pub fn with(&self, verdict: TestVerdict) -> Vec<(&str, &TestOnNode)> {
        self.tests
            .iter()
            .flat_map(|row| {
                row.nodes
                    .iter()
                    .filter(move |t| t.verdict == verdict)
                    .map(move |t| (row.test.as_str(), t))
            })
            .collect()
    }

    /// `test` on `node`, when the matrix has both.
    #[cfg(test)]
    pub fn get(&self, test: &str, node: &str) -> Option<&TestOnNode> {
        self.tests
            .iter()
            .find(|r| r.test == test)?
            .nodes
            .iter()
            .find(|t| t.node == node)
    }
}

fn on_node(n: &NodeState, test: &str) -> TestOnNode {
    let iterations: Vec<Mark> = (1..=n.iterations)
        .map(|i| {
            let ran = n.iteration_results.iter().find(|r| r.n == i);
            match ran.and_then(|r| r.tests.iter().find(|t| t.name == test)) {
                None => Mark::NotRun,
                Some(t) => match t.outcome {
                    Outcome::Passed => Mark::Pass,
                    Outcome::Failed | Outcome::Error => Mark::Fail,
                    Outcome::Skipped => Mark::Skip,
                },
            }
        })
        .collect();
    let has = |m: Mark| iterations.contains(&m);
    let verdict = match (has(Mark::Pass), has(Mark::Fail)) {
        (true, true) => TestVerdict::Flaky,
        (false, true) => TestVerdict::Failing,
        (true, false) => TestVerdict::Passed,
        (false, false) if has(Mark::Skip) => TestVerdict::Skipped,
        (false, false) => TestVerdict::NotRun,
    };
    TestOnNode {
        node: n.name.clone(),
        verdict,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes of three iterations: `up` passes everywhere, `lnd` fails
    /// in iteration 2 on `a` only, `tor` fails on `b` in every iteration,
    /// `b`'s third iteration never ran, and `c` (unreachable) ran nothing.
    fn state() -> FleetState {
        let node = |name: &str, runs: serde_json::Value| {
            serde_json::json!({
                "name": name, "role": "fleet", "gate": true, "ssh": name, "phase": "failed",
                "iterations": 3, "preflight_findings": [], "connections": 1,
                "iteration_results": runs,
            })
        };
        let run = |n: u32, tests: &[(&str, &str)]| {
            serde_json::json!({
                "n": n, "outcome": "failed",
                "tests": tests.iter().map(|(name, o)| serde_json::json!({"name": name, "outcome": o})).collect::<Vec<_>>(),
            })
        };
        let ok = [("up", "passed"), ("lnd", "passed"), ("tor", "passed")];
        let a = node(
            "a",
            serde_json::json!([
                run(1, &ok),
                run(
                    2,
                    &[("up", "passed"), ("lnd", "failed"), ("tor", "skipped")]
                ),
                run(3, &ok),
            ]),
        );
        let broken = [("up", "passed"), ("lnd", "passed"), ("tor", "failed")];
        let b = node("b", serde_json::json!([run(1, &broken), run(2, &broken)]));
        let c = node("c", serde_json::json!([]));
        serde_json::from_value(serde_json::json!({
            "roster": "fleet.toml", "bundle": "archy-gate", "bundle_sha256": "ab",
            "bundle_size": 1, "started": "t", "updated": "t", "nodes": [a, b, c],
        }))
        .unwrap()
    }

    #[test]
    fn a_test_that_passed_and_failed_on_a_node_is_flaky_there_only() {
        let m = Matrix::of(&state());
        assert_eq!(m.nodes, ["a", "b", "c"]);
        let names: Vec<&str> = m.tests.iter().map(|r| r.test.as_str()).collect();
        assert_eq!(names, ["up", "lnd", "tor"]);
        let lnd_a = m.get("lnd", "a").unwrap();
        assert_eq!(lnd_a.verdict, TestVerdict::Flaky);
        assert_eq!(lnd_a.iterations, [Mark::Pass, Mark::Fail, Mark::Pass]);
        assert_eq!(lnd_a.failed_in_words(), "iteration 2 of 3");
        let flaky: Vec<(&str, &str)> = m
            .with(TestVerdict::Flaky)
            .into_iter()
            .map(|(t, on)| (t, on.node.as_str()))
            .collect();
        assert_eq!(flaky, [("lnd", "a")]);
        let tor_b = m.get("tor", "b").unwrap();
        assert_eq!(tor_b.verdict, TestVerdict::Failing);
        assert_eq!(tor_b.iterations, [Mark::Fail, Mark::Fail, Mark::NotRun]);
        assert_eq!(tor_b.failed_in_words(), "iterations 1 and 2 of 3");
        // Skipped in one iteration, passed in the others: passed.
        assert_eq!(m.get("tor", "a").unwrap().verdict, TestVerdict::Passed);
        let c = m.get("up", "c").unwrap();
        assert_eq!(c.verdict, TestVerdict::NotRun);
        assert_eq!(c.iterations, [Mark::NotRun; 3]);
    }

    #[test]
    fn the_json_says_each_mark_and_verdict_in_words() {
        let json = serde_json::to_value(Matrix::of(&state())).unwrap();
        assert_eq!(json["tests"][1]["test"], "lnd");
        assert_eq!(
            json["tests"][1]["nodes"][0],
            serde_json::json!({"node": "a", "verdict": "flaky", "iterations": ["pass", "fail", "pass"]})
        );
        assert_eq!(
            json["tests"][2]["nodes"][1]["iterations"],
            serde_json::json!(["fail", "fail", "not-run"])
        );
    }
}
