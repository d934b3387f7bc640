//! Signed bundles: `sign`, `keygen`, and `verify`/`run`/`inspect` with a
//! trusted key, checked against Debian's own `minisign` (0.11) so the
//! format is minisign's and not merely ours.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::bare_node::BareNode;
use support::{launch, Run, Stage};

/// Debian's minisign, the independent opinion.
fn minisign(args: &[&std::ffi::OsStr]) -> Run {
    assert!(
        Path::new("/usr/bin/minisign").exists(),
        "these tests need Debian's minisign: apt-get install minisign"
    );
    Run::of(
        Command::new("/usr/bin/minisign")
            .args(args)
            .output()
            .unwrap(),
    )
}

/// A key pair made by minisign itself (unencrypted, as `sign` reads it).
fn minisign_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (sec, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    minisign(&[
        "-G".as_ref(),
        "-W".as_ref(),
        "-s".as_ref(),
        sec.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ])
    .expect(0);
    (sec, public)
}

fn packed(tmp: &Path, name: &str, text: &[u8]) -> PathBuf {
    Stage::minimal(tmp.join(format!("stage-{name}")))
        .file("lib/data.txt", text, 0o644)
        .pack(&tmp.join(format!("out-{name}")))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn sign(bundle: &Path, key: &Path, out: &Path) -> Run {
    launch(["sign", &s(bundle), "--key", &s(key), "--out", &s(out)])
}

fn verify_trusting(bundle: &Path, public: &Path) -> Run {
    launch(["verify", &s(bundle), "--trust", &s(public)])
}

/// The key id minisign prints for a public key file.
fn key_id(public: &Path) -> String {
    let text = fs::read_to_string(public).unwrap();
    text.lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

/// The documented layout: built file, minisig text, 16-byte footer.
fn parts(signed: &[u8]) -> (usize, usize) {
    let len = signed.len();
    assert_eq!(&signed[len - 8..], b"ARCHYSIG");
    let text_len = u32::from_le_bytes(signed[len - 16..len - 12].try_into().unwrap()) as usize;
    (len - 16 - text_len, text_len)
}

#[test]
fn a_signed_bundle_verifies_with_its_key_here_and_with_minisign() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = packed(tmp.path(), "a", b"a\n");
    let built = fs::read(&bundle).unwrap();
    let (sec, public) = minisign_keys(tmp.path(), "release");
    let signed = tmp.path().join("dist/archy-gate");
    fs::create_dir_all(signed.parent().unwrap()).unwrap();
    sign(&bundle, &sec, &signed).expect(0);
    let id = key_id(&public);

    // Ours, with the key as a file and as the base64 line `minisign -P` takes.
    let run = verify_trusting(&signed, &public).expect(0);
    assert!(
        run.stdout.contains(&format!("signed   ok   by key {id}")),
        "{}",
        run.stdout
    );
    let line = fs::read_to_string(&public)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let run = launch(["verify", &s(&signed), "--trust", &line]).expect(0);
    assert!(run.stdout.contains(&id), "{}", run.stdout);

    // Debian's minisign, on the detached signature beside the signed file.
    let run = minisign(&[
        "-V".as_ref(),
        "-m".as_ref(),
        signed.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ])
    .expect(0);
    assert!(
        run.stdout
            .contains("Signature and comment signature verified"),
        "{}",
        run.stdout
    );

    // The block in the file is minisign's signature over the built bytes,
    // which are exactly what the build wrote (so SHA256SUMS still pins them).
    let bytes = fs::read(&signed).unwrap();
    let (built_len, text_len) = parts(&bytes);
    assert_eq!(&bytes[..built_len], &built[..]);
    let inner = tmp.path().join("inner");
    fs::write(&inner, &bytes[..built_len]).unwrap();
    fs::write(
        tmp.path().join("inner.minisig"),
        &bytes[built_len..built_len + text_len],
    )
    .unwrap();
    minisign(&[
        "-V".as_ref(),
        "-m".as_ref(),
        inner.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ])
    .expect(0);
    let built_sha = support::sha256_hex(&built);
    let run = launch(["verify", &s(&signed), "--sha256", &built_sha]).expect(0);
    assert!(run.stdout.contains("matches --sha256"), "{}", run.stdout);

    // No key trusted: nothing refused, and the origin is said to be unproven.
    let run = launch(["verify", &s(&signed)]).expect(0);
    assert!(
        run.stdout
            .contains(&format!("signed by key {id}, but no key is trusted")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("origin is unproven"), "{}", run.stdout);

    // inspect names the signer and the trusted comment.
    let run = launch(["inspect", &s(&signed)]).expect(0);
    assert!(
        run.stdout.contains(&format!("signed   by key {id}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("built-sha256:{built_sha}")),
        "{}",
        run.stdout
    );
    let run = launch(["inspect", &s(&signed), "--json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["signature"]["key_id"], id.as_str());

    // Whoever holds a key chooses the comment: a terminal escape in it is
    // shown escaped, never sent to the terminal.
    let loud = tmp.path().join("loud");
    launch([
        "sign",
        &s(&bundle),
        "--key",
        &s(&sec),
        "--out",
        &s(&loud),
        "--trusted-comment",
        "red \u{1b}[31m alert",
    ])
    .expect(0);
    for args in [
        vec!["inspect", &s(&loud)],
        vec!["verify", &s(&loud), "--trust", &s(&public)],
    ] {
        let run = launch(args).expect(0);
        assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
        assert!(run.stdout.contains("red \\x1b[31m alert"), "{}", run.stdout);
    }
}

#[test]
fn keygen_makes_a_key_minisign_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let (sec, public) = (tmp.path().join("k.key"), tmp.path().join("k.pub"));
    launch(["keygen", "--secret", &s(&sec), "--public", &s(&public)]).expect(0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never over an existing key.
    launch([
        "keygen",
        "--secret",
        &s(&sec),
        "--public",
        &s(&tmp.path().join("x.pub")),
    ])
    .expect(2);

    let bundle = packed(tmp.path(), "a", b"a\n");
    sign(&bundle, &sec, &bundle).expect(0);
    verify_trusting(&bundle, &public).expect(0);
    minisign(&[
        "-V".as_ref(),
        "-m".as_ref(),
        bundle.as_os_str(),
        "-p".as_ref(),
        public.as_os_str(),
    ])
    .expect(0);
    // A key minisign signs with is ours to check, too.
    let file = tmp.path().join("file");
    fs::write(&file, b"hello\n").unwrap();
    let (msec, _) = minisign_keys(tmp.path(), "m");
    minisign(&[
        "-S".as_ref(),
        "-s".as_ref(),
        msec.as_os_str(),
        "-m".as_ref(),
        file.as_os_str(),
    ])
    .expect(0);
}

#[test]
fn encrypted_and_malformed_keys_are_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = packed(tmp.path(), "a", b"a\n");
    let (sec, _) = minisign_keys(tmp.path(), "k");
    // minisign's encrypted form: the KDF bytes say "Sc".
    let text = fs::read_to_string(&sec).unwrap();
    let line = text.lines().nth(1).unwrap();
    use base64::Engine;
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(line)
        .unwrap();
    raw[2..4].copy_from_slice(b"Sc");
    let enc = tmp.path().join("enc.key");
    fs::write(
        &enc,
        format!(
            "untrusted comment: x\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ),
    )
    .unwrap();
    let run = sign(&bundle, &enc, &bundle).expect(2);
    assert!(run.stderr.contains("minisign -G -W"), "{}", run.stderr);
    let run = launch(["verify", &s(&bundle), "--trust", "not-a-key"]).expect(2);
    assert!(run.stderr.contains("--trust"), "{}", run.stderr);
}

/// Every way a bundle can fail a trusted key: each exits 3 and says which.
#[test]
fn with_a_trusted_key_bad_bundles_exit_3_and_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let (sec, public) = minisign_keys(tmp.path(), "release");
    let (other_sec, _) = minisign_keys(tmp.path(), "other");
    let bundle = packed(tmp.path(), "a", b"a\n");
    let signed = tmp.path().join("signed");
    sign(&bundle, &sec, &signed).expect(0);
    let good = fs::read(&signed).unwrap();
    verify_trusting(&signed, &public).expect(0);

    let check = |name: &str, bytes: &[u8], why: &str| {
        let path = tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        let run = verify_trusting(&path, &public);
        assert_eq!(run.code, 3, "{name}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(why),
            "{name}: wanted {why:?} in {}",
            run.stderr
        );
    };

    check("unsigned", &fs::read(&bundle).unwrap(), "is not signed");
    let by_other = tmp.path().join("by-other");
    sign(&bundle, &other_sec, &by_other).expect(0);
    check(
        "by-other",
        &fs::read(&by_other).unwrap(),
        "does not trust (it trusts",
    );

    let (built_len, text_len) = parts(&good);
    let trailer = built_len - 64;
    let flip = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        bytes
    };
    // The launcher head, which no digest inside the bundle covers.
    check("head", &flip(100), "does not match the bundle's bytes");
    let payload_offset = u64::from_le_bytes(good[trailer + 8..trailer + 16].try_into().unwrap());
    check(
        "payload",
        &flip(payload_offset as usize + 40),
        "does not match the bundle's bytes",
    );
    // The trailer's payload sha256: only the signature can tell.
    check(
        "trailer",
        &flip(trailer + 30),
        "does not match the bundle's bytes",
    );
    // The trailer's payload length: the file no longer adds up.
    check("trailer-length", &flip(trailer + 16), "trailer");
    // A character of the signature itself (line 2 of the minisig text).
    let text = std::str::from_utf8(&good[built_len..built_len + text_len]).unwrap();
    let sig_line = text.find('\n').unwrap() + 20;
    let mut bytes = good.clone();
    bytes[built_len + sig_line] = if bytes[built_len + sig_line] == b'A' {
        b'B'
    } else {
        b'A'
    };
    check("signature", &bytes, "does not match the bundle's bytes");
    // The trusted comment, which the global signature covers.
    let comment = text.find("\ntrusted comment: ").unwrap() + 18;
    let mut bytes = good.clone();
    bytes[built_len + comment] ^= 0x20;
    check("comment", &bytes, "trusted comment");
    // The footer's magic: now bytes appended after a trailer.
    check(
        "footer",
        &flip(good.len() - 1),
        "appended after its bundle trailer",
    );
    // The footer's block version: refused by name.
    check(
        "version",
        &flip(good.len() - 12),
        "signature block is version",
    );
    // A signature block that no longer parses.
    let third = text.find("\ntrusted comment: ").unwrap() + 1;
    let mut bytes = good.clone();
    bytes[built_len + third] = b'X';
    check("unreadable", &bytes, "signature block is unreadable");

    // A valid signature taken from this bundle and put on another one.
    let other = packed(tmp.path(), "b", b"b\n");
    let mut moved = fs::read(&other).unwrap();
    moved.extend_from_slice(&good[built_len..]);
    check("moved", &moved, "made for another bundle");
}

/// The last commit before signed bundles (the next one, "Signed bundles:
/// sign, keygen, …", added them): its launcher stands for a release that
/// knows nothing of signatures.
const BEFORE_SIGNING: &str = "a0650a58380a5677c72243b3e54ea274d42a8be3";

/// The launcher of [`BEFORE_SIGNING`], exported from this checkout's git
/// history and built once (offline, from cargo's cache) into
/// target/launcher-before-signing/, where later runs find it.
fn launcher_before_signing() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = support::workspace_root();
            let dir = root.join("target/launcher-before-signing");
            let src = dir.join("src");
            if !src.exists() {
                // Exported whole, then renamed: a cut export is never taken.
                let part = dir.join("src.part");
                let _ = fs::remove_dir_all(&part);
                fs::create_dir_all(&part).unwrap();
                let export = Command::new("sh")
                    .args(["-c", "git -C \"$1\" archive \"$2\" | tar -x -C \"$3\""])
                    .arg("sh")
                    .args([root.as_os_str(), BEFORE_SIGNING.as_ref(), part.as_os_str()])
                    .output()
                    .unwrap();
                assert!(
                    export.status.success(),
                    "cannot export commit {BEFORE_SIGNING} from git history (a shallow clone? \
                     `git fetch --unshallow`): {}",
                    String::from_utf8_lossy(&export.stderr)
                );
                fs::rename(&part, &src).unwrap();
            }
            let build = support::outside_cargo(Command::new("cargo"))
                .current_dir(&src)
                .args([
                    "build",
                    "--offline",
                    "--locked",
                    "--quiet",
                    "-p",
                    "launcher",
                ])
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .output()
                .unwrap();
            assert!(
                build.status.success(),
                "building the launcher of {BEFORE_SIGNING} failed:\n{}",
                String::from_utf8_lossy(&build.stderr)
            );
            dir.join("target/debug/launcher")
        })
        .clone()
}

/// A launcher from before signed bundles (built from the commit before
/// them) sees the block as bytes appended after its trailer, and refuses;
/// the same bundle unsigned it verifies, so the refusal is the block's.
#[test]
fn a_launcher_from_before_signing_refuses_a_signed_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (sec, _) = minisign_keys(tmp.path(), "k");
    let bundle = packed(tmp.path(), "a", b"a\n");
    let signed = tmp.path().join("signed");
    sign(&bundle, &sec, &signed).expect(0);
    let older = launcher_before_signing();
    let verify = |file: &Path| {
        Run::of(
            Command::new(&older)
                .arg("verify")
                .arg(file)
                .output()
                .unwrap(),
        )
    };
    verify(&bundle).expect(0);
    let run = verify(&signed).expect(3);
    assert!(
        run.stderr
            .contains("bytes appended after its bundle trailer"),
        "{}",
        run.stderr
    );
}

/// A signature block whose magic this launcher does not know (today's
/// launcher, the block's last bytes changed) is refused as bytes appended
/// after the trailer, as the launcher before signing refuses every block.
#[test]
fn an_unknown_block_is_refused_as_appended_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (sec, _) = minisign_keys(tmp.path(), "k");
    let bundle = packed(tmp.path(), "a", b"a\n");
    sign(&bundle, &sec, &bundle).expect(0);
    let mut bytes = fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(b"ARCHYSIH");
    fs::write(&bundle, &bytes).unwrap();
    let run = launch(["verify", &s(&bundle)]).expect(3);
    assert!(
        run.stderr
            .contains("bytes appended after its bundle trailer"),
        "{}",
        run.stderr
    );
}

/// `run --trust` on the bare node: every bad bundle is refused before the
/// work dir holds anything of it; the good one gets past the check.
#[test]
fn run_trust_on_the_bare_node_refuses_before_unpacking() {
    let tmp = tempfile::tempdir().unwrap();
    let (sec, public) = minisign_keys(tmp.path(), "release");
    let (other_sec, _) = minisign_keys(tmp.path(), "other");
    let bundle = packed(tmp.path(), "a", b"a\n");
    let signed = tmp.path().join("signed");
    sign(&bundle, &sec, &signed).expect(0);
    let by_other = tmp.path().join("by-other");
    sign(&bundle, &other_sec, &by_other).expect(0);
    let good = fs::read(&signed).unwrap();
    let (built_len, _) = parts(&good);
    let mut payload_flip = good.clone();
    let trailer = built_len - 64;
    let offset = u64::from_le_bytes(good[trailer + 8..trailer + 16].try_into().unwrap()) as usize;
    payload_flip[offset + 40] ^= 1;
    let mut head_flip = good.clone();
    head_flip[100] ^= 1;

    let node = BareNode::new();
    node.put("/root/release.pub", &fs::read(&public).unwrap(), 0o644);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("unsigned", fs::read(&bundle).unwrap(), "is not signed"),
        ("by-other", fs::read(&by_other).unwrap(), "does not trust"),
        ("payload", payload_flip, "does not match"),
        ("head", head_flip, "does not match"),
    ];
    // The good signed bundle is the launcher that checks the bad ones.
    node.put("/root/signed-launcher", &good, 0o755);
    for (name, bytes, why) in cases {
        node.put(&format!("/root/{name}"), &bytes, 0o755);
        let run = node.sh(&format!(
            "ARCHY_PASSWORD=x /root/signed-launcher run /root/{name} --trust /root/release.pub --workdir /root/work --skip-preflight"
        ));
        assert_eq!(run.code, 3, "{name}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(why),
            "{name}: wanted {why:?} in {}",
            run.stderr
        );
        assert!(
            !node.path("/root/work").exists(),
            "{name}: a work dir was made, or something unpacked"
        );
    }
    // The single file as an operator runs it, its payload changed: its own
    // (intact) launcher refuses it. (A changed head is a changed launcher,
    // which checks nothing it need not: see the Threat model.)
    let run = node.sh(
        "ARCHY_PASSWORD=x /root/payload run --trust /root/release.pub --workdir /root/work --skip-preflight",
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(!node.path("/root/work").exists());

    // The same refusal through the node's trust file, root-owned, 0644.
    node.put(
        "/etc/archy-gate/trusted.pub",
        &fs::read(&public).unwrap(),
        0o644,
    );
    let run = node.sh(
        "ARCHY_PASSWORD=x /root/signed-launcher run /root/by-other --workdir /root/work --skip-preflight",
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("/etc/archy-gate/trusted.pub does not trust"),
        "{}",
        run.stderr
    );
    // ... and a trust file anyone may write is refused, not used.
    fs::set_permissions(
        node.path("/etc/archy-gate/trusted.pub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let run = node.sh(
        "ARCHY_PASSWORD=x /root/signed-launcher run /root/by-other --workdir /root/work --skip-preflight",
    );
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("chmod go-w"), "{}", run.stderr);
    assert!(!node.path("/root/work").exists());

    // The good one passes the check and is unpacked (its gate, a stub,
    // needs a bash the minimal stage lacks: what matters is it got this far).
    fs::set_permissions(
        node.path("/etc/archy-gate/trusted.pub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let run =
        node.sh("ARCHY_PASSWORD=x /root/signed-launcher run --workdir /root/work --skip-preflight");
    assert!(
        run.stderr.contains("signed   ok   by key"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(node.path("/root/work/b").exists(), "{}", run.stderr);
}
