//! The flakiness matrix drawn (`matrix.rs`): a row per test, a column per
//! gate node, and in each cell one square per iteration (green passed,
//! red failed, grey skipped, an empty outline not run), so 14 tests x 5
//! nodes x 5 iterations is a picture read at a glance. A test that is
//! flaky on a node has its cell framed in amber and says so; one that
//! failed and never passed there says "failing". Each failed square links
//! to that failure on this page (its node, test, iteration, the output
//! bats printed, and its line in the node's gate.log).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use crate::fleet::matrix::{Mark, Matrix, TestOnNode, TestVerdict};
use crate::fleet::view::LogFailure;

/// The section, when any gate node has test results.
pub fn render(out: &mut String, matrix: &Matrix, failures: &BTreeMap<String, Vec<LogFailure>>) {
    if matrix.tests.is_empty() {
        return;
    }
    let flaky = matrix.with(TestVerdict::Flaky);
    let failing = matrix.with(TestVerdict::Failing);
    let count = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(
        out,
        "<section data-phase=\"matrix\">\n<h2>Tests × nodes × iterations</h2>\n\
         <p class=\"lead\">One square per iteration. <b>Flaky</b>: passed and failed on the same node; \
         <b>failing</b>: failed and never passed there. A red square links to its failure below.</p>\n\
         <p class=\"grid-sum\" data-k=\"grid-sum\"><span class=\"{}\">{} flaky</span> · <span class=\"{}\">{} always failing</span> (test on a node)</p>",
        if flaky.is_empty() { "" } else { "warn-text" },
        count(flaky.len(), "test"),
        if failing.is_empty() { "" } else { "fails" },
        count(failing.len(), "test"),
    );
    out.push_str("<table class=\"grid\">\n<thead><tr><th>test</th>");
    for node in &matrix.nodes {
        let _ = write!(out, "<th data-grid-node=\"{0}\">{0}</th>", escape(node));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &matrix.tests {
        let _ = write!(
            out,
            "<tr data-test=\"{0}\"><td class=\"name\" title=\"{0}\">{0}</td>",
            escape(&row.test)
        );
        for on in &row.nodes {
            cell(
                out,
                &row.test,
                on,
                failures.get(&on.node).map(Vec::as_slice),
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<div class=\"legend\"><span><i class=\"c pass\"></i>passed</span>\
         <span><i class=\"c fail\"></i>failed</span><span><i class=\"c skip\"></i>skipped</span>\
         <span><i class=\"c not-run\"></i>not run</span><span><i class=\"frame\"></i>flaky on that node</span></div>\n</section>\n",
    );
}

/// One test on one node: its squares, and its verdict when it is news.
fn cell(out: &mut String, test: &str, on: &TestOnNode, failures: Option<&[LogFailure]>) {
    let verdict = on.verdict.word();
    let what = match on.verdict {
        TestVerdict::Flaky | TestVerdict::Failing => {
            format!("{verdict}: failed in {}", on.failed_in_words())
        }
        _ => verdict.to_string(),
    };
    let _ = write!(
        out,
        "<td class=\"cells {verdict}\" data-cell=\"{0}\" data-verdict=\"{verdict}\" title=\"{1} on {0}: {2}\">",
        escape(&on.node),
        escape(test),
        escape(&what)
    );
    let mut fails_before = 0;
    for (i, mark) in (1u32..).zip(&on.iterations) {
        let word = mark.word();
        if *mark != Mark::Fail {
            let _ = write!(
                out,
                "<span class=\"c {word}\" data-i=\"{i}\" data-mark=\"{word}\" title=\"iteration {i}: {word}\"></span>"
            );
            continue;
        }
        // Its failure in the node's log: by iteration when the log says
        // which (run-gate.sh's lines), else the n-th failure of the test.
        let all = failures.unwrap_or_default();
        let found = all
            .iter()
            .position(|f| f.name == test && f.iteration == Some(i))
            .or_else(|| {
                all.iter()
                    .enumerate()
                    .filter(|(_, f)| f.name == test && f.iteration.is_none())
                    .nth(fails_before)
                    .map(|(at, _)| at)
            });
        fails_before += 1;
        match found {
            Some(index) => {
                let _ = write!(
                    out,
                    "<a class=\"c fail\" data-i=\"{i}\" data-mark=\"fail\" href=\"#fail-{}-{index}\" title=\"iteration {i}: failed, gate.log line {}\"></a>",
                    escape(&on.node),
                    all[index].line
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<span class=\"c fail\" data-i=\"{i}\" data-mark=\"fail\" title=\"iteration {i}: failed (not found in gate.log)\"></span>"
                );
            }
        }
    }
    if matches!(on.verdict, TestVerdict::Flaky | TestVerdict::Failing) {
        let _ = write!(out, "<b class=\"tag\">{verdict}</b>");
    }
    out.push_str("</td>");
}
