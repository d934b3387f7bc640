//! Root on the node trusts nothing another user can write. Each test is an
//! attack that worked on an earlier launcher, replayed in the security lab
//! (support/lab.rs): root runs the real single-file bundle, uid 65534 is
//! the attacker, /tmp and /var/tmp are shared tmpfs as on a node.

use crate::support;

use std::path::PathBuf;

use support::gate_bundle::bundle_with_gate;
use support::lab::Lab;
use support::Run;

const PASSING_GATE: &str = "echo 1..1\necho 'ok 1 the gate ran'\n";

/// A lab holding a bundle whose gate is `gate`, as `$LAB/archy-gate`.
fn lab_with(gate: &str) -> (Lab, PathBuf) {
    let lab = Lab::new();
    let build = tempfile::tempdir().unwrap();
    let bundle = bundle_with_gate(build.path(), gate);
    let bundle = lab.copy_in(&bundle, "archy-gate");
    (lab, bundle)
}

/// What every attack's script ends with: what root did, and what it touched.
const AFTERMATH: &str = r#"
echo "exit=$code"
for f in /tmp/pwned*; do [ -e "$f" ] && echo "PWNED by $f"; done
for d in /tmp/archy-gate /var/tmp/archy-gate; do
  if [ -d "$d" ] && [ ! -L "$d" ] && [ "$(stat -c %u "$d")" != 0 ]; then
    find "$d" -user 0 | sed 's/^/root wrote in the attacker'"'"'s dir: /'
  fi
done
echo "victim file: $(cat "$LAB/victim-file")"
echo "victim dir: $(ls -A "$LAB/victim-dir" | tr '\n' ' ')"
"#;

/// Runs `attack` (as root, using as_nobody), then the bundle as root the
/// way an operator does, then AFTERMATH.
fn attack_then_run(lab: &Lab, bundle: &std::path::Path, attack: &str, run_args: &str) -> Run {
    lab.write("victim-file", "precious\n");
    std::fs::create_dir_all(lab.path("victim-dir")).unwrap();
    let script = format!(
        "{attack}\ncode=0\nARCHY_PASSWORD=pw \"$BUNDLE\" run --skip-preflight {run_args} >\"$LAB/run.out\" 2>\"$LAB/run.err\" || code=$?\n{AFTERMATH}"
    );
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], &script);
    let run_err = std::fs::read_to_string(lab.path("run.err")).unwrap_or_default();
    Run {
        stderr: format!("{}\n--- run's stderr\n{run_err}", run.stderr),
        ..run
    }
}

#[track_caller]
fn assert_unharmed(run: &Run) {
    assert_eq!(
        run.code, 0,
        "the lab script failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("exit=0"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stdout.contains("PWNED"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stdout.contains("root wrote"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("victim file: precious\n"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("victim dir: \n"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_work_dir_another_user_made_is_passed_over_probe_links_and_all() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    // The attacker's dir, with every probe name a symlink to a FIFO: root
    // writing the probe blocks until the attacker reads, who then points
    // the links at their own script for root to execute.
    let attack = r##"
as_nobody sh -c '
  mkdir -m 777 /tmp/archy-gate && cd /tmp/archy-gate && mkfifo fifo
  printf "#!/bin/sh\ntouch /tmp/pwned-by-probe\n" > evil && chmod 755 evil
  perl -e '"'"'symlink "fifo", ".exec-probe-$_" for 1..5000'"'"'
'
as_nobody sh -c 'cat /tmp/archy-gate/fifo >/dev/null; cd /tmp/archy-gate; for f in .exec-probe-*; do ln -sf evil "$f"; done' &
"##;
    let run = attack_then_run(&lab, &bundle, attack, "");
    assert_unharmed(&run);
    assert!(
        run.stderr
            .contains("passed over /tmp/archy-gate: owned by uid 65534, not by you (uid 0) or root: another user made it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("work dir: /var/tmp/archy-gate\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn planted_b_runs_and_lock_links_are_never_written_through() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    // A dir that looks like an earlier run's, each name a link to root's files.
    let attack = r#"
for d in /tmp/archy-gate /var/tmp/archy-gate; do
  as_nobody mkdir -m 755 "$d"
  as_nobody ln -s "$LAB/victim-dir" "$d/b"
  as_nobody ln -s "$LAB/victim-dir" "$d/runs"
  as_nobody ln -s "$LAB/victim-file" "$d/gate.lock"
done
"#;
    let run = attack_then_run(&lab, &bundle, attack, "");
    assert_unharmed(&run);
    for dir in ["/tmp/archy-gate", "/var/tmp/archy-gate"] {
        assert!(
            run.stderr
                .contains(&format!("passed over {dir}: owned by uid 65534")),
            "{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("/home/.cache/archy-gate\n"),
        "root's own cache is the next candidate: {}",
        run.stderr
    );
}

#[test]
fn a_work_dir_that_is_another_users_symlink_is_not_followed() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    let attack = r#"
as_nobody ln -s "$LAB/victim-dir" /tmp/archy-gate
as_nobody mkdir -m 777 /tmp/theirs
as_nobody ln -s /tmp/theirs /var/tmp/archy-gate
"#;
    let run = attack_then_run(&lab, &bundle, attack, "");
    assert_unharmed(&run);
    assert!(
        run.stderr.contains(
            "passed over /tmp/archy-gate: it is a symlink owned by uid 65534, not by you (uid 0) or root"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("passed over /var/tmp/archy-gate: it is a symlink owned by uid 65534"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_work_dir_others_can_write_is_refused_even_when_root_owns_it() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    // Root's dir, but mode 0777: anyone may have planted anything in it.
    let attack = r#"
mkdir -m 777 /tmp/archy-gate && chmod 777 /tmp/archy-gate
as_nobody ln -s "$LAB/victim-file" /tmp/archy-gate/gate.lock
"#;
    let run = attack_then_run(&lab, &bundle, attack, "--workdir /tmp/archy-gate");
    assert!(
        run.stdout.contains("exit=5"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "/tmp/archy-gate: others can write it (mode 0777), so they may have planted anything in it"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("victim file: precious\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_reused_tree_must_be_roots_alone_or_it_is_unpacked_again() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    // Root's earlier run left b/<digest>; now another uid owns the tree
    // (an older launcher's 0755 work dir let it in), content untouched.
    let script = r#"
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight >/dev/null 2>&1
chown -R 65534:65534 /tmp/archy-gate/b/*
chmod 755 /tmp/archy-gate /tmp/archy-gate/b
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight 2>&1 >/dev/null | grep '^bundle:'
echo "not root's after: $(find /tmp/archy-gate/b ! -user 0 | wc -l)"
"#;
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], script);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("failed its re-check (") && run.stdout.contains("owned by uid 65534"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("reusing"), "{}", run.stdout);
    assert!(
        run.stdout.contains("not root's after: 0\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn another_users_lock_never_blocks_root_and_the_lock_is_private() {
    let (lab, bundle) = lab_with(PASSING_GATE);
    let script = r#"
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight >/dev/null 2>&1
echo "lock mode: $(stat -c %a /tmp/archy-gate/gate.lock), dir mode: $(stat -c %a /tmp/archy-gate)"
# The attacker holds a shared flock on the lock for as long as they like.
as_nobody flock -s /tmp/archy-gate/gate.lock sleep 30 2>/dev/null &
sleep 0.5
code=0
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight >/dev/null 2>"$LAB/second.err" || code=$?
echo "second run: exit=$code"
cat "$LAB/second.err" >&2
"#;
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], script);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("lock mode: 600, dir mode: 700"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("second run: exit=0"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_run_killed_mid_unpack_leaves_nothing_the_next_run_keeps() {
    let lab = Lab::new();
    let build = tempfile::tempdir().unwrap();
    // Ballast makes unpacking take long enough to be caught in the act.
    let ballast: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let bundle = support::gate_bundle::bundle_with_gate_and(build.path(), PASSING_GATE, |stage| {
        std::fs::write(stage.join("lifecycle/ballast.bin"), &ballast).unwrap();
    });
    let bundle = lab.copy_in(&bundle, "archy-gate");
    let script = r#"
killed=0
for _ in 1 2 3; do
  ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight >/dev/null 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null && ! compgen -G '/tmp/archy-gate/b/.*partial*' >/dev/null; do :; done
  if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
  wait "$pid" || true
done
echo "killed mid-unpack: $killed; left: $(ls -A /tmp/archy-gate/b | grep -c partial || true)"
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight >/dev/null 2>&1
echo "after a whole run: $(ls -A /tmp/archy-gate/b | grep -v '\.seal$' | tr '\n' ' ')"
"#;
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], script);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("killed mid-unpack: 3; left: ") && !run.stdout.contains("left: 0\n"),
        "the kills were caught mid-unpack, and left a partial dir: {}",
        run.stdout
    );
    let after = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("after a whole run: "))
        .unwrap()
        .trim();
    assert!(
        after.len() == 64 && after.chars().all(|c| c.is_ascii_hexdigit()),
        "only the unpacked bundle (and its seal) remains: {after:?}"
    );
}

#[test]
fn records_another_user_planted_are_ignored_by_status_and_wait() {
    let (lab, bundle) = lab_with("echo 1..1\necho 'not ok 1 the node is broken'\nexit 1\n");
    // Root's gate fails. The attacker forges a later, passing record of the
    // same shape in a candidate work dir of theirs, and one in /tmp named
    // as root's run, for `status ID` run from /tmp.
    let script = r#"
ARCHY_PASSWORD=pw "$BUNDLE" run --skip-preflight --run-id nightly >/dev/null 2>&1 || true
forge() { sed -e 's/"state": "failed"/"state": "passed"/' -e 's/"exit_code": 1/"exit_code": 0/' \
  -e 's/"started_unix": [0-9]*/"started_unix": 9999999999/' -e "s#/tmp/archy-gate#$1#g" \
  -e "s/\"run_id\": \"nightly\"/\"run_id\": \"$2\"/" /tmp/archy-gate/runs/nightly/run.json; }
as_nobody mkdir -p /var/tmp/archy-gate/runs/forged /tmp/nightly
forge /var/tmp/archy-gate forged | as_nobody tee /var/tmp/archy-gate/runs/forged/run.json >/dev/null
forge /tmp nightly | as_nobody tee /tmp/nightly/run.json >/dev/null
code=0; "$BUNDLE" wait >/dev/null 2>"$LAB/wait.err" || code=$?
echo "wait: exit=$code"
cd /tmp
"$BUNDLE" status nightly | grep '^state'
"$BUNDLE" status 2>/dev/null | grep '^run'
cat "$LAB/wait.err" >&2
"#;
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], script);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("wait: exit=1"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("state    failed"), "{}", run.stdout);
    assert!(run.stdout.contains("run      nightly"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("note: ignored /var/tmp/archy-gate: owned by uid 65534"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_operators_one_liner_still_works_on_a_clean_node() {
    // README: scp result/archy-gate node:/tmp/, then run it from there.
    let (lab, bundle) = lab_with(PASSING_GATE);
    let script = r#"
cp "$BUNDLE" /tmp/archy-gate
ARCHY_PASSWORD=pw /tmp/archy-gate run --iterations 5 --allow-destructive --skip-preflight
# The file at /tmp/archy-gate is no attack: status finds the run, says nothing of it.
echo "status notes: $(/tmp/archy-gate status 2>&1 >/dev/null | grep -c note: || true)"
"#;
    let run = lab.sh(&[("BUNDLE", bundle.to_str().unwrap())], script);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ok 1 the gate ran"), "{}", run.stdout);
    assert!(run.stdout.contains("status notes: 0\n"), "{}", run.stdout);
    assert!(
        run.stderr.contains("work dir: /var/tmp/archy-gate\n"),
        "{}",
        run.stderr
    );
}
