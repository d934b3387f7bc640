//! Secrets stay secret and verdicts stay honest, whatever the operator's
//! flags, the bundle's strings or the gate's output: the TLS and cleartext
//! rules of the RPC client, control characters escaped before they reach a
//! terminal, node commands without our environment, a password with a line
//! break refused, and a gate that counted no test never green. Black-box:
//! the real binary, or a bundle headed by the static launcher.

use crate::support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::gate_bundle::bundle_with_gate;
use support::{launch, launcher, Run, Stage};

const PASSWORD: &str = "correct-horse-battery-staple";

/// `launcher rpc health` with `args`, against nothing that answers.
fn rpc(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(launcher());
    cmd.arg("rpc")
        .arg("health")
        .args(["--timeout", "2"])
        .args(args)
        .env_remove("ARCHY_ALLOW_CLEARTEXT")
        .env_remove("ARCHY_HOST")
        .env_remove("ARCHY_SCHEME")
        .env("ARCHY_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::of(cmd.output().unwrap())
}

// ---------------------------------------------------------------------------
// TLS and cleartext (the host actually dialled decides).

#[test]
fn a_host_with_user_info_is_refused_not_taken_for_loopback() {
    // `[::1]@OTHER` once counted as loopback (TLS verification off) while
    // the password went to OTHER.
    for host in ["[::1]@192.0.2.1", "127.0.0.1@192.0.2.1:443", "127.0.0.1/x"] {
        let run = rpc(&["-v", "--host", host], &[]);
        assert_eq!(run.code, 2, "{host}: {}", run.stderr);
        assert!(
            run.stderr.contains("not host[:port]"),
            "{host}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("loopback"), "{host}: {}", run.stderr);
    }
}

#[test]
fn cleartext_to_another_host_is_refused_unless_allowed_and_v_says_so() {
    let run = rpc(&["--scheme", "http", "--host", "192.0.2.1"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cleartext"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-cleartext"), "{}", run.stderr);

    // Allowed: by the flag or the environment (the gate's suite), and -v
    // says what it is, never "verified".
    for (args, env) in [
        (vec!["--allow-cleartext"], vec![]),
        (vec![], vec![("ARCHY_ALLOW_CLEARTEXT", "1")]),
    ] {
        let mut all = vec!["-v", "--scheme", "http", "--host", "192.0.2.1"];
        all.extend(args);
        let run = rpc(&all, &env);
        assert_eq!(run.code, 5, "unreachable, not refused: {}", run.stderr);
        assert!(
            run.stderr.contains("cleartext http to another host"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("verified against"), "{}", run.stderr);
    }

    // Loopback needs no flag, and -v says it is cleartext.
    let run = rpc(&["-v", "--scheme", "http", "--host", "127.0.0.1:1"], &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("cleartext http on loopback"),
        "{}",
        run.stderr
    );

    // `run` and `preflight` refuse it before anything else.
    for cmd in ["run", "preflight"] {
        let run = launch([cmd, "--scheme", "http", "--host", "192.0.2.1"]);
        assert_eq!(run.code, 2, "{cmd}: {}", run.stderr);
        assert!(run.stderr.contains("cleartext"), "{cmd}: {}", run.stderr);
    }
}

#[test]
fn help_states_the_tls_and_cleartext_rules() {
    let run = launch(["rpc", "--help"]).expect(0);
    for words in [
        "TLS:",
        "loopback",
        "Cleartext:",
        "--allow-cleartext",
        "host[:port]",
    ] {
        assert!(run.stdout.contains(words), "rpc --help lacks {words:?}");
    }
    for cmd in ["run", "preflight"] {
        let run = launch([cmd, "--help"]).expect(0);
        assert!(run.stdout.contains("--allow-cleartext"), "{cmd} --help");
    }
    let readme = fs::read_to_string(support::workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains("--allow-cleartext"),
        "README names the flag"
    );
}

// ---------------------------------------------------------------------------
// Control characters from the bundle never reach the terminal raw.

#[test]
fn inspect_escapes_control_characters_from_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let evil = "gate\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    let description = serde_json::json!({
        "name": evil,
        "version": format!("1.0{evil}"),
        "sources": {"suite\u{1b}[8m": evil},
    });
    let stage = Stage::minimal(tmp.path().join("stage")).file(
        "stage.json",
        description.to_string().as_bytes(),
        0o644,
    );
    let bundle = stage.pack(&tmp.path().join("out"));
    let run = launch(["inspect".as_ref(), bundle.as_os_str()]).expect(0);
    assert!(
        !run.stdout.contains(['\u{1b}', '\u{7}', '\u{9b}']),
        "inspect printed a raw control character: {:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("gate\\x1b]0;pwned\\x07"),
        "{}",
        run.stdout
    );
    // --json is for machines: JSON escapes them itself.
    let run = launch(["inspect".as_ref(), bundle.as_os_str(), "--json".as_ref()]).expect(0);
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
}

// ---------------------------------------------------------------------------
// Node commands get a minimal environment.

#[test]
fn node_commands_never_see_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let seen = tmp.path().join("seen");
    fs::create_dir(&seen).unwrap();
    for tool in ["podman", "systemctl", "bitcoin-cli"] {
        let shim = bin.join(tool);
        fs::write(
            &shim,
            format!(
                "#!/bin/sh\nenv > '{}/{tool}.env'\ncat /proc/$$/environ > '{}/{tool}.environ'\nexit 1\n",
                seen.display(),
                seen.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = Run::of(
        Command::new(launcher())
            .args(["preflight", "--host", "127.0.0.1:1"])
            .env("PATH", &path)
            .env("ARCHY_PASSWORD", PASSWORD)
            .env("ARCHY_GATE_SECRET_ISH", "kept-out")
            .output()
            .unwrap(),
    );
    assert!(run.code == 0 || run.code == 4, "{}", run.stderr);
    let mut looked = 0;
    for item in fs::read_dir(&seen).unwrap() {
        let path = item.unwrap().path();
        let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
        looked += 1;
        assert!(
            !text.contains(PASSWORD),
            "{} holds the password",
            path.display()
        );
        assert!(!text.contains("ARCHY_PASSWORD"), "{}", path.display());
        assert!(!text.contains("kept-out"), "{}: {text}", path.display());
    }
    assert!(looked >= 2, "the shims ran: {}", run.stderr);
}

// ---------------------------------------------------------------------------
// Gates run by `run` (bundles headed by the static launcher).

fn gate(bundle: &Path, workdir: &Path, args: &[&str], password: &str) -> Run {
    Run::of(
        Command::new(bundle)
            .arg("run")
            .arg("--workdir")
            .arg(workdir)
            .arg("--skip-preflight")
            .args(args)
            .env("ARCHY_PASSWORD", password)
            .output()
            .unwrap(),
    )
}

fn only_record(workdir: &Path) -> serde_json::Value {
    let runs: Vec<_> = fs::read_dir(workdir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::from_slice(&fs::read(runs[0].join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_password_with_a_line_break_is_refused_before_the_gate_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(tmp.path(), "echo 1..1\necho \"ok 1 $ARCHY_PASSWORD\"\n");
    let wd = tmp.path().join("wd");
    let run = gate(&bundle, &wd, &[], "first-line\nsecond-line");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line break"), "{}", run.stderr);
    assert!(!run.stderr.contains("second-line"), "{}", run.stderr);
    assert!(!run.stdout.contains("second-line"), "{}", run.stdout);
    assert!(!wd.join("runs").exists(), "no run was recorded");
}

#[test]
fn a_gate_that_counted_no_test_fails_unless_told_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(tmp.path(), "echo 'all good, trust me'\nexit 0\n");

    let wd = tmp.path().join("wd");
    let run = gate(&bundle, &wd, &[], PASSWORD);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no test ran"), "{}", run.stderr);
    assert!(!run.stderr.contains("gate passed"), "{}", run.stderr);
    let rec = only_record(&wd);
    assert_eq!(rec["state"], "failed");
    assert_eq!(rec["exit_code"], 0, "the gate's own exit stays recorded");
    assert_eq!(rec["allow_no_tests"], false);

    let wd = tmp.path().join("wd-allowed");
    let run = gate(&bundle, &wd, &["--allow-no-tests"], PASSWORD);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rec = only_record(&wd);
    assert_eq!(rec["state"], "passed");
    assert_eq!(rec["allow_no_tests"], true);
}

// ---------------------------------------------------------------------------
// The example suite's curl fallback mirrors the launcher's rule.

/// `rpc health` from bundle/lifecycle/lib/rpc.bash, without the launcher,
/// with a fake curl that records its arguments: (status, stderr, curl's args).
fn suite_rpc(host: &str, scheme: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let args = tmp.path().join("curl-args");
    fs::write(
        bin.join("curl"),
        format!(
            "#!/bin/sh\necho \"$*\" > '{}'\necho '{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{}}}}'\n",
            args.display()
        ),
    )
    .unwrap();
    fs::set_permissions(bin.join("curl"), fs::Permissions::from_mode(0o755)).unwrap();
    let lib = support::workspace_root().join("bundle/lifecycle/lib/rpc.bash");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!(". '{}'; rpc health", lib.display()))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("ARCHY_HOST", host)
        .env("ARCHY_SCHEME", scheme)
        .env("ARCHY_GATE_RUN_DIR", tmp.path())
        .env_remove("ARCHY_GATE_LAUNCHER")
        .env_remove("ARCHY_ALLOW_CLEARTEXT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run::of(cmd.output().unwrap());
    let curl = fs::read_to_string(&args).unwrap_or_default();
    (run.code, run.stderr, curl)
}

#[test]
fn the_suites_curl_fallback_verifies_tls_except_on_loopback() {
    let (code, _, curl) = suite_rpc("127.0.0.1:8443", "https", &[]);
    assert_eq!(code, 0);
    assert!(curl.contains(" -k "), "loopback: {curl}");
    let (code, _, curl) = suite_rpc("192.0.2.1", "https", &[]);
    assert_eq!(code, 0);
    assert!(!curl.contains("-k"), "another host is verified: {curl}");
    let (code, stderr, curl) = suite_rpc("[::1]@192.0.2.1", "https", &[]);
    assert_eq!((code, curl.as_str()), (2, ""), "{stderr}");
    let (code, stderr, curl) = suite_rpc("192.0.2.1", "http", &[]);
    assert_eq!((code, curl.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("cleartext"), "{stderr}");
    let (code, _, curl) = suite_rpc("192.0.2.1", "http", &[("ARCHY_ALLOW_CLEARTEXT", "1")]);
    assert_eq!(code, 0);
    assert!(!curl.contains("-k"), "{curl}");
}
