//! The evidence a release pipeline checks: the fleet's signed results
//! (attestations.jsonl) judged by `verify-results`, round trip and every
//! refusal; the SBOM and provenance beside the bundle `bundle/build.sh`
//! made, judged by CycloneDX's and in-toto's own definitions; the DSSE
//! signatures, judged by securesystemslib (launcher/tests/evidence/check.py,
//! the evidence venv). The Nix build's evidence is judged the same way by
//! scripts/test-nix.sh.

use crate::fleet::{archy_node, Fleet};
use crate::support::{self, evidence_check, real_bundle_dir, Run};

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;

fn launcher(args: &[&OsStr]) -> Run {
    Run::of(
        Command::new(support::launcher())
            .args(args)
            .output()
            .unwrap(),
    )
}

fn keygen(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let (secret, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let run = launcher(&[
        "keygen".as_ref(),
        "--secret".as_ref(),
        secret.as_os_str(),
        "--public".as_ref(),
        public.as_os_str(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = fs::read_to_string(&public).unwrap();
    (secret, text.lines().last().unwrap().to_string())
}

fn verify_results(attestations: &Path, trust: &str, bundle: &[&str], require: &[&str]) -> Run {
    let mut cmd = Command::new(support::launcher());
    cmd.arg("verify-results")
        .arg(attestations)
        .args(["--trust", trust]);
    cmd.args(bundle);
    for r in require {
        cmd.args(["--require", r]);
    }
    Run::of(cmd.output().unwrap())
}

/// A line of `stdout` that starts with `start` and holds every one of `parts`.
fn line_with<'a>(stdout: &'a str, start: &str, parts: &[&str]) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(start) && parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line {start:?} with {parts:?} in:\n{stdout}"))
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn fleet_results_are_signed_and_verify_results_refuses_each_shortfall() {
    let primary = archy_node("ev-prim", "healthy");
    let tester = archy_node("ev-test", "healthy");
    let mut fleet = Fleet::new();
    fleet.add(&primary, "primary");
    fleet.add(&tester, "tester");
    let keys = support::lab::scratch("evidence-keys.");
    let (key, public) = keygen(keys.path(), "operator");
    let (_, other_public) = keygen(keys.path(), "other");

    let mut cmd = fleet.command("run", 5, 2);
    cmd.arg("--attest-key").arg(&key);
    let run = Run::of(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("attested 2 node run(s)"),
        "{}",
        run.stderr
    );
    let file = fleet.out().join("attestations.jsonl");
    let signed = fs::read_to_string(&file).unwrap();
    assert_eq!(signed.lines().count(), 2, "{signed}");
    let bundle = real_bundle_dir().join("archy-gate");
    let bundle_arg = ["--bundle", bundle.to_str().unwrap()];
    let policy = ["role=primary:iterations=5", "role=tester"];

    // Accepted, each node by name.
    let ok = verify_results(&file, &public, &bundle_arg, &policy);
    assert_eq!(ok.code, 0, "{ok:?}");
    line_with(
        &ok.stdout,
        "ok       ev-prim (primary): role=primary:iterations=5",
        &["5 of 5 iterations passed"],
    );
    line_with(
        &ok.stdout,
        "ok       ev-test (tester): role=tester",
        &["PASSED"],
    );
    assert!(
        ok.stdout
            .ends_with("verified: every requirement holds for this bundle\n"),
        "{}",
        ok.stdout
    );

    // A third party accepts the signatures, and reads each payload strictly
    // as an in-toto Statement v1 with the test-result predicate.
    let judged = evidence_check(&["dsse".as_ref(), file.as_os_str(), public.as_ref()]);
    assert_eq!(judged.code, 0, "{judged:?}");

    // One byte of an envelope changed: the payload's first base64 letter.
    let mut lines: Vec<String> = signed.lines().map(String::from).collect();
    let tampered = keys.path().join("tampered.jsonl");
    let at = lines[0].find("\"payload\":\"").unwrap() + "\"payload\":\"".len() + 20;
    let mut bytes = lines[0].clone().into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    fs::write(
        &tampered,
        [String::from_utf8(bytes).unwrap(), lines[1].clone()].join("\n"),
    )
    .unwrap();
    let refused = verify_results(&tampered, &public, &bundle_arg, &policy);
    assert_eq!(refused.code, 3, "{refused:?}");
    line_with(
        &refused.stdout,
        "REFUSED  ",
        &[
            "tampered.jsonl:1: the signature by key",
            "does not match the envelope",
        ],
    );

    // Another bundle's digest.
    let other = "0".repeat(64);
    let wrong = verify_results(&file, &public, &["--sha256", &other], &policy);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    line_with(
        &wrong.stdout,
        "ignored  ",
        &["node ev-prim ran bundle sha256", "not this bundle"],
    );
    line_with(
        &wrong.stdout,
        "MISSING  (no node): role=primary:iterations=5",
        &["no valid attestation of this bundle"],
    );

    // Another key.
    let stranger = verify_results(&file, &other_public, &bundle_arg, &policy);
    assert_eq!(stranger.code, 3, "{stranger:?}");
    line_with(
        &stranger.stdout,
        "REFUSED  ",
        &[
            "attestations.jsonl:1: it is signed only by key",
            "which is not trusted",
        ],
    );

    // A node missing: the primary's line left out.
    let node_of = |line: &str| -> String {
        use base64::Engine;
        let env: serde_json::Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap();
        let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        statement["predicate"]["configuration"][0]["annotations"]["node"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The state's order, which is the roster's.
    assert_eq!(node_of(&lines[0]), "ev-prim");
    assert_eq!(node_of(&lines[1]), "ev-test");
    let missing = keys.path().join("missing.jsonl");
    fs::write(&missing, format!("{}\n", lines[1])).unwrap();
    let short = verify_results(&missing, &public, &bundle_arg, &policy);
    assert_eq!(short.code, 1, "{short:?}");
    line_with(
        &short.stdout,
        "MISSING  ev-prim (primary): role=primary:iterations=5",
        &["no attestation of its run of this bundle"],
    );
    line_with(&short.stdout, "ok       ev-test (tester)", &[]);

    // The primary passed only 4 of 5: the state says so, and `fleet report
    // --attest-key` signs the state again.
    let state_path = fleet.out().join("state.json");
    let state_text = fs::read_to_string(&state_path).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&state_text).unwrap();
    let prim = state["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == "ev-prim")
        .unwrap();
    prim["iterations_passed"] = 4.into();
    prim["phase"] = "failed".into();
    fs::write(&state_path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let mut report = fleet.command("report", 5, 2);
    report.arg("--attest-key").arg(&key);
    let resigned = Run::of(report.output().unwrap());
    assert!(
        resigned.stderr.contains("attested 2 node run(s)"),
        "{resigned:?}"
    );
    let four = verify_results(&file, &public, &bundle_arg, &policy);
    assert_eq!(four.code, 1, "{four:?}");
    line_with(
        &four.stdout,
        "MISSING  ev-prim (primary): role=primary:iterations=5",
        &["attestations.jsonl:1: 4 passed of 5 asked, 5 needed, result FAILED"],
    );
    // node= selects by name, and iterations=4 is then enough but FAILED is not.
    let by_name = verify_results(&file, &public, &bundle_arg, &["node=ev-prim:iterations=4"]);
    assert_eq!(by_name.code, 1, "{by_name:?}");

    // Signing is deterministic: the state as it was signs to the same file.
    fs::write(&state_path, &state_text).unwrap();
    let mut report = fleet.command("report", 5, 2);
    report.arg("--attest-key").arg(&key);
    assert!(Run::of(report.output().unwrap())
        .stderr
        .contains("attested 2"));
    lines = fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines.join("\n") + "\n",
        signed,
        "re-signing the same state changed the file"
    );
}

#[test]
fn verify_results_refuses_a_policy_it_cannot_read() {
    let dir = support::lab::scratch("evidence-usage.");
    let (_, public) = keygen(dir.path(), "k");
    let file = dir.path().join("a.jsonl");
    fs::write(&file, "").unwrap();
    for (policy, says) in [
        ("primary", "is not KEY=VALUE"),
        ("role=primary:node=x", "give one of role= and node="),
        ("iterations=5", "name the nodes"),
        (
            "role=primary:iterations=0",
            "iterations=0 would require nothing",
        ),
    ] {
        let run = verify_results(&file, &public, &["--sha256", &"a".repeat(64)], &[policy]);
        assert_eq!(run.code, 2, "{policy}: {run:?}");
        assert!(run.stderr.contains(says), "{policy}: {}", run.stderr);
    }
    // An empty set of attestations satisfies nothing.
    let run = verify_results(&file, &public, &["--sha256", &"a".repeat(64)], &["node=n1"]);
    assert_eq!(run.code, 1, "{run:?}");
    line_with(&run.stdout, "MISSING  n1: node=n1", &["no attestation"]);
}

#[test]
fn the_bundles_sbom_and_provenance_are_the_ecosystems_and_sign_signs_the_provenance() {
    let built = real_bundle_dir();
    let manifest = built.join("manifest.json");
    let sbom = evidence_check(&[
        "sbom".as_ref(),
        built.join("sbom.cdx.json").as_os_str(),
        manifest.as_os_str(),
    ]);
    assert_eq!(sbom.code, 0, "{sbom:?}");
    let pin = fs::read_to_string(built.join("SHA256SUMS")).unwrap()[..64].to_string();
    let provenance = evidence_check(&[
        "provenance".as_ref(),
        built.join("provenance.json").as_os_str(),
        pin.as_ref(),
    ]);
    assert_eq!(provenance.code, 0, "{provenance:?}");
    // What bundle/build.sh pinned is what the provenance resolved.
    let doc: serde_json::Value =
        serde_json::from_slice(&fs::read(built.join("provenance.json")).unwrap()).unwrap();
    let deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let lock =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundle/inputs.lock"))
            .unwrap();
    for line in lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(
            deps.iter()
                .any(|d| d["name"] == f[0] && d["digest"]["sha256"] == f[3]),
            "inputs.lock's {} is not among the resolved dependencies",
            f[0]
        );
    }

    // sign wraps the provenance in a DSSE envelope securesystemslib accepts.
    let dir = support::lab::scratch("evidence-sign.");
    let (key, public) = keygen(dir.path(), "release");
    let out = dir.path().join("archy-gate");
    let signed = launcher(&[
        "sign".as_ref(),
        built.join("archy-gate").as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(signed.code, 0, "{signed:?}");
    let envelope = dir.path().join("archy-gate.intoto.jsonl");
    let judged = evidence_check(&["dsse".as_ref(), envelope.as_os_str(), public.as_ref()]);
    assert_eq!(judged.code, 0, "{judged:?}");
    let inspect = launcher(&["inspect".as_ref(), built.join("archy-gate").as_os_str()]);
    line_with(
        &inspect.stdout,
        "  beside   ",
        &["sbom.cdx.json (CycloneDX 1.6 SBOM"],
    );
    line_with(
        &inspect.stdout,
        "  beside   ",
        &["provenance.json (SLSA provenance of this bundle, unsigned)"],
    );
    let inspect = launcher(&["inspect".as_ref(), out.as_os_str()]);
    line_with(
        &inspect.stdout,
        "  beside   ",
        &["archy-gate.intoto.jsonl (signed provenance, DSSE, key"],
    );

    // Another build's provenance beside the bundle is not signed with it.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(built.join("archy-gate"), other.join("archy-gate")).unwrap();
    let text = fs::read_to_string(built.join("provenance.json")).unwrap();
    fs::write(
        other.join("provenance.json"),
        text.replace(&pin, &"1".repeat(64)),
    )
    .unwrap();
    let refused = launcher(&[
        "sign".as_ref(),
        other.join("archy-gate").as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        dir.path().join("x").as_os_str(),
    ]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused.stderr.contains("is not the SLSA provenance of"),
        "{}",
        refused.stderr
    );
    assert!(
        !dir.path().join("x").exists(),
        "a bundle was written beside a wrong provenance"
    );
}
