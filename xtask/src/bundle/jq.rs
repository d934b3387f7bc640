//! jq from its upstream release tarball (from inside the PyPI sdist), built
//! all-static against musl, cached by source and recipe, and checked with
//! jq's own upstream test suite.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use xshell::cmd;

use super::elf::assert_static;
use super::fetch::{fetch, hex};
use super::host::{is_executable, show_tail, Host};
use super::lock::Lock;

/// The recipe's version in the cache key: bump it when the steps below change.
const RECIPE: &str = "r1";

const CONFIGURE: &[&str] = &[
    "CC=musl-gcc",
    "CFLAGS=-O2",
    "LDFLAGS=-s",
    "--enable-all-static",
    "--disable-shared",
    "--enable-static",
    "--disable-docs",
    "--disable-maintainer-mode",
    "--with-oniguruma=builtin",
];

/// Upstream test drivers (jq's Makefile.am TESTS with oniguruma enabled).
const TESTS: &[&str] = &[
    "mantest",
    "jqtest",
    "shtest",
    "utf8test",
    "base64test",
    "uritest",
    "optionaltest",
    "onigtest",
    "manonigtest",
];

/// The cached build tree of the pinned jq (built first if missing); the
/// binary is its `jq`.
pub fn build(host: &Host, lock: &Lock) -> Result<PathBuf> {
    let tarball = fetch(host, lock, "jq")?;
    let input = lock.get("jq")?;
    let version = &input.version;
    let dir = host
        .cache
        .join("build")
        .join(format!("jq-{version}-{}", cache_key(&input.sha256)));
    if dir.join(".archy-gate-ok").is_file() && is_executable(&dir.join("jq")) {
        return Ok(dir);
    }
    host.need(&[
        ("gcc", "build-essential"),
        ("make", "build-essential"),
        ("strip", "binutils"),
        ("musl-gcc", "musl-tools"),
    ])?;
    let scratch = host.scratch_in(&host.cache.join("build"), &format!(".jq-{version}"))?;
    let src = scratch.path();
    let src_text = src
        .to_str()
        .with_context(|| format!("the cache path is not UTF-8: {}", src.display()))?;
    // It goes into CFLAGS, which make splits on whitespace.
    ensure!(
        !src_text.chars().any(char::is_whitespace),
        "the cache path must not contain whitespace: {src_text}"
    );
    let sh = &host.sh;
    cmd!(sh, "tar -xzf {tarball} -C {src} --strip-components=1")
        .quiet()
        .run()?;
    log!("building jq {version} (static, musl)");
    // No -g and in-tree relative sources: the build directory does not reach the binary; the
    // prefix map is a second guard. Path-dependent flags go to make, not configure, because
    // configure's arguments are embedded in the binary (jq --build-configuration).
    {
        let _cd = sh.push_dir(src);
        host.run_logged("jq-configure", cmd!(sh, "./configure {CONFIGURE...}"))?;
    }
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let cflags = format!("CFLAGS=-O2 -ffile-prefix-map={src_text}=.");
    host.run_logged("jq-make", cmd!(sh, "make -C {src} {jobs} {cflags}"))?;
    let jq = src.join("jq");
    assert_static(host, &jq)?;
    let bytes = fs::read(&jq)?;
    if contains(&bytes, src_text.as_bytes()) {
        bail!("the build directory leaks into {}", jq.display());
    }
    log!("running jq's upstream test suite against the new jq");
    check(host, &jq, src)?;
    File::create(src.join(".archy-gate-ok"))?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let src = scratch.keep();
    fs::rename(&src, &dir)
        .with_context(|| format!("renaming {} to {}", src.display(), dir.display()))?;
    Ok(dir)
}

/// The build's cache key: the source's sha256 and the recipe, hashed, 16
/// hex digits.
fn cache_key(source_sha256: &str) -> String {
    let mut text = format!("{RECIPE}\n{source_sha256}\n");
    for arg in CONFIGURE {
        text.push_str(arg);
        text.push('\n');
    }
    hex(&Sha256::digest(text.as_bytes()))[..16].to_owned()
}

/// Runs jq's upstream test drivers from the source tree SRC against JQ;
/// fails unless every driver passed.
pub fn check(host: &Host, jq: &Path, src: &Path) -> Result<()> {
    ensure!(is_executable(jq), "not an executable: {}", jq.display());
    let jq = std::path::absolute(jq)?;
    let (mut passed_cases, mut cases, mut failed) = (0u64, 0u64, 0usize);
    for test in TESTS {
        let log = host.log_path(&format!("jq-test-{test}"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let ok = Command::new(format!("./tests/{test}"))
            .current_dir(src)
            .env("JQ", &jq)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
            .is_ok_and(|s| s.success());
        // --run-tests drivers end with "N of M tests passed (...)"; shtest and utf8test do not.
        let summary = fs::read(&log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
            .lines()
            .rev()
            .find_map(counts);
        let shown = summary
            .map(|(ok, n, line)| {
                passed_cases += ok;
                cases += n;
                format!(": {line}")
            })
            .unwrap_or_default();
        if ok {
            log!("  PASS tests/{test}{shown}");
        } else {
            failed += 1;
            show_tail(&log, 20);
            log!("  FAIL tests/{test}{shown} (log: {})", log.display());
        }
    }
    log!(
        "jq upstream tests: {} of {} drivers passed; {passed_cases} of {cases} --run-tests cases passed",
        TESTS.len() - failed,
        TESTS.len()
    );
    ensure!(
        failed == 0,
        "jq's upstream tests failed against {}",
        jq.display()
    );
    Ok(())
}

/// "N of M tests passed ..." as (N, M, the line).
fn counts(line: &str) -> Option<(u64, u64, String)> {
    let mut words = line.split(' ');
    let passed = words.next()?.parse().ok()?;
    let total = (words.next()? == "of")
        .then(|| words.next())??
        .parse()
        .ok()?;
    (words.next()? == "tests" && words.next()? == "passed")
        .then(|| (passed, total, line.to_owned()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_the_shell_scripts() {
        // printf '%s\n' r1 SHA CONFIGURE... | sha256sum, as bundle/build.sh computed it, so
        // jq builds cached before the move to xtask are found again.
        let sha = "71b8d6e8f5fe81f6c6d0d110e3892251f6ce76ed095abd315e26e6e1193af3af";
        assert_eq!(cache_key(sha), "6f4e15c2ba5830b7");
    }

    #[test]
    fn a_driver_summary_is_read_from_its_line() {
        let line = "545 of 547 tests passed (2 malformed, 0 skipped)";
        assert_eq!(counts(line), Some((545, 547, line.to_owned())));
        assert_eq!(counts("Test #3: 'x' at line number 9"), None);
        assert_eq!(counts("5 of x tests passed"), None);
    }
}
