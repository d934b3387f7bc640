//! Test counts from what the gate left behind: TAP (`*.tap`) or JUnit
//! (`*.xml`) in its run dir, else the TAP lines of its log. bats writes both;
//! any suite that speaks one of them is understood.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Failing tests by name, each once, in the order first seen.
    pub failing: Vec<String>,
    /// The files counted (relative to the run dir), or "gate.log".
    pub sources: Vec<String>,
}

impl TestCounts {
    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.skipped
    }

    fn fail(&mut self, name: &str) {
        self.failed += 1;
        if !self.failing.iter().any(|n| n == name) {
            self.failing.push(name.to_string());
        }
    }

    fn add(&mut self, other: TestCounts) {
        self.passed += other.passed;
        self.skipped += other.skipped;
        for name in &other.failing {
            if !self.failing.contains(name) {
                self.failing.push(name.clone());
            }
        }
        self.failed += other.failed;
        self.sources.extend(other.sources);
    }
}

/// Counts from TAP files if there are any, else JUnit files, else the log
/// (`log`, the text of the file `log_name` in `run_dir`).
pub fn collect(run_dir: &Utf8Path, log_name: &str, log: &str) -> Option<TestCounts> {
    let mut files = Vec::new();
    walk(run_dir, 0, &mut files);
    files.sort();
    let of_kind = |ext: &str| -> Vec<&Utf8PathBuf> {
        files
            .iter()
            .filter(|p| p.extension() == Some(ext))
            .collect()
    };
    let (tap, junit) = (of_kind("tap"), of_kind("xml"));
    let mut total = TestCounts::default();
    if !tap.is_empty() {
        for path in tap {
            let mut counts = parse_tap(&fs::read_to_string(path).unwrap_or_default());
            counts.sources = vec![relative(run_dir, path)];
            total.add(counts);
        }
        return Some(total);
    }
    if !junit.is_empty() {
        for path in junit {
            let mut counts = parse_junit(&fs::read_to_string(path).unwrap_or_default());
            counts.sources = vec![relative(run_dir, path)];
            total.add(counts);
        }
        return Some(total);
    }
    let counts = parse_tap(log);
    (counts.total() > 0).then(|| TestCounts {
        sources: vec![log_name.to_string()],
        ..counts
    })
}

fn relative(root: &Utf8Path, path: &Utf8Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string()
}

fn walk(dir: &Utf8Path, depth: usize, out: &mut Vec<Utf8PathBuf>) {
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let Ok(path) = Utf8PathBuf::from_path_buf(item.path()) else {
            continue;
        };
        match item.file_type() {
            Ok(t) if t.is_dir() && depth < 3 => walk(&path, depth + 1, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// One TAP result line, and what the producer printed under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapTest {
    pub name: String,
    pub outcome: Outcome,
    /// How long it took, when the line says so in bats' `--timing` form.
    pub ms: Option<u64>,
    /// A failed test's diagnostic lines (`# …`) after its result line, as
    /// they are; empty for the others.
    pub output: Vec<String>,
}

/// Each TAP result line as (test name, outcome):
/// `ok N name`, `not ok N name`, `ok N name # skip reason`, `# TODO` passes.
pub fn tap_results(text: &str) -> Vec<(String, Outcome)> {
    tap_tests(text)
        .into_iter()
        .map(|t| (t.name, t.outcome))
        .collect()
}

/// Each TAP result line as a [`TapTest`]: [`tap_results`], with the time
/// bats' `--timing` adds and a failed test's diagnostics.
pub fn tap_tests(text: &str) -> Vec<TapTest> {
    let mut results: Vec<TapTest> = Vec::new();
    for line in text.lines() {
        let (passed, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else {
            // A failed test's diagnostics, until the next result line.
            if let Some(last) = results.last_mut() {
                if last.outcome == Outcome::Failed
                    && line.starts_with('#')
                    && iteration_line(line).is_none()
                {
                    last.output.push(line.to_string());
                }
            }
            continue;
        };
        let rest = rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (rest, ms) = timing(rest);
        let (name, directive) = match rest.split_once(" # ") {
            Some((name, directive)) => (name, directive.to_ascii_lowercase()),
            None => (rest, String::new()),
        };
        let outcome = if directive.starts_with("skip") {
            Outcome::Skipped
        } else if passed || directive.starts_with("todo") {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        results.push(TapTest {
            name: name.trim().to_string(),
            outcome,
            ms,
            output: Vec::new(),
        });
    }
    results
}

/// A result line's text without what bats' `--timing` appends, and the
/// milliseconds: exactly ` # in N ms` at the end, or followed by bats'
/// ` # timeout after N s` (bats-core's `bats-format-tap`). Anything else is
/// left alone, so a suite whose TAP has no timings (or a test named so)
/// keeps its name whole.
fn timing(rest: &str) -> (&str, Option<u64>) {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let body = match rest.rsplit_once(" # timeout after ") {
        Some((body, secs)) if secs.strip_suffix(" s").is_some_and(digits) => body,
        _ => rest,
    };
    match body.rsplit_once(" # in ") {
        Some((name, ms)) => match ms.strip_suffix(" ms") {
            Some(n) if digits(n) => (name, n.parse().ok()),
            _ => (rest, None),
        },
        None => (rest, None),
    }
}

/// N of a gate's `iteration-N.tap` (run-gate.sh writes one per iteration,
/// beginning it as the iteration begins): the one place that name is read.
pub fn iteration_of(file_name: &str) -> Option<u32> {
    file_name
        .strip_prefix("iteration-")?
        .strip_suffix(".tap")?
        .parse()
        .ok()
}

/// N of run-gate.sh's `# iteration N of M` line in a gate's log.
pub fn iteration_line(line: &str) -> Option<u32> {
    line.strip_prefix("# iteration ")?
        .split_once(" of ")?
        .0
        .parse()
        .ok()
}

pub fn parse_tap(text: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    for (name, outcome) in tap_results(text) {
        match outcome {
            Outcome::Passed => counts.passed += 1,
            Outcome::Skipped => counts.skipped += 1,
            Outcome::Failed | Outcome::Error => counts.fail(&name),
        }
    }
    counts
}

/// `<testcase name="…">` elements, failed when they hold `<failure` or
/// `<error`, skipped when they hold `<skipped`.
pub fn parse_junit(text: &str) -> TestCounts {
    let mut counts = TestCounts::default();
    let mut rest = text;
    while let Some(start) = rest.find("<testcase") {
        rest = &rest[start + "<testcase".len()..];
        let head_end = rest.find('>').unwrap_or(rest.len());
        let head = &rest[..head_end];
        let name = attribute(head, "name").unwrap_or_default();
        let body = if head.ends_with('/') {
            ""
        } else {
            let end = rest.find("</testcase>").unwrap_or(rest.len());
            &rest[head_end..end]
        };
        if body.contains("<failure") || body.contains("<error") {
            counts.fail(&name);
        } else if body.contains("<skipped") {
            counts.skipped += 1;
        } else {
            counts.passed += 1;
        }
    }
    counts
}

fn attribute(head: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = head.find(&key)? + key.len();
    let end = head[start..].find('"')? + start;
    Some(
        head[start..end]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_counts_and_names() {
        let tap = "1..4\nok 1 health\nnot ok 2 every package is healthy\n# lnd: stopped\nok 3 bitcoin # skip no bitcoin-cli\nok 4 - dashed # TODO later\n";
        let c = parse_tap(tap);
        assert_eq!((c.passed, c.failed, c.skipped), (2, 1, 1));
        assert_eq!(c.failing, vec!["every package is healthy"]);
    }

    /// bats-core 1.13's `--timing` lines (`bats-format-tap`): the time is
    /// kept and stripped from the name only in exactly that form.
    #[test]
    fn tap_timing_is_read_in_bats_form_only() {
        let tap = "1..6\nok 1 health # in 12 ms\nnot ok 2 lnd is up # in 3051 ms\n# (in test file tests/10.bats, line 9)\n#   `false' failed\nok 3 bitcoin # skip no bitcoin-cli\nnot ok 4 slow # in 5000 ms # timeout after 5 s\nok 5 issue # in 12 ms please\nok 6 untimed\n";
        let got: Vec<(String, Outcome, Option<u64>)> = tap_tests(tap)
            .into_iter()
            .map(|t| (t.name, t.outcome, t.ms))
            .collect();
        let want = [
            ("health", Outcome::Passed, Some(12)),
            ("lnd is up", Outcome::Failed, Some(3051)),
            ("bitcoin", Outcome::Skipped, None),
            ("slow", Outcome::Failed, Some(5000)),
            // Not bats' form: the old reading (the first ` # ` ends the name).
            ("issue", Outcome::Passed, None),
            ("untimed", Outcome::Passed, None),
        ];
        let want: Vec<(String, Outcome, Option<u64>)> = want
            .into_iter()
            .map(|(n, o, ms)| (n.to_string(), o, ms))
            .collect();
        assert_eq!(got, want);
        let counts = parse_tap(tap);
        assert_eq!((counts.passed, counts.failed, counts.skipped), (3, 2, 1));
        assert_eq!(counts.failing, vec!["lnd is up", "slow"]);
    }

    #[test]
    fn a_failed_tests_diagnostics_are_its_output() {
        let tap = "1..3\nnot ok 1 lnd is up\n# (in test file tests/10.bats, line 9)\n#   `false' failed\nok 2 tor\n# a comment after a pass\nnot ok 3 last\n# iteration 2 of 2\n";
        let tests = tap_tests(tap);
        assert_eq!(
            tests[0].output,
            vec![
                "# (in test file tests/10.bats, line 9)",
                "#   `false' failed"
            ]
        );
        assert!(tests[1].output.is_empty());
        assert!(
            tests[2].output.is_empty(),
            "run-gate.sh's own line is not output"
        );
    }

    #[test]
    fn junit_counts_and_names() {
        let xml = r#"<testsuites><testsuite name="x" tests="3">
            <testcase classname="a" name="health &amp; login" time="0.1"/>
            <testcase classname="a" name="lnd is up" time="0.1"><failure type="failure">boom</failure></testcase>
            <testcase classname="a" name="bitcoin" time="0"><skipped>no bitcoin</skipped></testcase>
        </testsuite></testsuites>"#;
        let c = parse_junit(xml);
        assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 1));
        assert_eq!(c.failing, vec!["lnd is up"]);
    }
}
