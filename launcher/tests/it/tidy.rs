//! Tidy tests: what people read, held to the code it describes. The code
//! map (docs/ARCHITECTURE.md) names every module; `run --help` names every
//! variable the gate gets; the exit tables in help are exit.rs's statuses;
//! every `--help` is the one in tests/it/snapshots/ (UPDATE_SNAPSHOTS=1
//! rewrites them); every file of this test binary is compiled into it;
//! every `use` of the crate follows the dependency rule; test code names
//! no absolute path outside temp dirs and nodes.
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
    let fleet_run = vec!["fleet".to_string(), "run".to_string()];
    for words in [vec![], vec!["run".to_string()], fleet_run] {
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

/// Where an absolute path in test code may point (the dir or below it),
/// and why no test writes there on the host. The rule: a test writes only
/// below a temp dir or inside a node's root (a chroot: `BareNode::path`,
/// `put`, `sh`); every other absolute path it names is only read.
/// Anything else, e.g. "/nonexistent/x" handed to code that creates its
/// parents, lands in the real `/` when the tests run as root.
const ABSOLUTE_PATHS_ALLOWED: &[(&str, &str)] = &[
    ("/proc/", "the kernel's, read"),
    (
        "/dev/",
        "device nodes, read or written as sinks (/dev/null)",
    ),
    ("/bin/", "the host's programs, run"),
    ("/usr/", "the host's programs, run"),
    ("/etc/passwd", "read, or named as a path a check refuses"),
    ("/tmp", "a temp dir (on the host, or a node's own)"),
    ("/var/tmp", "a temp dir (on the host, or a node's own)"),
    ("/root", "inside a node: root's home there"),
    ("/opt/gate", "inside a node: the unpacked bundle"),
    ("/etc/archy-gate/", "inside a node: its trusted keys"),
    ("/etc/nginx/", "inside a node: the config preflight reads"),
    (
        "/etc/containers/",
        "inside a node: the units preflight reads",
    ),
    (
        "/etc/victim",
        "inside a node: a file a hostile link aims at",
    ),
    ("/home/archipelago/", "inside a node: the app user's units"),
    (
        "/var/lib/archipelago",
        "an Archy node's app user's home, parsed",
    ),
    (
        "/var/lib/archy-standin",
        "inside a node: the stand-in's state",
    ),
    (
        "/var/lib/archy-gate-tests/",
        "the host, on purpose: sshd chroots only below root-owned dirs, not /tmp; removed on drop",
    ),
    (
        "/run/sshd",
        "the host: sshd's privilege separation dir, as Debian's unit makes it",
    ),
];

/// One literal, where the allowlist cannot tell from its prefix: a file
/// (from launcher/) and the literal, and why.
const ABSOLUTE_LITERALS_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "tests/it/fleet_report_html.rs",
        "/report.html",
        "a suffix looked for in output, not a path",
    ),
    (
        "tests/it/standin_node.rs",
        "/nowhere",
        "a state file inside a node that must be missing: read, never made",
    ),
];

/// The `"..."` string literals of Rust `source` that are one absolute path
/// (a `/`, then no whitespace and no `:`, so not a command line, a PATH
/// or a message), with their line numbers. Byte strings are content, not
/// places: left out. Comments, char literals and raw strings are skipped
/// over so that a quote inside them starts nothing.
fn absolute_path_literals(source: &str) -> Vec<(usize, String)> {
    let bytes = source.as_bytes();
    let line_of = |at: usize| 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = source[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'\'' => {
                // A char literal ('"', '\'', '\u{..}') or a lifetime ('a).
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 2 + source[i + 2..].find('\'').map_or(bytes.len(), |n| n + 1);
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                i = source[open + 1..]
                    .find(&close)
                    .map_or(bytes.len(), |n| open + 1 + n + close.len());
            }
            b'"' => {
                let byte_string = i > 0 && bytes[i - 1] == b'b';
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let text = &source[start..end.min(bytes.len())];
                let one_path = text.starts_with('/')
                    && text[1..].starts_with(|c: char| c.is_ascii_alphanumeric())
                    && !text.contains(|c: char| c.is_whitespace() || c == ':' || c == '\\');
                if one_path && !byte_string {
                    out.push((line_of(i), text.to_string()));
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether `path` is `dir` or below it (`/tmp` holds `/tmp/x`, not `/tmpx`).
fn below(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Test code names no absolute path outside temp dirs and nodes: the
/// `#[cfg(test)]` module of every file in launcher/src (it is each file's
/// last item, so the scan runs from it to the end) and all of
/// launcher/tests. Each offence is reported as `file:line: "literal"`.
#[test]
fn test_code_writes_no_absolute_path_outside_temp_dirs_and_nodes() {
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    let sources = rust_files_below(&launcher.join("src"))
        .into_iter()
        .chain(rust_files_below(&launcher.join("tests")));
    for path in sources {
        let file = path
            .strip_prefix(launcher)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if file == "tests/it/tidy.rs" {
            continue; // its allowlists name the paths they allow
        }
        let source = read(&path);
        let (skipped_lines, tested) = if file.starts_with("src/") {
            match source.find("#[cfg(test)]") {
                Some(at) => (source[..at].lines().count(), &source[at..]),
                None => continue,
            }
        } else {
            (0, source.as_str())
        };
        for (line, literal) in absolute_path_literals(tested) {
            let allowed = ABSOLUTE_PATHS_ALLOWED
                .iter()
                .any(|(prefix, _)| below(&literal, prefix))
                || ABSOLUTE_LITERALS_ALLOWED
                    .iter()
                    .any(|(f, l, _)| *f == file && *l == literal);
            if !allowed {
                offences.push(format!(
                    "launcher/{file}:{}: {literal:?}",
                    skipped_lines + line
                ));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "test code names absolute paths outside temp dirs and nodes; use a tempdir, \
         or add the path to ABSOLUTE_PATHS_ALLOWED in tests/it/tidy.rs with why no \
         test writes there:\n  {}",
        offences.join("\n  ")
    );
}
