//! `run --rerun-failed` on a bats suite of the test's own making, run by the
//! real run-gate.sh and bats: it runs exactly the tests that failed in the
//! node's latest run of the bundle (every iteration's, by exact name, names
//! with regex characters and spaces included, a name that is the start of
//! another's too), its record says it is partial, and it is never a gate
//! pass, even when every test it ran passed. With nothing to rerun it
//! refuses and writes nothing.

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use support::gate_bundle::bundle_with_gate_and;
use support::Run;

/// The suite: five tests, each failing while its marker file is in
/// `$RERUN_FIXTURE/fail/` (or, once, in `fail-once/`), each writing its
/// name to `$RERUN_FIXTURE/ran` when it runs. "lnd is up" starts with
/// "lnd" (an unanchored filter would run it); "apps lnd are up! v2" is what
/// the unescaped name of test 4 matches as a regex, and that name does
/// not match itself unescaped.
const SUITE: &str = r#"
verdict() {
  printf '%s\n' "$BATS_TEST_DESCRIPTION" >>"$RERUN_FIXTURE/ran"
  if [[ -e $RERUN_FIXTURE/fail-once/$1 ]]; then
    rm "$RERUN_FIXTURE/fail-once/$1"
    return 1
  fi
  [[ ! -e $RERUN_FIXTURE/fail/$1 ]]
}

@test "the node answers" { verdict 1; }
@test "lnd" { verdict 2; }
@test "lnd is up" { verdict 3; }
@test "apps (bitcoin|lnd) are up. [v1.2]*" { verdict 4; }
@test "apps lnd are up! v2" { verdict 5; }
"#;

const LND: &str = "lnd";
const APPS: &str = "apps (bitcoin|lnd) are up. [v1.2]*";

struct Node {
    _tmp: tempfile::TempDir,
    bundle: PathBuf,
    workdir: PathBuf,
    fixture: PathBuf,
}

impl Node {
    /// A bundle whose gate is the real run-gate.sh on `SUITE`.
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let gate =
            fs::read_to_string(support::workspace_root().join("bundle/lifecycle/run-gate.sh"))
                .unwrap();
        let bundle = bundle_with_gate_and(tmp.path(), &gate, |stage| {
            fs::create_dir(stage.join("lifecycle/tests")).unwrap();
            fs::write(stage.join("lifecycle/tests/suite.bats"), SUITE).unwrap();
        });
        let fixture = tmp.path().join("fixture");
        for dir in ["fail", "fail-once"] {
            fs::create_dir_all(fixture.join(dir)).unwrap();
        }
        Node {
            workdir: tmp.path().join("wd"),
            bundle,
            fixture,
            _tmp: tmp,
        }
    }

    /// Tests `numbers` fail from now on, the others pass.
    fn failing(&self, numbers: &[u32]) -> &Node {
        fs::remove_dir_all(self.fixture.join("fail")).unwrap();
        fs::create_dir(self.fixture.join("fail")).unwrap();
        for n in numbers {
            fs::write(self.fixture.join("fail").join(n.to_string()), "").unwrap();
        }
        self
    }

    /// Test `n` fails the next time it runs, and only then.
    fn failing_once(&self, n: u32) -> &Node {
        fs::write(self.fixture.join("fail-once").join(n.to_string()), "").unwrap();
        self
    }

    /// `ARCHY_PASSWORD=… archy-gate ARGS --workdir WD …`, the tests that
    /// ran forgotten first.
    fn launcher(&self, args: &[&str]) -> Run {
        let _ = fs::remove_file(self.fixture.join("ran"));
        Run::of(
            Command::new(&self.bundle)
                .args(args)
                .arg("--workdir")
                .arg(&self.workdir)
                .env("ARCHY_PASSWORD", "pw")
                .env("RERUN_FIXTURE", &self.fixture)
                .output()
                .unwrap(),
        )
    }

    /// `run --skip-preflight --run-id ID ARGS`.
    fn run(&self, id: &str, args: &[&str]) -> Run {
        let mut all = vec!["run", "--skip-preflight", "--run-id", id];
        all.extend(args);
        self.launcher(&all)
    }

    /// The names of the tests that ran in the last command, in order.
    fn ran(&self) -> Vec<String> {
        fs::read_to_string(self.fixture.join("ran"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn run_dir(&self, id: &str) -> PathBuf {
        self.workdir.join("runs").join(id)
    }

    fn record(&self, id: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.run_dir(id).join("run.json")).unwrap()).unwrap()
    }

    /// The TAP result lines of iteration `n` of run `id`, without the
    /// time bats appends (` # in 13 ms`).
    fn results(&self, id: &str, n: u32) -> Vec<String> {
        let tap = fs::read_to_string(self.run_dir(id).join(format!("iteration-{n}.tap"))).unwrap();
        tap.lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
            .map(|l| l.split(" # in ").next().unwrap().to_string())
            .collect()
    }

    fn runs(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.workdir.join("runs"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

fn names(record: &serde_json::Value, path: &[&str]) -> Vec<String> {
    let mut v = record;
    for key in path {
        v = &v[key];
    }
    v.as_array()
        .unwrap_or_else(|| panic!("{path:?} in {record:#}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn contains(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

/// A line that starts with `head` (what follows is how long it took).
#[track_caller]
fn starts(text: &str, head: &str) {
    assert!(
        text.lines().any(|l| l.starts_with(head)),
        "no line starting {head:?} in:\n{text}"
    );
}

/// Failed in two iterations: "lnd" only in the first (bats' own
/// `--filter-status failed` would remember only the last), the apps test in
/// both. The rerun runs those two and nothing else, in each of its
/// iterations; they pass now, and still it is no gate pass: state
/// "partial", exit 1, said in its summary, `status` and `wait`.
#[test]
fn a_rerun_runs_exactly_the_failed_tests_and_even_all_passed_is_no_gate_pass() {
    let node = Node::new();
    node.failing(&[4]).failing_once(2);
    node.run("first", &["--iterations", "2"]).expect(1);
    let first = node.record("first");
    assert_eq!(first["state"], "failed");
    assert_eq!(names(&first, &["tests", "failing"]), [LND, APPS]);
    assert_eq!(node.results("first", 2).len(), 5, "all five ran");

    node.failing(&[]);
    let run = node
        .run("second", &["--rerun-failed", "--iterations", "2"])
        .expect(1);
    // Only the two, by their exact names, in each iteration.
    assert_eq!(node.ran(), [LND, APPS, LND, APPS]);
    for n in [1, 2] {
        assert_eq!(
            node.results("second", n),
            [format!("ok 1 {LND}"), format!("ok 2 {APPS}")]
        );
    }
    contains(
        &run.stderr,
        "rerun: the 2 failed tests of run first (failed), by exact name; a partial run, never a gate pass:",
    );
    contains(&run.stderr, &format!("  rerun: {APPS}"));
    starts(
        &run.stderr,
        "rerun of the 2 failed tests of run first: passed, a partial run and not a gate pass: \
         4 passed, 0 failed, 0 skipped over 2 iteration(s) in ",
    );
    assert!(!run.stderr.contains("gate passed"), "{}", run.stderr);

    let second = node.record("second");
    assert_eq!(second["state"], "partial");
    assert_eq!(second["exit_code"], 0, "the gate's own exit: bats passed");
    assert_eq!(second["rerun"]["of"], "first");
    assert_eq!(second["rerun"]["of_state"], "failed");
    assert_eq!(names(&second, &["rerun", "tests"]), [LND, APPS]);

    let status = node.launcher(&["status", "second"]).expect(0);
    contains(&status.stdout, "state    partial");
    contains(
        &status.stdout,
        "partial  a rerun of the failed tests of run first (failed): never a gate pass",
    );
    contains(&status.stdout, &format!("  rerun: {APPS}"));
    let wait = node.launcher(&["wait", "second"]).expect(1);
    assert!(
        wait.stderr.contains(
            "rerun of the 2 failed tests of run first: passed, a partial run and not a gate pass"
        ),
        "{}",
        wait.stderr
    );
}

/// A rerun in which one test still fails is a failed run (the gate is
/// red); the next rerun takes its still-failing test, says whose rerun
/// that was, and once that passes, there is nothing left to rerun: the
/// whole gate must run to pass.
#[test]
fn a_rerun_of_a_rerun_takes_the_tests_still_failing() {
    let node = Node::new();
    node.failing(&[2, 4]);
    node.run("first", &[]).expect(1);

    node.failing(&[4]);
    let run = node.run("second", &["--rerun-failed", "--json"]).expect(1);
    assert_eq!(node.ran(), [LND, APPS]);
    let second: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json: the record");
    assert_eq!(second["state"], "failed");
    assert_eq!(names(&second, &["tests", "failing"]), [APPS]);
    starts(
        &run.stderr,
        "rerun of the 2 failed tests of run first: failed (a partial run): \
         1 passed, 1 failed, 0 skipped over 1 iteration(s) in ",
    );

    node.failing(&[]);
    let run = node.run("third", &["--rerun-failed"]).expect(1);
    assert_eq!(node.ran(), [APPS]);
    contains(
        &run.stderr,
        "rerun: the 1 failed test of run second (failed), itself a rerun of run first: \
         the tests still failing, by exact name; a partial run, never a gate pass:",
    );
    let third = node.record("third");
    assert_eq!(third["state"], "partial");
    assert_eq!(third["rerun"]["of"], "second");
    assert_eq!(third["rerun"]["of_rerun_of"], "first");

    let run = node.run("fourth", &["--rerun-failed"]).expect(2);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: --rerun-failed: run third, this node's latest run of this bundle, reran the \
         failed tests of run second and they all passed: none still fails; a partial run is \
         never a gate pass, so run the whole gate (without --rerun-failed) to pass it; nothing \
         to rerun: run the whole gate (without --rerun-failed)"
    );
    assert_eq!(node.runs(), ["first", "second", "third"]);
    assert!(node.ran().is_empty());
}

/// Nothing to rerun is the operator's to fix (exit 2), said with what to
/// do, and leaves no run behind: no earlier run, an earlier run that
/// passed, a --filter of the operator's own beside it.
#[test]
fn a_rerun_with_nothing_to_rerun_is_refused_and_runs_nothing() {
    let node = Node::new();
    let run = node.run("first", &["--rerun-failed"]).expect(2);
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: --rerun-failed: no earlier run of this bundle (sha256 ")
            && last.ends_with(
                ": there is nothing to rerun; run the whole gate (without --rerun-failed) first"
            ),
        "{}",
        run.stderr
    );
    assert!(node.runs().is_empty(), "{:?}", node.runs());
    assert!(node.ran().is_empty());

    node.run("first", &[]).expect(0);
    let run = node.run("second", &["--rerun-failed"]).expect(2);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: --rerun-failed: run first, this node's latest run of this bundle, passed: no \
         test failed; nothing to rerun: run the whole gate (without --rerun-failed)"
    );
    assert_eq!(node.runs(), ["first"]);
    assert!(node.ran().is_empty());

    let run = node
        .run("second", &["--rerun-failed", "--", "--filter", "lnd"])
        .expect(2);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: --rerun-failed chooses the tests itself (a bats --filter): drop --filter from \
         GATE_ARGS, or run without --rerun-failed"
    );
    assert_eq!(node.runs(), ["first"]);
}
