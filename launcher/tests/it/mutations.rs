//! Mutated bundles, as an attacker would make them: a seeded run of
//! thousands of mutations of a small good bundle through the real binary's
//! `verify` and `extract`. Each must end with exit 0 or 3, within a CPU-time
//! and memory limit, without a panic, writing nothing outside its target and
//! leaving no staging dir behind; and at least [`MIN_REJECTED_PERCENT`] of
//! them must be refused, or a launcher that accepted everything would pass.
//!
//! Most mutations are made before the seal (in the tar's headers and data,
//! in the manifest, in the gzip stream) and then sealed with a correct
//! embedded digest, so that they reach the parser instead of stopping at
//! the digest check; a few damage the sealed file itself.
//!
//! `ARCHY_GATE_MUTATIONS` (default 20000) and `ARCHY_GATE_MUTATION_SEED`
//! (default fixed) change the run; a failure prints the seed and the case
//! number, and keeps the bundle that caused it. Mutation n depends only on
//! the seed and n, so the run splits without overlap: the default tier
//! checks the first [`DEFAULT_TIER`] mutations, the slow tier the rest.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use support::{launcher, sha256_hex, tree};

const DEFAULT_MUTATIONS: usize = 20_000;
/// How many of them the default tier checks (about a tenth of the run's time).
const DEFAULT_TIER: usize = 2_000;
const DEFAULT_SEED: u64 = 0x00a7_c4a7_e5ee_d001;
/// The CPU time one launcher run may spend (RLIMIT_CPU: the kernel kills
/// it past that). A bundle here is a few KiB and a run needs milliseconds;
/// one that loops, or whose work grows without bound, is killed. CPU time,
/// unlike the wall clock, does not grow with the machine's load.
const CPU_SECONDS: u64 = 5;
/// A backstop for a run that blocks without spending CPU (waiting on
/// something that never comes), which RLIMIT_CPU cannot see: far above any
/// honest run even on a loaded machine, so it never judges speed.
const BLOCKED: Duration = Duration::from_secs(60);
const MEMORY_LIMIT: u64 = 100 << 20;
/// The share of mutants `verify` and `extract` must each refuse (exit 3).
/// Measured with the default seed: 1,778 of the first 2,000 (88.9%), and
/// 88.8% of the next 4,000. Most mutants break something a check must
/// catch; the rest change nothing a check must refuse (a byte of the
/// head, which no pin covers here). Of the first 2,000, the manifest-only mutants account for 339
/// refusals and the gzip ones for 194: a launcher that let either kind
/// through would fall to 72% or 79%. The floor, 80%, is below the measure
/// by far more than another seed moves it (under a point), and above both.
const MIN_REJECTED_PERCENT: usize = 80;
const MTIME: u64 = 315_532_800;

/// splitmix64: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

// ---------------------------------------------------------------------------
// The good bundle, as parts that mutations can change before the seal.

#[derive(Clone)]
enum Item {
    Dir(String),
    File(String, u32, Vec<u8>),
    Symlink(String, String),
}

impl Item {
    fn path(&self) -> &str {
        match self {
            Item::Dir(p) | Item::File(p, ..) | Item::Symlink(p, _) => p,
        }
    }
}

fn base() -> Vec<Item> {
    let long = format!("lib/{}", "l".repeat(120));
    let mut items = vec![
        Item::Dir("bin".into()),
        Item::Symlink("bin/alias".into(), "tool".into()),
        Item::File("bin/tool".into(), 0o755, b"#!/bin/sh\necho tool\n".to_vec()),
        Item::Dir("lib".into()),
        Item::File(long.clone(), 0o644, b"a long name\n".to_vec()),
        Item::Symlink("lib/to-long".into(), long[4..].to_string()),
        Item::Dir("lifecycle".into()),
        Item::File(
            "lifecycle/run-gate.sh".into(),
            0o755,
            b"#!/bin/sh\necho gate\n".to_vec(),
        ),
        Item::File("notes.txt".into(), 0o644, vec![b'n'; 700]),
    ];
    items.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    items
}

fn listed(item: &Item) -> Value {
    match item {
        Item::Dir(path) => json!({"type": "dir", "path": path}),
        Item::File(path, mode, data) => json!({
            "type": "file", "path": path, "size": data.len(),
            "mode": format!("{:04o}", mode & 0o7777), "sha256": sha256_hex(data),
        }),
        Item::Symlink(path, target) => json!({"type": "symlink", "path": path, "target": target}),
    }
}

fn manifest(items: &[Item]) -> Value {
    json!({
        "format": 1, "name": "archy-gate", "version": "0.0.0-mutations",
        "entry": "lifecycle/run-gate.sh", "source_date_epoch": MTIME,
        "tools": [{"name": "tool", "version": "unknown", "path": "bin/tool"}],
        "sources": {"suite": "sha256:0000"},
        "files": items.iter().map(listed).collect::<Vec<_>>(),
    })
}

/// An uncompressed GNU tar, as `pack` writes it, and where its headers are.
struct RawTar {
    bytes: Vec<u8>,
    headers: Vec<usize>,
}

impl RawTar {
    fn header(&mut self, kind: tar::EntryType, name: &[u8], mode: u32, link: &[u8], data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
        h.set_cksum();
        self.headers.push(self.bytes.len());
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0, pad));
    }

    fn entry(&mut self, kind: tar::EntryType, name: &str, mode: u32, link: &str, data: &[u8]) {
        if name.len() > 100 {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            self.header(
                tar::EntryType::GNULongName,
                b"././@LongLink",
                0o644,
                b"",
                &n,
            );
        }
        if link.len() > 100 {
            let mut n = link.as_bytes().to_vec();
            n.push(0);
            self.header(
                tar::EntryType::GNULongLink,
                b"././@LongLink",
                0o644,
                b"",
                &n,
            );
        }
        self.header(kind, name.as_bytes(), mode, link.as_bytes(), data);
    }

    fn build(manifest_text: &[u8], items: &[Item]) -> RawTar {
        let mut t = RawTar {
            bytes: Vec::new(),
            headers: Vec::new(),
        };
        t.entry(
            tar::EntryType::Regular,
            "manifest.json",
            0o644,
            "",
            manifest_text,
        );
        for item in items {
            match item {
                Item::Dir(p) => t.entry(tar::EntryType::Directory, p, 0o755, "", b""),
                Item::File(p, mode, data) => t.entry(tar::EntryType::Regular, p, *mode, "", data),
                Item::Symlink(p, target) => t.entry(tar::EntryType::Symlink, p, 0o777, target, b""),
            }
        }
        t.bytes.extend_from_slice(&[0; 1024]);
        t
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

const HEAD: &[u8] = b"\x7fELF not really: verify and extract never run the head\n";

fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = HEAD.to_vec();
    out.extend_from_slice(payload);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&64u32.to_le_bytes());
    out.extend_from_slice(&(HEAD.len() as u64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(b"ARCHYGAT");
    out
}

// ---------------------------------------------------------------------------
// Mutations.

/// An empty dir outside every sandbox: absolute names aim here.
fn outside() -> &'static Path {
    static OUTSIDE: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUTSIDE.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn hostile_names() -> Vec<String> {
    let abs = format!("{}/escape", outside().display());
    vec![
        "../escape".into(),
        "bin/../../escape".into(),
        abs,
        "bin/alias/x".into(),
        "bin".into(),
        "bin/".into(),
        "./bin/tool".into(),
        "manifest.json".into(),
        "".into(),
        "a".repeat(300),
        format!("{}/x", "d".repeat(255)),
        "lib/\u{1b}[31mred".into(),
        "..".into(),
        "bin//tool".into(),
        "zzz".into(),
    ]
}

fn hostile_targets() -> Vec<String> {
    vec![
        "..".into(),
        "../..".into(),
        "/etc/passwd".into(),
        format!("{}", outside().display()),
        "alias".into(),
        "../bin/alias/..".into(),
        "".into(),
        "a/".repeat(2000),
        "t".repeat(300),
        "../lib".into(),
    ]
}

const OCTALS: &[&str] = &[
    "00000000000",
    "00000000001",
    "00000001000",
    "77777777777",
    "10000000000",
    "0000000000x",
    "           ",
    "-0000000001",
];

const TYPES: &[u8] = b"0123456789LKxgSDVM\0A";

/// A manifest mutation: one field of one entry, or the whole list reshaped.
fn mutate_manifest(rng: &mut Rng, m: &mut Value) {
    let files = m["files"].as_array_mut().unwrap();
    let i = rng.below(files.len());
    match rng.below(9) {
        0 => files[i]["path"] = json!(rng.pick(&hostile_names())),
        1 => files[i]["target"] = json!(rng.pick(&hostile_targets())),
        2 => files[i]["size"] = json!(*rng.pick(&[0u64, 1, 699, 701, 1 << 20, 4 << 30, u64::MAX])),
        3 => files[i]["type"] = json!(rng.pick(&["dir", "file", "symlink", "fifo", ""])),
        4 => files[i]["mode"] = json!(rng.pick(&["0755", "0644", "4755", "0777", "755"])),
        5 => {
            let j = rng.below(files.len());
            files.swap(i, j);
        }
        6 => {
            let dup = files[i].clone();
            files.insert(i, dup);
        }
        7 => {
            files.remove(i);
        }
        _ => m["entry"] = json!(rng.pick(&hostile_names())),
    }
}

/// A change to the uncompressed tar: a header field (checksum fixed up, most
/// of the time, so the parser looks further), a byte, or whole blocks.
fn mutate_tar(rng: &mut Rng, t: &mut RawTar) {
    // Earlier mutations may have moved or cut the headers.
    let live: Vec<usize> = t
        .headers
        .iter()
        .copied()
        .filter(|&h| h + 512 <= t.bytes.len())
        .collect();
    if live.is_empty() {
        return;
    }
    let h = *rng.pick(&live);
    let set = |bytes: &mut Vec<u8>, at: usize, value: &[u8]| {
        if at + value.len() <= bytes.len() {
            bytes[at..at + value.len()].copy_from_slice(value);
        }
    };
    let mut fix_checksum = rng.chance(85);
    match rng.below(10) {
        0 => {
            let mut name = rng.pick(&hostile_names()).clone().into_bytes();
            name.resize(100, 0);
            set(&mut t.bytes, h, &name);
        }
        1 => {
            let mut link = rng.pick(&hostile_targets()).clone().into_bytes();
            link.resize(100, 0);
            set(&mut t.bytes, h + 157, &link);
        }
        2 => {
            let size = rng.pick(OCTALS).as_bytes().to_vec();
            set(&mut t.bytes, h + 124, &size);
        }
        3 => {
            let kind = *rng.pick(TYPES);
            set(&mut t.bytes, h + 156, &[kind]);
        }
        4 => {
            let at = h + rng.below(512);
            let value = rng.next() as u8;
            set(&mut t.bytes, at, &[value]);
        }
        5 => {
            let mode = rng.pick(&["0004755", "0000777", "0007777", "0000000"]);
            set(&mut t.bytes, h + 100, mode.as_bytes());
        }
        6 => {
            // A data byte somewhere: a digest no longer matches.
            let at = rng.below(t.bytes.len());
            t.bytes[at] ^= 1 << rng.below(8);
            fix_checksum = false;
        }
        7 => {
            // Truncate at a random block.
            let blocks = t.bytes.len() / 512;
            t.bytes
                .truncate(rng.below(blocks + 1) * 512 + rng.below(2) * rng.below(512));
            return;
        }
        8 => {
            // Repeat a block range (a duplicated entry), or drop one.
            let blocks = t.bytes.len() / 512;
            let from = rng.below(blocks) * 512;
            let len = (1 + rng.below(3)) * 512;
            let end = (from + len).min(t.bytes.len());
            let chunk = t.bytes[from..end].to_vec();
            if rng.chance(50) {
                let at = rng.below(blocks) * 512;
                t.bytes.splice(at..at, chunk);
            } else {
                t.bytes.drain(from..end);
            }
            return;
        }
        _ => {
            // A GNU long-name record claiming far more bytes than follow.
            let mut rec = tar::Header::new_gnu();
            rec.set_entry_type(*rng.pick(&[
                tar::EntryType::GNULongName,
                tar::EntryType::GNULongLink,
                tar::EntryType::XHeader,
                tar::EntryType::XGlobalHeader,
            ]));
            rec.set_size(*rng.pick(&[1u64, 4095, 4097, 1 << 30, 8 << 30]));
            rec.set_cksum();
            t.bytes.splice(h..h, rec.as_bytes().iter().copied());
            return;
        }
    }
    if fix_checksum && h + 512 <= t.bytes.len() {
        let block: &mut [u8; 512] = (&mut t.bytes[h..h + 512]).try_into().unwrap();
        let header = tar::Header::from_byte_slice(block);
        let mut header = header.clone();
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
    }
}

/// Mutation `n` of the run seeded with `seed`: the same bytes every time.
fn mutant(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = Rng(seed ^ (n as u64).wrapping_mul(0xa24b_aed4_963e_e407));
    rng.next();
    let items = base();
    let mut m = manifest(&items);
    let layer = rng.below(100);
    if layer < 30 {
        for _ in 0..1 + rng.below(2) {
            mutate_manifest(&mut rng, &mut m);
        }
    }
    let text = serde_json::to_vec_pretty(&m).unwrap();
    let mut t = RawTar::build(&text, &items);
    if (20..80).contains(&layer) {
        for _ in 0..1 + rng.below(3) {
            mutate_tar(&mut rng, &mut t);
        }
    }
    let mut payload = gzip(&t.bytes);
    if (80..90).contains(&layer) {
        // The gzip stream itself, sealed again: inflate's errors.
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(payload.len());
            payload[at] ^= 1 << rng.below(8);
        }
        if rng.chance(30) {
            payload.truncate(rng.below(payload.len()));
        }
    }
    let mut file = seal(&payload);
    if layer >= 90 {
        // The sealed file: the digest or the trailer must catch it.
        let at = rng.below(file.len());
        file[at] ^= 1 << rng.below(8);
        if rng.chance(20) {
            file.truncate(rng.below(file.len()));
        }
    }
    file
}

// ---------------------------------------------------------------------------
// Running them.

#[derive(Default)]
struct Tally {
    verify: [usize; 2],
    extract: [usize; 2],
    failures: Vec<String>,
}

/// Runs the launcher with a memory and a CPU-time limit; kills it if it
/// is still there at BLOCKED.
fn run(cwd: &Path, args: &[&std::ffi::OsStr]) -> Result<(i32, String), String> {
    let mut cmd = Command::new(launcher());
    cmd.current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    support::limit(&mut cmd, MEMORY_LIMIT, CPU_SECONDS);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run the launcher: {e}"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).ok();
            let said = match stderr.trim() {
                "" => String::new(),
                text => format!(", after saying: {text}"),
            };
            return match (status.code(), status.signal()) {
                (Some(code), _) => Ok((code, stderr)),
                (None, Some(signal @ (libc::SIGXCPU | libc::SIGKILL))) => Err(format!(
                    "killed at its limit of {CPU_SECONDS} CPU-seconds (signal {signal}){said}"
                )),
                (None, signal) => Err(format!("killed by signal {signal:?}{said}")),
            };
        }
        if started.elapsed() > BLOCKED {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "blocked: still running after {BLOCKED:?} of wall time"
            ));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn check_one(seed: u64, n: usize, sandbox: &Path) -> Result<[i32; 2], String> {
    let bytes = mutant(seed, n);
    let bundle = sandbox.join("archy-gate");
    std::fs::write(&bundle, &bytes).unwrap();
    let parent = sandbox.join("parent");
    std::fs::create_dir_all(&parent).unwrap();
    let target = parent.join("target");
    let before = tree(sandbox);
    let mut codes = [0; 2];
    for (i, args) in [
        vec!["verify".as_ref(), bundle.as_os_str()],
        vec![
            "extract".as_ref(),
            bundle.as_os_str(),
            "--to".as_ref(),
            target.as_os_str(),
        ],
    ]
    .iter()
    .enumerate()
    {
        let what = args[0].to_string_lossy();
        let (code, stderr) = run(sandbox, args).map_err(|e| format!("{what}: {e}"))?;
        codes[i] = code;
        if stderr.contains("panicked") || (code != 0 && code != 3) {
            return Err(format!("{what}: exit {code}: {}", stderr.trim()));
        }
        let after = tree(sandbox);
        let added: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
        let removed = before.iter().any(|p| !after.contains(p));
        let stray = added
            .iter()
            .any(|p| !(code == 0 && i == 1 && p.starts_with("parent/target/")));
        if removed || stray {
            return Err(format!(
                "{what} (exit {code}) changed the sandbox: added {added:?}"
            ));
        }
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).unwrap();
    }
    Ok(codes)
}

fn mutation_count() -> usize {
    std::env::var("ARCHY_GATE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MUTATIONS)
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn mutated_bundles_exit_0_or_3_and_stay_inside_their_target() {
    check_mutations(0..DEFAULT_TIER.min(mutation_count()));
}

#[test]
#[ignore = "slow tier (scripts/test.sh runs it): cargo test -- --include-ignored"]
fn the_rest_of_the_mutation_run_exits_0_or_3_and_stays_inside() {
    check_mutations(DEFAULT_TIER.min(mutation_count())..mutation_count());
}

/// Mutations `cases` of the seeded run, on as many threads as there are cores.
fn check_mutations(cases: std::ops::Range<usize>) {
    let seed: u64 = std::env::var("ARCHY_GATE_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    // The unmutated bundle must pass, or every rejection proves nothing.
    let control = tempfile::tempdir().unwrap();
    let good = seal(&gzip(
        &RawTar::build(
            &serde_json::to_vec_pretty(&manifest(&base())).unwrap(),
            &base(),
        )
        .bytes,
    ));
    std::fs::write(control.path().join("archy-gate"), &good).unwrap();
    let (code, stderr) = run(
        control.path(),
        &[
            "verify".as_ref(),
            control.path().join("archy-gate").as_os_str(),
        ],
    )
    .unwrap();
    assert_eq!(code, 0, "the unmutated bundle fails verify: {stderr}");

    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let count = cases.len();
    let next = AtomicUsize::new(cases.start);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let sandbox = tempfile::tempdir().unwrap();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= cases.end {
                        break;
                    }
                    let result = check_one(seed, n, sandbox.path());
                    let mut t = tally.lock().unwrap();
                    match result {
                        Ok([v, e]) => {
                            t.verify[(v != 0) as usize] += 1;
                            t.extract[(e != 0) as usize] += 1;
                        }
                        Err(why) => {
                            let kept = keep(seed, n);
                            t.failures
                                .push(format!("mutation {n}: {why} (kept as {})", kept.display()));
                        }
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    let escaped = tree(outside());
    // Straight to the process's stderr, past the harness's capture: the
    // counts are for the CI log, pass or fail.
    let _ = writeln!(
        std::io::stderr(),
        "mutations {}..{} (seed {seed}, {threads} threads, {:.1}s); verify: exit 0 {}, exit 3 {}; extract: exit 0 {}, exit 3 {}; failures: {}",
        cases.start,
        cases.end,
        started.elapsed().as_secs_f64(),
        t.verify[0],
        t.verify[1],
        t.extract[0],
        t.extract[1],
        t.failures.len()
    );
    assert!(
        escaped.is_empty(),
        "written outside every sandbox: {escaped:?}"
    );
    assert!(
        t.failures.is_empty(),
        "{} of {count} mutations ({}..{}, seed {seed}) went wrong:\n  {}",
        t.failures.len(),
        cases.start,
        cases.end,
        t.failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    assert_eq!(t.verify[0] + t.verify[1], count);
    for (what, [_, refused]) in [("verify", t.verify), ("extract", t.extract)] {
        assert!(
            refused * 100 >= count * MIN_REJECTED_PERCENT,
            "{what} refused {refused} of {count} mutations ({}..{}, seed {seed}), fewer than \
             {MIN_REJECTED_PERCENT}%: it accepts bundles it must refuse",
            cases.start,
            cases.end,
        );
    }
}

/// Keeps a failing mutation's bundle for a person to look at.
fn keep(seed: u64, n: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archy-gate-mutation-{seed}"));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{n}.bundle"));
    let _ = std::fs::write(&path, mutant(seed, n));
    path
}
