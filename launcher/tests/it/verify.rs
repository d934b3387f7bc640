//! `verify`, `extract` and `inspect` on good bundles: which digests were
//! checked, the pin in its three places, the bundle appended to the running
//! executable, and a faithful unpack.

use crate::support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{launch, static_launcher, Run, Stage};

fn packed(tmp: &Path) -> (Stage, PathBuf) {
    let stage = Stage::minimal(tmp.join("stage"))
        .file("bin/tool", b"#!/bin/sh\necho tool\n", 0o755)
        .symlink("bin/alias", "tool")
        .file("lib/data.txt", b"data\n", 0o600)
        .dir("lib/empty");
    let bundle = stage.pack(&tmp.join("out"));
    (stage, bundle)
}

/// The bundle alone in a directory: no SHA256SUMS, no .sha256 beside it.
fn alone(tmp: &Path, bundle: &Path) -> PathBuf {
    let dir = tmp.join("alone");
    fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("archy-gate");
    fs::copy(bundle, &copy).unwrap();
    copy
}

fn whole_sha256(path: &Path) -> String {
    support::sha256_hex(&fs::read(path).unwrap())
}

fn verify(bundle: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify".to_string(), bundle.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    launch(args)
}

#[test]
fn verify_says_which_digests_it_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, bundle) = packed(tmp.path());

    // Beside its SHA256SUMS, as `pack` leaves it: both checked.
    let run = verify(&bundle, &[]).expect(0);
    assert!(run.stdout.contains("payload  ok"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("SHA256SUMS: this is the artifact that was built"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("contents ok"), "{}", run.stdout);

    // Alone: intact, origin unproven, and it says so.
    let lone = alone(tmp.path(), &bundle);
    let run = verify(&lone, &[]).expect(0);
    assert!(run.stdout.contains("payload  ok"), "{}", run.stdout);
    assert!(run.stdout.contains("not checked"), "{}", run.stdout);
    assert!(run.stdout.contains("origin is unproven"), "{}", run.stdout);

    // --sha256: right, wrong, malformed.
    let sha = whole_sha256(&bundle);
    let run = verify(&lone, &["--sha256", &sha.to_uppercase()]).expect(0);
    assert!(run.stdout.contains("matches --sha256"), "{}", run.stdout);
    let wrong = format!("{}0", &sha[..63]).replace(&sha[..63], &"1".repeat(63));
    let run = verify(&lone, &["--sha256", &wrong]).expect(3);
    assert!(
        run.stderr.contains("not the artifact that was built"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&sha),
        "names the actual digest: {}",
        run.stderr
    );
    let run = verify(&lone, &["--sha256", "abc"]).expect(2);
    assert!(run.stderr.contains("64 hex digits"), "{}", run.stderr);

    // archy-gate.sha256 beside the file, as sha256sum writes it or bare.
    let pin = lone.with_file_name("archy-gate.sha256");
    fs::write(&pin, format!("{sha}  archy-gate\n")).unwrap();
    let run = verify(&lone, &[]).expect(0);
    assert!(
        run.stdout
            .contains("archy-gate.sha256: this is the artifact"),
        "{}",
        run.stdout
    );
    fs::write(&pin, format!("{wrong}\n")).unwrap();
    let run = verify(&lone, &[]).expect(3);
    assert!(
        run.stderr.contains("archy-gate.sha256 pins"),
        "{}",
        run.stderr
    );
    fs::write(&pin, "not a digest\n").unwrap();
    verify(&lone, &[]).expect(2);
}

#[test]
fn the_single_file_is_its_own_launcher() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, bundle) = packed(tmp.path());
    let lone = alone(tmp.path(), &bundle);
    let sha = whole_sha256(&lone);

    let run = Run::of(
        Command::new(&lone)
            .args(["verify", "--sha256", &sha])
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(
        run.stdout.starts_with(&lone.display().to_string()),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("matches --sha256"), "{}", run.stdout);

    let run = Run::of(
        Command::new(&lone)
            .args(["inspect", "--json"])
            .output()
            .unwrap(),
    )
    .expect(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["manifest"]["entry"], "lifecycle/run-gate.sh");
    assert_eq!(
        doc["payload"]["offset"],
        fs::metadata(static_launcher()).unwrap().len()
    );

    let target = tmp.path().join("unpacked");
    Run::of(
        Command::new(&lone)
            .arg("extract")
            .arg("--to")
            .arg(&target)
            .output()
            .unwrap(),
    )
    .expect(0);
    assert!(target.join("lifecycle/run-gate.sh").is_file());

    // A launcher with nothing appended says so, and how to name a bundle.
    let run = Run::of(
        Command::new(static_launcher())
            .arg("verify")
            .output()
            .unwrap(),
    )
    .expect(2);
    assert!(run.stderr.contains("carries no bundle"), "{}", run.stderr);
}

#[test]
fn extract_reproduces_the_stage_with_normalised_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let (stage, bundle) = packed(tmp.path());
    let target = tmp.path().join("deep/new/dir");
    let run = launch([
        "extract".as_ref(),
        bundle.as_os_str(),
        "--to".as_ref(),
        target.as_os_str(),
    ])
    .expect(0);
    assert!(run.stdout.contains("extracted 3 files"), "{}", run.stdout);
    assert_eq!(support::tree(&stage.root), support::tree(&target));
    let mode = |p: &str| fs::metadata(target.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("bin/tool"), 0o755);
    assert_eq!(
        mode("lib/data.txt"),
        0o644,
        "0600 in the stage, 0644 in the bundle"
    );
    assert_eq!(mode("lib/empty"), 0o755);
    assert_eq!(
        fs::read_link(target.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(fs::read(target.join("lib/data.txt")).unwrap(), b"data\n");
    let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("dir")],
        "no staging dir left behind"
    );

    // An existing empty dir is fine; a non-empty one is refused untouched.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    launch([
        "extract".as_ref(),
        bundle.as_os_str(),
        "--to".as_ref(),
        empty.as_os_str(),
    ])
    .expect(0);
    let run = launch([
        "extract".as_ref(),
        bundle.as_os_str(),
        "--to".as_ref(),
        target.as_os_str(),
    ])
    .expect(2);
    assert!(
        run.stderr.contains("exists and is not empty"),
        "{}",
        run.stderr
    );
}

/// Every command and subcommand, found by walking the help itself.
#[test]
fn every_command_explains_itself_with_an_example() {
    let commands = support::help::every_command();
    assert!(
        commands.len() > 10,
        "the walk found the commands: {commands:?}"
    );
    for words in commands {
        let shown = format!("launcher {}", words.join(" "));
        if !words.is_empty() {
            let run = support::help::help(&words);
            assert!(
                run.stdout.contains("Example"),
                "{shown} --help has no example:\n{}",
                run.stdout
            );
        }
        let mut bogus = words.clone();
        bogus.push("--bogus".into());
        let run = launch(&bogus).expect(2);
        assert!(
            run.stderr.contains("--bogus"),
            "{shown} --bogus: {}",
            run.stderr
        );
    }
}
