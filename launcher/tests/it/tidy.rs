//! Tidy tests: what people read, held to the code it describes. The code
//! map (docs/ARCHITECTURE.md) names every module; `run --help` names every
//! variable the gate gets; the exit tables in help are exit.rs's statuses;
//! every `--help` is the one in tests/it/snapshots/ (UPDATE_SNAPSHOTS=1
//! rewrites them); every file of this test binary is compiled into it;
//! every `use` of the crate follows the dependency rule.
//! Each list is read from the source, never copied into this file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::support::help::{every_command, help};
use crate::support::workspace_root;

fn src() -> PathBuf {
    workspace_root().join("launcher/src")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.rs` files in `dir`, by stem, sorted.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut stems: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

/// The module directories in `dir` (those with a mod.rs).
fn module_dirs(dir: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("mod.rs").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

/// The code map's table rows: first column, whole row.
fn code_map() -> Vec<(String, String)> {
    let doc = read(&workspace_root().join("docs/ARCHITECTURE.md"));
    let section = doc
        .split("\n## Code map\n")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a \"## Code map\" section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .take_while(|l| !l.starts_with("`launcher/tests/`"))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let first = l.split('|').nth(1).unwrap().trim().to_string();
            (first, l.to_string())
        })
        .collect()
}

#[test]
fn every_module_is_in_the_code_map_and_every_entry_is_a_module() {
    let rows = code_map();
    let firsts: String = rows.iter().map(|(f, _)| format!("{f} ")).collect();
    let mut missing = Vec::new();
    for stem in rust_files(&src()) {
        if stem != "main" && !firsts.contains(&format!("`{stem}.rs`")) {
            missing.push(format!("{stem}.rs"));
        }
    }
    for dir in module_dirs(&src()) {
        let Some((_, row)) = rows.iter().find(|(f, _)| *f == format!("`{dir}/`")) else {
            missing.push(format!("{dir}/"));
            continue;
        };
        for stem in rust_files(&src().join(&dir)) {
            let name = if stem == "mod" { "mod.rs".into() } else { stem };
            if !row.contains(&format!("`{name}`")) {
                missing.push(format!("{dir}/{name} (in the `{dir}/` row)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md's code map does not name: {missing:?}"
    );

    // And the other way: every name in the first column is a module.
    let mut stale = Vec::new();
    for (first, _) in &rows {
        for name in first.split('`').skip(1).step_by(2) {
            if !src().join(name.trim_end_matches('/')).exists() {
                stale.push(name.to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/ARCHITECTURE.md's code map names what launcher/src lacks: {stale:?}"
    );
}

/// The body of `fn NAME(` in `source`, up to the first line that is `}`.
fn fn_body<'a>(source: &'a str, name: &str, file: &str) -> &'a str {
    source
        .split(&format!("fn {name}("))
        .nth(1)
        .unwrap_or_else(|| panic!("{file} has no `fn {name}(`"))
        .split("\n}\n")
        .next()
        .unwrap()
}

/// The string literal at the start of each piece of `text` after `marker`.
fn names_after(text: &str, marker: &str) -> Vec<String> {
    text.split(marker)
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .filter(|name| {
            name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// The variables `gate::command` gives the gate: each `.env("NAME", …)`,
/// and each `("NAME", …)` of a `.envs(crate::MODULE::FUNCTION(…))` it calls.
fn gate_environment() -> BTreeSet<String> {
    let gate = read(&src().join("gate.rs"));
    let body = fn_body(&gate, "command", "gate.rs");
    let mut names: BTreeSet<String> = names_after(body, ".env(").into_iter().collect();
    for call in body.split(".envs(crate::").skip(1) {
        let path = call.split('(').next().unwrap();
        let (module, function) = path
            .rsplit_once("::")
            .unwrap_or_else(|| panic!("gate.rs: .envs(crate::{path}(…)): no module"));
        let file = format!("{}.rs", module.replace("::", "/"));
        let source = read(&src().join(&file));
        let found = names_after(fn_body(&source, function, &file), "(");
        assert!(
            !found.is_empty(),
            "{file}: read no (\"NAME\", …) in fn {function}"
        );
        names.extend(found);
    }
    names
}

#[test]
fn run_help_names_every_variable_the_gate_gets() {
    let names = gate_environment();
    assert!(
        names.iter().filter(|n| n.starts_with("ARCHY_")).count() >= 5,
        "read gate.rs's environment: {names:?}"
    );
    let text = help(&["run".to_string()]).stdout;
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !text.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "`run --help` does not name {missing:?}, which the gate gets (gate.rs)"
    );
}

/// exit.rs's `ExitStatus`: each variant's number.
fn exit_statuses() -> BTreeSet<u32> {
    let exit = read(&src().join("exit.rs"));
    let body = exit
        .split("pub enum ExitStatus {")
        .nth(1)
        .expect("exit.rs has `pub enum ExitStatus {`")
        .split('}')
        .next()
        .unwrap();
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(_, n)| n.trim().trim_end_matches(','))
        })
        .map(|n| n.parse().unwrap_or_else(|e| panic!("exit.rs: {n:?}: {e}")))
        .collect()
}

/// The numbers of an "Exit status" table in a help text: the indented
/// lines after its heading, each a number then what it means.
fn exit_table(help: &str) -> BTreeSet<u32> {
    help.lines()
        .skip_while(|l| !l.starts_with("Exit status"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (number, meaning) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
            assert!(!meaning.trim().is_empty(), "exit {number} says nothing");
            number
                .parse()
                .unwrap_or_else(|e| panic!("{l:?} in the exit table: {e}"))
        })
        .collect()
}

#[test]
fn the_exit_tables_in_help_are_exit_rs() {
    let statuses = exit_statuses();
    assert!(statuses.len() >= 5, "read exit.rs: {statuses:?}");
    for words in [vec![], vec!["run".to_string()]] {
        let text = help(&words).stdout;
        assert_eq!(
            exit_table(&text),
            statuses,
            "the exit table in `launcher{} --help` is not exit.rs's ExitStatus",
            words.iter().map(|w| format!(" {w}")).collect::<String>()
        );
    }
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots")
}

fn snapshot_name(words: &[String]) -> String {
    if words.is_empty() {
        "launcher.txt".into()
    } else {
        format!("{}.txt", words.join("-"))
    }
}

/// Every command's `--help`, compared byte for byte with its snapshot:
/// a changed flag or text shows in review as a changed file.
#[test]
fn every_help_is_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let dir = snapshot_dir();
    fs::create_dir_all(&dir).unwrap();
    let mut wanted = BTreeSet::new();
    let mut differ = Vec::new();
    for words in every_command() {
        let name = snapshot_name(&words);
        let text = help(&words).stdout;
        let path = dir.join(&name);
        if update {
            fs::write(&path, &text).unwrap();
        } else if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            differ.push(name.clone());
        }
        wanted.insert(name);
    }
    let mut stale = Vec::new();
    for item in fs::read_dir(&dir).unwrap() {
        let name = item.unwrap().file_name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            if update {
                fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        differ.is_empty() && stale.is_empty(),
        "help differs from its snapshot in {differ:?}; snapshots of no command: {stale:?}.\n\
         If the change is meant, rewrite them and review the diff:\n  \
         UPDATE_SNAPSHOTS=1 cargo test --test it tidy::every_help_is_its_snapshot"
    );
}

/// A file in tests/it/ that main.rs does not declare is never compiled,
/// so its tests would silently not exist.
#[test]
fn every_file_of_the_test_binary_is_one_of_its_modules() {
    let it = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let main = read(&it.join("main.rs"));
    let declared: BTreeSet<&str> = main
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let files: BTreeSet<String> = rust_files(&it)
        .into_iter()
        .filter(|stem| stem != "main")
        .chain(module_dirs(&it))
        .collect();
    let undeclared: Vec<&String> = files
        .iter()
        .filter(|f| !declared.contains(f.as_str()))
        .collect();
    assert!(
        undeclared.is_empty(),
        "tests/it/main.rs does not declare {undeclared:?}: add `mod NAME;`"
    );
    // The same for support/.
    let support = read(&it.join("support/mod.rs"));
    let undeclared: Vec<String> = rust_files(&it.join("support"))
        .into_iter()
        .filter(|stem| stem != "mod" && !support.contains(&format!("pub mod {stem};")))
        .collect();
    assert!(
        undeclared.is_empty(),
        "tests/it/support/mod.rs does not declare {undeclared:?}"
    );
    // And a test file at the top of tests/ is a binary of its own again.
    let loose = rust_files(it.parent().unwrap());
    assert!(
        loose.is_empty(),
        "tests/{loose:?}.rs: move into tests/it/ (one test binary) and declare in main.rs"
    );
}

/// The layers of ARCHITECTURE.md's "Dependencies point down", as it lists
/// them: item 3, the node's engines; item 4, the leaves.
fn layers() -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = read(&workspace_root().join("docs/ARCHITECTURE.md"));
    let section = doc
        .split("\n### Dependencies point down\n")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a \"### Dependencies point down\" section");
    // The numbered list: each item runs until the next, the list until a
    // blank line.
    let mut items: Vec<String> = Vec::new();
    for line in section.lines().skip_while(|l| !l.starts_with("1. ")) {
        if line.trim().is_empty() {
            break;
        }
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        if numbered {
            items.push(String::new());
        }
        items.last_mut().unwrap().push_str(line);
        items.last_mut().unwrap().push(' ');
    }
    let item = |n: usize| -> BTreeSet<String> {
        items
            .get(n - 1)
            .unwrap_or_else(|| panic!("no item {n} in \"Dependencies point down\""))
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|name| name.trim_end_matches('/').to_string())
            .collect()
    };
    (item(3), item(4))
}

/// Which of our modules `source` names (`crate::NAME`), `own` left out.
fn uses(source: &str, own: &str) -> BTreeSet<String> {
    source
        .match_indices("crate::")
        .map(|(at, _)| {
            source[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty() && name != own)
        .collect()
}

/// ARCHITECTURE.md's dependency rule, checked on every `use` of the crate:
/// nothing below `commands/` names `cli` or `commands`; only `commands/`
/// names `fleet`; an engine names only engines and leaves; a leaf names
/// only leaves; and every module is in one of the layers.
#[test]
fn dependencies_point_down() {
    let (engines, leaves) = layers();
    let mut modules: Vec<(String, PathBuf)> = Vec::new();
    for stem in rust_files(&src()) {
        modules.push((stem.clone(), src().join(format!("{stem}.rs"))));
    }
    for dir in module_dirs(&src()) {
        for stem in rust_files(&src().join(&dir)) {
            modules.push((dir.clone(), src().join(&dir).join(format!("{stem}.rs"))));
        }
    }
    let top = ["main", "cli", "commands", "fleet"];
    let mut wrong = Vec::new();
    for (module, path) in &modules {
        let used = uses(&read(path), module);
        let allowed: Box<dyn Fn(&str) -> bool> = match module.as_str() {
            "main" | "commands" => Box::new(|_| true),
            "cli" => Box::new(|_| false),
            "fleet" => Box::new(|m| m != "cli" && m != "commands"),
            m if engines.contains(m) => Box::new(|m| engines.contains(m) || leaves.contains(m)),
            m if leaves.contains(m) => Box::new(|m| leaves.contains(m)),
            m => {
                assert!(
                    top.contains(&m),
                    "module {m} is in no layer of ARCHITECTURE.md's \"Dependencies point down\""
                );
                continue;
            }
        };
        for dep in used.iter().filter(|d| !allowed(d)) {
            wrong.push(format!(
                "{} uses {dep}",
                path.strip_prefix(src()).unwrap().display()
            ));
        }
    }
    assert!(wrong.is_empty(), "dependencies pointing up: {wrong:#?}");
}

/// Every struct, enum and type alias of the launcher has a name of its own:
/// two `Verdict`s (a preflight check's and a fleet step's) or two `Trust`s
/// (the signing keys and the RPC's TLS) had a reader guess which was meant.
#[test]
fn no_two_types_share_a_name() {
    let mut files: Vec<PathBuf> = rust_files(&src())
        .iter()
        .map(|stem| src().join(format!("{stem}.rs")))
        .collect();
    for dir in module_dirs(&src()) {
        for stem in rust_files(&src().join(&dir)) {
            files.push(src().join(&dir).join(format!("{stem}.rs")));
        }
    }
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for path in &files {
        let text = read(path);
        // Test modules may name their helpers freely.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words
                .iter()
                .position(|w| matches!(*w, "struct" | "enum" | "type"));
            let Some(name) = at.and_then(|i| words.get(i + 1)) else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let is_item = words[..at.unwrap()]
                .iter()
                .all(|w| *w == "pub" || w.starts_with("pub("));
            if is_item && name.starts_with(|c: char| c.is_ascii_uppercase()) {
                let place = path.strip_prefix(src()).unwrap().display().to_string();
                seen.entry(name).or_default().push(place);
            }
        }
    }
    let twins: Vec<String> = seen
        .into_iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(name, places)| format!("{name}: {}", places.join(", ")))
        .collect();
    assert!(twins.is_empty(), "types that share a name: {twins:#?}");
}
