//! The Ansible bridge: inventories read through a real `ansible-inventory`
//! (ansible-core, pinned, in the venv scripts/test.sh makes and names in
//! ARCHY_GATE_ANSIBLE_VENV), `fleet run --inventory` on loopback sshd nodes,
//! the archy.gate collection's playbook on the same busybox-only nodes (no
//! Python there), `fleet report --from-runs`, and `ansible-test sanity`.
//! Without the venv these tests fail, never skip.

use crate::fleet::{archy_node, Node, PASSWORD};
use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::strace::{self, Trace};
use support::{node_report, real_bundle_dir, Run};

const SLOW: &str = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored";

/// The venv's bin dir: the tests fail, saying how to get it, when it is not there.
fn venv_bin() -> PathBuf {
    let venv = std::env::var_os("ARCHY_GATE_ANSIBLE_VENV").expect(
        "ARCHY_GATE_ANSIBLE_VENV is not set: scripts/test.sh sets it to the venv of \
         ensure_ansible_venv (scripts/lib.sh), with the pinned ansible-core",
    );
    let bin = PathBuf::from(venv).join("bin");
    assert!(
        bin.join("ansible-inventory").is_file(),
        "no ansible-inventory in {}: ensure_ansible_venv did not finish",
        bin.display()
    );
    bin
}

/// PATH with the venv first, so `launcher` finds its `ansible-inventory`.
fn path_with_venv() -> String {
    format!(
        "{}:{}",
        venv_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn fixtures() -> PathBuf {
    support::workspace_root().join("launcher/tests/fixtures/ansible")
}

fn collection_root() -> PathBuf {
    support::workspace_root().join("ansible")
}

fn plan(args: &[&str]) -> Run {
    Run::of(
        Command::new(support::launcher())
            .args(["fleet", "plan", "--bundle"])
            .arg(real_bundle_dir().join("archy-gate"))
            .args(args)
            .current_dir(fixtures())
            .env("PATH", path_with_venv())
            .output()
            .unwrap(),
    )
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn inventory_fixtures_give_the_roster_or_the_refusal_expected() {
    let _ = SLOW;
    // INI, group_vars merged by Ansible (archy_primary's over archy_gate's,
    // a host var over both), the archy_gate group chosen, a ProxyCommand
    // split as a shell would, and --limit as Ansible's pattern.
    let run = plan(&[
        "--inventory",
        "ini/hosts.ini",
        "--limit",
        "archy_primary:x250*",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    for expected in [
        "(the hosts of group archy_gate; each host's variables as Ansible merged them)",
        "  n228:\n      ssh          root@192.168.1.228 (address from ansible_host, user from ansible_user)\n      ssh options  -o ConnectTimeout=10 (ansible_ssh_common_args)\n      role         primary (group archy_primary)\n",
        "      iterations   5 (archy_gate_iterations)\n  n198:",
        "      ssh options  -p 2222 (ansible_port); -o ProxyCommand=tailscale nc %h %p -o ConnectTimeout=10 (ansible_ssh_common_args)\n      role         fleet (group archy_fleet)\n",
        "      role         tester (archy_gate_role)\n",
        "pw/n228.pw (archy_gate_password_file)",
        "--limit \"archy_primary:x250*\", Ansible's pattern (ansible-inventory --limit): n228, x250-a\n",
        "  n198         fleet    not selected: keeps its last result, not connected to\n",
        "      proxycommand tailscale nc %h %p\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // www1 is in the inventory, not in group archy_gate.
    assert!(!out.contains("www1"), "{out}");

    // YAML, no archy_gate group: every host; host_vars over group_vars/all.
    let run = plan(&["--inventory", "yaml/hosts.yml"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "(every host: it has no group archy_gate;",
        "  alpha:\n      ssh          root@10.1.0.1 (address from ansible_host, user from ansible_user)\n      ssh options  -i ~/.ssh/archy_ed25519 (ansible_ssh_private_key_file)\n      role         primary (group archy_primary)\n      password     $ARCHY_PW (archy_gate_password_env)\n",
        "  beta:\n      ssh          admin@10.1.0.2",
        "-o ProxyJump=jump@bastion.example:22 (ansible_ssh_extra_args)",
        "      gate         no (archy_gate_target)\n",
        "not gate targets (listed only): gamma\n",
    ] {
        assert!(run.stdout.contains(expected), "missing {expected:?} in:\n{}", run.stdout);
    }

    // A saved dump gives the same nodes with no Ansible at all.
    let dump = support::lab::scratch("inv.");
    let json = dump.path().join("inventory.json");
    let listed = Command::new(venv_bin().join("ansible-inventory"))
        .args(["-i", "yaml/hosts.yml", "--list"])
        .current_dir(fixtures())
        .output()
        .unwrap();
    fs::write(&json, &listed.stdout).unwrap();
    let from_dump = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "plan", "--bundle"])
            .arg(real_bundle_dir().join("archy-gate"))
            .arg("--inventory-json")
            .arg(&json)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap(),
    );
    assert_eq!(from_dump.code, 0, "{}", from_dump.stderr);
    assert!(from_dump
        .stdout
        .contains("  beta:\n      ssh          admin@10.1.0.2"));

    // Refused by name, with what to do.
    for (inventory, says) in [
        ("bad/jinja.yml", "inventory host n1: ansible_host: \"{{ lookup('env', 'N1_ADDRESS') }}\" is Jinja, which ansible-inventory does not render"),
        ("bad/vault.yml", "inventory host n1: ansible_user: is vault-encrypted, and `launcher fleet` never decrypts vault"),
        ("bad/connection.ini", "inventory host n1: ansible_connection: \"docker\": the fleet reaches nodes over OpenSSH only"),
        ("bad/password.ini", "inventory host n1: ansible_password: a login password"),
        ("bad/become.ini", "inventory host n1: ansible_become: the gate runs as the ssh user"),
        ("bad/name.ini", "inventory host \"-bad\": a node name must start with a letter or digit"),
        ("bad/controlpath.ini", "inventory host n1: ansible_ssh_common_args: ssh_options -o ControlPath=/tmp/%C: the fleet sets controlpath itself"),
    ] {
        let run = plan(&["--inventory", inventory]);
        assert_eq!(run.code, 2, "{inventory}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{inventory}: {}", run.stderr);
    }
    // A --limit Ansible matches to no node of the fleet.
    let run = plan(&["--inventory", "ini/hosts.ini", "--limit", "web"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--limit \"web\" (Ansible's pattern"),
        "{}",
        run.stderr
    );

    // Without ansible-inventory on PATH: how to install it.
    let empty = support::lab::scratch("nobin.");
    let run = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "plan", "--bundle"])
            .arg(real_bundle_dir().join("archy-gate"))
            .args(["--inventory", "yaml/hosts.yml"])
            .current_dir(fixtures())
            .env("PATH", empty.path())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("ansible-inventory is not on PATH: install ansible-core"),
        "{}",
        run.stderr
    );
}

/// An inventory for `nodes` as Ansible reaches them: address, port, user
/// and key from host vars, host key checks off in ansible_ssh_common_args;
/// each node's password both as the playbook's vaulted variable and as
/// the environment variable `launcher fleet` reads.
fn inventory(dir: &Path, nodes: &[(&Node, &str)], vaulted: &str) -> PathBuf {
    let mut groups = String::new();
    for role in ["primary", "fleet"] {
        groups.push_str(&format!("        archy_{role}:\n          hosts:\n"));
        for (node, _) in nodes.iter().filter(|(_, r)| *r == role) {
            let n = &node.node;
            groups.push_str(&format!(
                "            {}:\n              ansible_host: 127.0.0.1\n              ansible_port: {}\n              \
                 ansible_ssh_private_key_file: {}\n              archy_gate_rpc_host: \"{}\"\n",
                n.name(),
                n.port(),
                n.identity_file().display(),
                node.standin.host()
            ));
        }
    }
    let text = format!(
        "all:\n  vars:\n    ansible_user: root\n    ansible_ssh_common_args: >-\n      -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o LogLevel=ERROR\n    \
         archy_gate_password_env: ARCHY_PW_TEST\n    archy_gate_iterations: 2\n    archy_gate_password: {vaulted}\n  \
         children:\n    archy_gate:\n      children:\n{groups}"
    );
    let path = dir.join("inventory.yml");
    fs::write(&path, text).unwrap();
    path
}

/// The environment Ansible gets: its own dirs in the test's scratch dir.
fn ansible_env(cmd: &mut Command, scratch: &Path) {
    cmd.env("PATH", path_with_venv())
        .env("ANSIBLE_HOME", scratch.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", scratch.join("ansible-tmp"))
        .env("ANSIBLE_SSH_CONTROL_PATH_DIR", scratch.join("cp"))
        .env("ANSIBLE_REMOTE_TMP", "/tmp/.ansible-tmp")
        .env("ANSIBLE_LOG_PATH", scratch.join("ansible.log"))
        .env("ANSIBLE_COLLECTIONS_PATH", collection_root())
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
        // One connection per node for the play; short, so that the traced
        // run ends soon after the play does.
        .env(
            "ANSIBLE_SSH_ARGS",
            "-o ControlMaster=auto -o ControlPersist=2s",
        )
        .env_remove("ARCHY_PW_TEST")
        .env_remove("ARCHY_PASSWORD");
}

/// Files named python* anywhere below `root`.
fn pythons(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                todo.push(e.path());
            } else if e.file_name().to_string_lossy().starts_with("python") {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn playbook_and_fleet_run_from_one_inventory_agree_on_python_less_nodes() {
    let prim = archy_node("aprim", "healthy");
    let good = archy_node("agood", "healthy");
    let syncing = archy_node("async", "ibd");
    // Busybox-only nodes: nothing called python anywhere in their root.
    for n in [&prim, &good, &syncing] {
        assert_eq!(
            pythons(n.node.root()),
            Vec::<PathBuf>::new(),
            "{}",
            n.node.name()
        );
    }
    let scratch = support::lab::scratch("ans.");
    let s = scratch.path();
    fs::write(s.join("vault-pass"), "vault-key-not-the-node-password\n").unwrap();
    // The node password, vaulted (ansible-vault reads it on stdin).
    let mut encrypt = Command::new(venv_bin().join("ansible-vault"));
    encrypt
        .args(["encrypt_string", "--vault-password-file"])
        .arg(s.join("vault-pass"))
        .args(["--stdin-name", "x"]);
    ansible_env(&mut encrypt, s);
    let mut child = encrypt
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let vaulted_text = String::from_utf8(out.stdout).unwrap();
    let vaulted = vaulted_text
        .trim_start_matches("x: ")
        .replace('\n', "\n      ");
    let nodes = [(&prim, "primary"), (&good, "fleet"), (&syncing, "fleet")];
    let inv = inventory(s, &nodes, vaulted.trim_end());

    // 1. The playbook, traced: every exec on this host, however short.
    let runs = s.join("runs");
    let report_dir = s.join("report");
    let mut playbook = Command::new(venv_bin().join("ansible-playbook"));
    playbook
        .arg("-i")
        .arg(&inv)
        .arg("--vault-password-file")
        .arg(s.join("vault-pass"))
        .arg(collection_root().join("ansible_collections/archy/gate/playbooks/gate.yml"))
        .arg("-e")
        .arg(format!(
            "archy_gate_bundle={} archy_gate_fetch_to={} archy_gate_report_dir={} archy_gate_launcher={}",
            real_bundle_dir().join("archy-gate").display(),
            runs.display(),
            report_dir.display(),
            support::launcher().display()
        ))
        .current_dir(s);
    ansible_env(&mut playbook, s);
    let execs = s.join("execs");
    let run = Run::of(strace::traced(&playbook, &execs).output().unwrap());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The not-ready node came back skipped, with its reason.
    assert!(
        run.stdout.contains("async: not-ready") && run.stdout.contains("not ready: bitcoin"),
        "{}",
        run.stdout
    );
    let leaks = Trace::read(&execs).leaks(PASSWORD, |_| None);
    assert!(
        leaks.is_empty(),
        "the password in an argv or environment: {leaks:#?}"
    );
    for n in [&prim, &good] {
        assert_eq!(n.runs().len(), 1, "one gate run on {}", n.node.name());
    }
    assert_eq!(
        syncing.runs().len(),
        0,
        "nothing ran on the node that was not ready"
    );
    let after_playbook: Vec<usize> = [&prim, &good, &syncing]
        .iter()
        .map(|n| n.node.connections())
        .collect();

    // The reports --from-runs rendered, in the playbook's last play.
    let from_runs: serde_json::Value =
        serde_json::from_slice(&fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    for f in ["report.md", "report.html", "junit.xml", "state.json"] {
        assert!(report_dir.join(f).is_file(), "{f}");
    }

    // 2. `fleet run --inventory` on the same nodes.
    let out = s.join("fleet");
    let fleet = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "run", "--inventory"])
            .arg(&inv)
            .arg("--bundle")
            .arg(real_bundle_dir().join("archy-gate"))
            .arg("--out")
            .arg(&out)
            .env("PATH", path_with_venv())
            .env("ARCHY_PW_TEST", PASSWORD)
            .output()
            .unwrap(),
    );
    // Not ready: nothing failed, one node not ready (4), in both.
    assert_eq!(fleet.code, 4, "{}\n{}", fleet.stdout, fleet.stderr);
    let from_fleet: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    for (n, before) in [&prim, &good, &syncing].iter().zip(after_playbook) {
        let name = n.node.name();
        assert_eq!(
            n.node.connections() - before,
            1,
            "fleet run --inventory: one connection to {name}"
        );
        let (a, b) = (
            node_report(&from_runs, name),
            node_report(&from_fleet, name),
        );
        for field in ["phase", "role", "iterations_passed"] {
            assert_eq!(
                a[field], b[field],
                "{name} {field}: from-runs {a:#}\nfleet {b:#}"
            );
        }
        assert_eq!(a["tests"]["passed"], b["tests"]["passed"], "{name}");
        assert_eq!(a["tests"]["failed"], b["tests"]["failed"], "{name}");
    }
    assert_eq!(node_report(&from_runs, "aprim")["phase"], "passed");
    assert_eq!(node_report(&from_runs, "aprim")["role"], "primary");
    assert_eq!(node_report(&from_runs, "async")["phase"], "not-ready");
    // The verdict is the same ("2 of 3 gate nodes passed"; the roster and
    // times after it differ).
    let verdict = |dir: &Path| {
        fs::read_to_string(dir.join("report.md"))
            .unwrap()
            .lines()
            .find(|l| l.contains("gate nodes passed"))
            .and_then(|l| l.split(". Bundle").next().map(String::from))
    };
    assert_eq!(verdict(&report_dir), verdict(&out));

    // The password is in no log or fetched file, on either side.
    for (path, text) in support::all_text(s).into_iter().chain(
        [&prim, &good, &syncing]
            .iter()
            .flat_map(|n| support::all_text(&n.node.path("/var/tmp"))),
    ) {
        if path.ends_with("vault-pass") || path.starts_with(s.join("execs")) {
            continue;
        }
        assert!(
            !text.contains(PASSWORD),
            "the password in {}",
            path.display()
        );
    }
    assert!(
        s.join("ansible.log").is_file(),
        "Ansible's log was written and searched"
    );
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn from_runs_reads_fetched_runs_as_node_data() {
    let scratch = support::lab::scratch("fr.");
    let runs = scratch.path().join("runs");
    let node = runs.join("n1");
    fs::create_dir_all(&node).unwrap();
    fs::write(node.join("gate.log"), "ok\n").unwrap();
    std::os::unix::fs::symlink("../../secret", node.join("run.json")).unwrap();
    fs::write(node.join("evil.sh"), "#!/bin/sh\n").unwrap();
    let out = scratch.path().join("out");
    let run = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "report", "--from-runs"])
            .arg(&runs)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let n1 = node_report(&report, "n1");
    assert_eq!(n1["phase"], "error", "{n1:#}");
    let refused = n1["fetch_refused"].to_string();
    assert!(
        refused.contains("run.json: a symlink, not kept"),
        "{refused}"
    );
    assert!(
        refused.contains("evil.sh: not a record, log or report"),
        "{refused}"
    );
    assert!(!out.join("nodes/n1/run.json").exists());
    assert!(out.join("nodes/n1/gate.log").is_file());
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn ansible_test_sanity_passes_on_the_collection() {
    // ansible-test wants the collection under .../ansible_collections/NS/NAME
    // and writes tests/output there: a copy in the test's own dir.
    let scratch = support::lab::scratch("sanity.");
    let copy = scratch.path().join("ansible_collections/archy");
    fs::create_dir_all(&copy).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(collection_root().join("ansible_collections/archy/gate"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = fs::remove_dir_all(copy.join("gate/tests/output"));
    let run = Run::of(
        Command::new(venv_bin().join("ansible-test"))
            .args(["sanity", "--local", "--python", "3.11"])
            .current_dir(copy.join("gate"))
            .env("PATH", path_with_venv())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("Running sanity test \"validate-modules\""),
        "{}",
        run.stdout
    );
}
