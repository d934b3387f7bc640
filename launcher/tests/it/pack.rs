//! `launcher pack`: deterministic output, and refusal of anything that would
//! not run on a bare node. Black-box: the real binary against real trees.

use crate::support;

use std::fs;
use std::io::Read;
use std::process::Command;

use support::{launch, static_launcher, Stage};

/// A stage shaped like a real one: tools, a library, a suite, a symlink.
fn sample(root: &std::path::Path) -> Stage {
    Stage::minimal(root)
        .file("bin/tool", b"#!/bin/sh\necho tool\n", 0o755)
        .symlink("bin/alias", "tool")
        .file("lib/helper/load.bash", b"helper() { :; }\n", 0o644)
        .file("lib/helper/src/deep/file.txt", &vec![b'x'; 70_000], 0o640)
        .dir("lib/empty")
        .file("lifecycle/10-smoke.bats", b"@test smoke { true; }\n", 0o600)
}

fn pack_args(stage: &std::path::Path, out: &std::path::Path) -> Vec<std::ffi::OsString> {
    vec![
        "pack".into(),
        stage.into(),
        "--launcher".into(),
        static_launcher().into(),
        "--out".into(),
        out.into(),
    ]
}

#[test]
fn packing_is_byte_identical_whatever_the_trees_history() {
    let tmp = tempfile::tempdir().unwrap();
    let a = sample(&tmp.path().join("a"));
    let first = fs::read(a.pack(&tmp.path().join("out1"))).unwrap();
    let second = fs::read(a.pack(&tmp.path().join("out2"))).unwrap();
    assert!(first == second, "packing the same tree twice differs");

    // The same content, copied in reverse order under umask 077, owned by
    // nobody, with other mtimes: only what the bundle promises to keep is kept.
    let b = tmp.path().join("b");
    let script = r#"
        set -eu
        umask 077
        cd "$1"
        find . -mindepth 1 | sort -r | while read -r p; do
          if [ -d "$p" ] && [ ! -L "$p" ]; then mkdir -p "$2/$p"
          elif [ -L "$p" ]; then mkdir -p "$2/$(dirname "$p")"; ln -s "$(readlink "$p")" "$2/$p"
          else mkdir -p "$2/$(dirname "$p")"; cat "$p" > "$2/$p"; if [ -x "$p" ]; then chmod u+x "$2/$p"; fi
          fi
        done
        if [ "$(id -u)" = 0 ]; then chown -R -h 65534:65534 "$2"
        else echo "pack.rs: not root (a build sandbox?): the copy's owner is not varied" >&2
        fi
        find "$2" -exec touch -h -d @1000000000 {} +
    "#;
    let status = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&a.root)
        .arg(&b)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::metadata(b.join("lib/helper/load.bash")).unwrap().len(),
        16,
        "the copy holds the same content"
    );
    let copied = fs::read(Stage::new(&b).pack(&tmp.path().join("out3"))).unwrap();
    assert!(
        first == copied,
        "a copy with other owner, umask, mtimes and order packs differently"
    );

    // SOURCE_DATE_EPOCH is the entries' mtime, and changes the bytes.
    let out4 = tmp.path().join("out4");
    let run = Command::new(support::launcher())
        .args(pack_args(&a.root, &out4))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(run.status.success());
    let dated = fs::read(out4.join("archy-gate")).unwrap();
    assert!(first != dated);
    let mtimes = entry_mtimes(&dated);
    assert!(mtimes.iter().all(|&m| m == 1_700_000_000), "{mtimes:?}");
    assert!(entry_mtimes(&first).iter().all(|&m| m == 315_532_800));
}

/// The mtime of every payload entry, read with an independent tar reader.
fn entry_mtimes(bundle: &[u8]) -> Vec<u64> {
    let n = bundle.len();
    let offset = u64::from_le_bytes(bundle[n - 56..n - 48].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bundle[n - 48..n - 40].try_into().unwrap()) as usize;
    let gz = flate2::read::GzDecoder::new(&bundle[offset..offset + len]);
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().mtime().unwrap())
        .collect()
}

#[test]
fn payload_layout_follows_the_format() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = sample(&tmp.path().join("s"));
    let bundle = fs::read(stage.pack(&tmp.path().join("out"))).unwrap();
    let launcher = fs::read(static_launcher()).unwrap();
    let n = bundle.len();
    assert_eq!(&bundle[n - 8..], b"ARCHYGAT");
    assert_eq!(
        u32::from_le_bytes(bundle[n - 64..n - 60].try_into().unwrap()),
        1
    );
    let offset = u64::from_le_bytes(bundle[n - 56..n - 48].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bundle[n - 48..n - 40].try_into().unwrap()) as usize;
    assert_eq!(offset, launcher.len(), "the payload follows the launcher");
    assert!(bundle[..offset] == launcher[..]);
    assert_eq!(offset + len + 64, n);
    assert_eq!(
        support::sha256_hex(&bundle[offset..offset + len]),
        hex(&bundle[n - 40..n - 8])
    );
    // gzip header: mtime 0, no name, OS 255.
    let gz = &bundle[offset..offset + 10];
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(gz[3], 0, "no FNAME or other flags");
    assert_eq!(&gz[4..8], &[0, 0, 0, 0], "gzip mtime 0");
    assert_eq!(gz[9], 255, "OS unknown");

    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(&bundle[offset..offset + len]));
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let mode = h.mode().unwrap();
        let path = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        match h.entry_type() {
            tar::EntryType::Directory => assert_eq!(mode, 0o755, "{path}"),
            tar::EntryType::Regular => {
                assert!(mode == 0o755 || mode == 0o644, "{path} {mode:o}");
                if path == "manifest.json" {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).unwrap();
                    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(m["format"], 1);
                    assert_eq!(m["entry"], "lifecycle/run-gate.sh");
                }
            }
            tar::EntryType::Symlink => {}
            other => panic!("unexpected entry type {other:?} for {path}"),
        }
        paths.push(path);
    }
    assert_eq!(paths[0], "manifest.json", "the manifest is the first entry");
    let rest = &paths[1..];
    let mut sorted = rest.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(rest, sorted.as_slice(), "entries are sorted bytewise");
    assert!(
        rest.contains(&"lib/empty".to_string()),
        "empty dirs are kept"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_dynamically_linked_elf_is_refused_by_name() {
    // A dynamically linked jq: Debian's, or $ARCHY_GATE_DYNAMIC_ELF (a build
    // sandbox has no /usr; the flake's check passes nixpkgs' jq).
    let jq = std::env::var_os("ARCHY_GATE_DYNAMIC_ELF")
        .map_or_else(|| "/usr/bin/jq".into(), std::path::PathBuf::from);
    let jq = jq.as_path();
    assert!(
        jq.exists(),
        "this test needs a dynamically linked jq: apt-get install jq, or set ARCHY_GATE_DYNAMIC_ELF"
    );
    let tmp = tempfile::tempdir().unwrap();
    let stage = Stage::minimal(tmp.path().join("s")).file("bin/jq", &fs::read(jq).unwrap(), 0o755);
    let run = launch(pack_args(&stage.root, &tmp.path().join("out"))).expect(2);
    assert!(run.stderr.contains("bin/jq"), "{}", run.stderr);
    assert!(run.stderr.contains("dynamically linked"), "{}", run.stderr);
    assert!(
        run.stderr.contains("libjq"),
        "names the missing library: {}",
        run.stderr
    );
    assert!(
        !tmp.path().join("out/archy-gate").exists(),
        "nothing is written"
    );

    // The same holds for the launcher that heads the file.
    let stage = Stage::minimal(tmp.path().join("s2"));
    let mut args = pack_args(&stage.root, &tmp.path().join("out"));
    args[3] = jq.into();
    let run = launch(args).expect(2);
    assert!(
        run.stderr
            .contains(&format!("{} is dynamically linked", jq.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn what_cannot_live_on_a_node_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store_ref = [
        b"#!/bin/sh\nexec /nix".as_slice(),
        b"/store/abc-bash/bin/bash\n",
    ]
    .concat();
    let fifo_stage = tmp.path().join("fifo");
    let cases: Vec<(&str, Stage, &str)> = vec![
        (
            "store reference",
            Stage::minimal(tmp.path().join("nix")).file("bin/wrapped", &store_ref, 0o755),
            "bin/wrapped names the Nix store",
        ),
        (
            "symlink out of the tree",
            Stage::minimal(tmp.path().join("rel")).symlink("bin/passwd", "../../../etc/passwd"),
            "leaves the stage",
        ),
        (
            "absolute symlink",
            Stage::minimal(tmp.path().join("abs")).symlink("bin/sh", "/bin/sh"),
            "leaves the stage",
        ),
        (
            "dangling symlink",
            Stage::minimal(tmp.path().join("dangling")).symlink("bin/gone", "nothing-here"),
            "not in the stage",
        ),
        (
            "a FIFO",
            {
                let s = Stage::minimal(&fifo_stage);
                assert!(Command::new("mkfifo")
                    .arg(fifo_stage.join("lifecycle/pipe"))
                    .status()
                    .unwrap()
                    .success());
                s
            },
            "lifecycle/pipe is a FIFO",
        ),
        (
            "reserved manifest name",
            Stage::minimal(tmp.path().join("reserved")).file("manifest.json", b"{}", 0o644),
            "manifest.json is reserved",
        ),
        (
            "no entry script",
            Stage::new(tmp.path().join("noentry")).file("bin/x", b"x", 0o644),
            "no entry script lifecycle/run-gate.sh",
        ),
        (
            "stage.json with a typo",
            Stage::minimal(tmp.path().join("typo")).file("stage.json", br#"{"nmae": "x"}"#, 0o644),
            "unknown field `nmae`",
        ),
        (
            "stage.json naming a missing tool",
            Stage::minimal(tmp.path().join("tool")).file(
                "stage.json",
                br#"{"tools": [{"name": "jq", "version": "1.8.2", "path": "bin/jq"}]}"#,
                0o644,
            ),
            "lists the tool jq at bin/jq, which is not in the stage",
        ),
    ];
    for (name, stage, expected) in cases {
        let out = tmp.path().join(format!("out-{}", name.replace(' ', "-")));
        let run = launch(pack_args(&stage.root, &out));
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{name}: wanted {expected:?} in {}",
            run.stderr
        );
        assert!(
            !out.join("archy-gate").exists(),
            "{name}: nothing is written"
        );
    }
}

#[test]
fn stage_description_becomes_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = Stage::minimal(tmp.path().join("s"))
        .file("bin/jq", b"pretend static jq", 0o755)
        .file("lifecycle/other.sh", b"echo other\n", 0o755)
        .file(
            "stage.json",
            br#"{"name": "node-gate", "version": "2.0.0", "entry": "lifecycle/other.sh",
                 "tools": [{"name": "jq", "version": "jq-1.8.2", "path": "bin/jq", "source": "upstream"}],
                 "sources": {"builder": "test"}}"#,
            0o644,
        );
    let out = tmp.path().join("out");
    let bundle = stage.pack(&out);
    let run = launch(["inspect".as_ref(), bundle.as_os_str(), "--json".as_ref()]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let m = &doc["manifest"];
    assert_eq!(m["name"], "node-gate");
    assert_eq!(m["version"], "2.0.0");
    assert_eq!(m["entry"], "lifecycle/other.sh");
    assert_eq!(m["tools"][0]["version"], "jq-1.8.2");
    assert_eq!(m["sources"]["builder"], "test");
    assert!(m["sources"]["suite"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        !paths.contains(&"stage.json"),
        "the description is read, not packed"
    );
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        &on_disk, m,
        "manifest.json beside the bundle is the embedded one"
    );

    let text = launch(["inspect".as_ref(), bundle.as_os_str()])
        .expect(0)
        .stdout;
    assert!(text.contains("node-gate 2.0.0"), "{text}");
    assert!(text.contains("jq  jq-1.8.2  bin/jq  upstream"), "{text}");

    // The suite digest follows the suite and nothing else.
    let suite = |out: &str| -> String {
        let run = launch([
            "inspect".as_ref(),
            tmp.path().join(out).join("archy-gate").as_os_str(),
            "--json".as_ref(),
        ]);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        doc["manifest"]["sources"]["suite"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = suite("out");
    fs::write(stage.root.join("bin/jq"), b"another jq").unwrap();
    stage.pack(&tmp.path().join("out2"));
    assert_eq!(suite("out2"), before);
    fs::write(stage.root.join("lifecycle/other.sh"), b"echo changed\n").unwrap();
    stage.pack(&tmp.path().join("out3"));
    assert_ne!(suite("out3"), before);
}

/// `/nix` + `/store/`, never spelt whole: the launcher refuses files that name it.
fn store_prefix() -> Vec<u8> {
    [b"/nix".as_slice(), b"/store/"].concat()
}

/// A static ELF64 whose only dynamic entry is a DT_RUNPATH of `runpath`: no
/// interpreter, no DT_NEEDED.
fn static_elf_with_runpath(runpath: &[u8]) -> Vec<u8> {
    let (ehdr, phdr, dyn_size) = (64u64, 56u64, 16u64);
    let dynamic = ehdr + 2 * phdr;
    let strtab = dynamic + 3 * dyn_size;
    let strings = [b"\0".as_slice(), runpath, b"\0"].concat();
    let total = strtab + strings.len() as u64;
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // x86-64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes()); // entry
    f.extend_from_slice(&ehdr.to_le_bytes()); // phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // shoff
    f.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 2, 64, 0, 0] {
        f.extend_from_slice(&half.to_le_bytes());
    }
    for (kind, offset, size) in [(1u32, 0, total), (2, dynamic, 3 * dyn_size)] {
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes()); // flags
        for value in [offset, offset, offset, size, size, 8] {
            f.extend_from_slice(&value.to_le_bytes());
        }
    }
    for (tag, value) in [(5u64, strtab), (29, 1), (0, 0)] {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&value.to_le_bytes());
    }
    f.extend_from_slice(&strings);
    f
}

#[test]
fn a_scrubbed_store_path_passes_only_as_data_in_a_static_elf() {
    let tmp = tempfile::tempdir().unwrap();
    let scrubbed = [
        store_prefix(),
        b"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-jq-1.8.2-bin/bin".to_vec(),
    ]
    .concat();
    let live = [
        store_prefix(),
        b"0123456789abcdfghijklmnpqrsvwxyz-jq-1.8.2-bin/bin".to_vec(),
    ]
    .concat();
    let almost = [
        store_prefix(),
        b"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeef-jq-1.8.2-bin/bin".to_vec(),
    ]
    .concat();
    let elf = fs::read(static_launcher()).unwrap();
    // What `jq --build-configuration` carries once remove-references-to ran.
    let with = |text: &[u8]| [elf.as_slice(), b"\0'--bindir=", text, b"'\0"].concat();

    let stage = Stage::minimal(tmp.path().join("ok")).file("bin/jq", &with(&scrubbed), 0o755);
    launch(pack_args(&stage.root, &tmp.path().join("out-ok"))).expect(0);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a live store path in a static ELF",
            with(&live),
            "names the Nix store at byte",
        ),
        (
            "one hash character short of scrubbed",
            with(&almost),
            "names the Nix store at byte",
        ),
        (
            "a scrubbed store path in a script",
            [b"#!/bin/sh\nexec ".as_slice(), &scrubbed, b"\n"].concat(),
            "in a script it is still a path that runs",
        ),
        (
            "a scrubbed store path as a static ELF's RUNPATH",
            static_elf_with_runpath(&[scrubbed.as_slice(), b"/lib"].concat()),
            "names the Nix store in its run-time search path (RPATH/RUNPATH",
        ),
    ];
    for (name, bytes, expected) in cases {
        let dir = tmp.path().join(name.replace(' ', "-"));
        let stage = Stage::minimal(dir.join("stage")).file("bin/tool", &bytes, 0o755);
        let run = launch(pack_args(&stage.root, &dir.join("out")));
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{name}: wanted {expected:?} in {}",
            run.stderr
        );
        assert!(
            !dir.join("out/archy-gate").exists(),
            "{name}: nothing is written"
        );
    }
}

/// The cross-node suites: every `lifecycle/cross/<name>/run.sh`, listed in
/// the manifest; a dir there without run.sh is a helper, not a suite; a
/// name that could not be a run id is refused by name.
#[test]
fn cross_suites_are_found_listed_and_named_safely() {
    let dir = tempfile::tempdir().unwrap();
    Stage::minimal(dir.path().join("stage"))
        .file("lifecycle/cross/federation/run.sh", b"#!/bin/sh\n", 0o755)
        .file("lifecycle/cross/upgrade-2/run.sh", b"#!/bin/sh\n", 0o644)
        .file("lifecycle/cross/lib/shared.bash", b"x() { :; }\n", 0o644)
        .pack(&dir.path().join("out"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["cross"],
        serde_json::json!([
            {"name": "federation", "entry": "lifecycle/cross/federation/run.sh"},
            {"name": "upgrade-2", "entry": "lifecycle/cross/upgrade-2/run.sh"},
        ])
    );
    let inspect = launch([
        "inspect".as_ref(),
        dir.path().join("out/archy-gate").as_os_str(),
    ])
    .expect(0);
    assert!(
        inspect
            .stdout
            .contains("cross    federation (lifecycle/cross/federation/run.sh)"),
        "{}",
        inspect.stdout
    );

    // Without any, the manifest has no `cross` at all.
    let plain = tempfile::tempdir().unwrap();
    Stage::minimal(plain.path().join("stage")).pack(&plain.path().join("out"));
    let text = fs::read_to_string(plain.path().join("out/manifest.json")).unwrap();
    assert!(!text.contains("\"cross\""), "{text}");

    let bad = tempfile::tempdir().unwrap();
    Stage::minimal(bad.path().join("stage")).file(
        "lifecycle/cross/has space/run.sh",
        b"#!/bin/sh\n",
        0o755,
    );
    let run = launch(pack_args(
        &bad.path().join("stage"),
        &bad.path().join("out"),
    ));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("lifecycle/cross/has space/run.sh: cross suite name \"has space\""),
        "{}",
        run.stderr
    );
}
