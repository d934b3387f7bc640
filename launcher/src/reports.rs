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

/// Each TAP result line as (test name, outcome):
/// `ok N name`, `not ok N name`, `ok N name # skip reason`, `# TODO` passes.
pub fn tap_results(text: &str) -> Vec<(String, Outcome)> {
    let mut results = Vec::new();
    for line in text.lines() {
        let (passed, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else {
            continue;
        };
        let rest = rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
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
        results.push((name.trim().to_string(), outcome));
    }
    results
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
