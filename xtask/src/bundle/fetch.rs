//! The download cache: an input's artifact lives in `CACHE/dl/SHA256/`, is
//! checked against its pin on every hit, and a fresh download is kept only
//! when it matches (else it goes to `CACHE/rejected/` and the build stops).

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use xshell::cmd;

use super::host::Host;
use super::lock::{Fetch, Lock};

/// The cached artifact of the input NAME, fetched first if it is missing or
/// does not match its pin.
pub fn fetch(host: &Host, lock: &Lock, name: &str) -> Result<PathBuf> {
    let input = lock.get(name)?;
    let want = &input.sha256;
    let dir = host.cache.join("dl").join(want);
    for file in files_in(&dir)? {
        if sha256_file(&file)? == *want {
            return Ok(file);
        }
        log!(
            "cached {} does not match its sha256; fetching it again",
            file.display()
        );
        fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    }

    let tmp = host.scratch(&format!("fetch-{name}"))?;
    let tmp = tmp.path();
    let version = &input.version;
    let sh = &host.sh;
    log!("fetching {name} {version} ({})", describe(&input.fetch));
    match &input.fetch {
        Fetch::PypiSdist { project } => {
            host.need_python_venv()?;
            let venv = host.scratch("venv")?;
            let venv = venv.path();
            let pip = venv.join("bin/pip");
            let _quiet = sh.push_env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
            host.run_logged("pip-venv", cmd!(sh, "python3 -m venv {venv}"))?;
            host.run_logged("pip-upgrade", cmd!(sh, "{pip} install -U pip"))?;
            let spec = format!("{project}=={version}");
            host.run_logged(
                &format!("pip-download-{name}"),
                cmd!(
                    sh,
                    "{pip} download --no-deps --no-binary {project} -d {tmp} {spec}"
                ),
            )?;
        }
        Fetch::Npm { package } => {
            host.need(&[("npm", "npm")])?;
            let _cd = sh.push_dir(tmp);
            let spec = format!("{package}@{version}");
            host.run_logged(&format!("npm-pack-{name}"), cmd!(sh, "npm pack {spec}"))?;
        }
        Fetch::Apt { package } => {
            // apt's _apt sandbox user cannot write into a private scratch dir: apt then
            // downloads as the calling user and warns; harmless.
            let _cd = sh.push_dir(tmp);
            let spec = format!("{package}={version}");
            host.run_logged(
                &format!("apt-download-{name}"),
                cmd!(sh, "apt-get download -q {spec}"),
            )?;
        }
        Fetch::Member { input: from, path } => {
            let tarball = fetch(host, lock, from)?;
            extract_member(host, &tarball, path, tmp)?;
        }
    }

    let got = files_in(tmp)?;
    let [file] = got.as_slice() else {
        bail!(
            "fetching {name} gave {} files instead of one (in {})",
            got.len(),
            tmp.display()
        );
    };
    let file_name = file.file_name().expect("a listed file has a name");
    let have = sha256_file(file)?;
    if have != *want {
        let rejected = host.cache.join("rejected");
        fs::create_dir_all(&rejected)?;
        fs::rename(file, rejected.join(file_name))?;
        bail!(
            "sha256 mismatch for {name} {version} ({}): {} pins {want}, the download is {have} (kept in {})",
            describe(&input.fetch),
            lock.path.display(),
            rejected.join(file_name).display()
        );
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kept = dir.join(file_name);
    fs::rename(file, &kept)
        .with_context(|| format!("moving the download to {}", kept.display()))?;
    Ok(kept)
}

/// The file PATH inside the gzip'd TARBALL, as TMP/<its file name>.
fn extract_member(host: &Host, tarball: &Path, path: &str, tmp: &Path) -> Result<()> {
    let member = Path::new(path);
    ensure!(
        member
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "member path '{path}' must be relative, without '..'"
    );
    let sh = &host.sh;
    cmd!(sh, "tar -xzf {tarball} -C {tmp} -- {path}")
        .quiet()
        .run()
        .with_context(|| format!("{path} not found inside {}", tarball.display()))?;
    let file_name = member.file_name().expect("a normal last component");
    let held = tmp.join(".member");
    fs::rename(tmp.join(member), &held)?;
    let top = member.components().next().expect("a non-empty path");
    if tmp.join(top).exists() {
        fs::remove_dir_all(tmp.join(top))?;
    }
    fs::rename(held, tmp.join(file_name))?;
    Ok(())
}

/// What the lock says, for messages: `pypi-sdist:jq`, `member:jq-sdist:...`.
fn describe(fetch: &Fetch) -> String {
    match fetch {
        Fetch::PypiSdist { project } => format!("pypi-sdist:{project}"),
        Fetch::Npm { package } => format!("npm:{package}"),
        Fetch::Apt { package } => format!("apt:{package}"),
        Fetch::Member { input, path } => format!("member:{input}:{path}"),
    }
}

/// The regular files directly in DIR whose names do not start with a dot,
/// sorted (what the shell's `DIR/*` gave); none when DIR is absent.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// sha256 of a file's bytes, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
