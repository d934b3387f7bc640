//! The command line as a user meets it: every command's `--help`, found by
//! walking the "Commands:" lists the help itself prints, so a new
//! subcommand is covered without a test naming it.

use std::process::{Command, Stdio};

use super::{launcher, Run};

/// `launcher WORDS… --help`, as wide as on a 100-column terminal whatever
/// the terminal the tests run in (clap wraps help to the terminal's width).
pub fn help(words: &[String]) -> Run {
    Run::of(
        Command::new(launcher())
            .args(words)
            .arg("--help")
            .env("COLUMNS", "100")
            .stdin(Stdio::null())
            .output()
            .expect("launcher runs"),
    )
    .expect(0)
}

/// Every command, as the words that name it: `[]` (the launcher itself),
/// `["run"]`, `["fleet", "plan"]`, …; clap's own `help` left out.
pub fn every_command() -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(words) = todo.pop() {
        for name in subcommands(&help(&words).stdout) {
            let mut sub = words.clone();
            sub.push(name);
            todo.push(sub);
        }
        found.push(words);
    }
    found.sort();
    found
}

/// The names a help text lists under "Commands:".
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}
