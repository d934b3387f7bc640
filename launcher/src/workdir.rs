//! Choosing where a bundle is unpacked and runs are recorded: the first
//! candidate that is ours alone (private_fs.rs: a dir another uid made, or can
//! write, is passed over, saying which and why) and where a file really
//! executes. A noexec mount is found by executing a probe (the launcher
//! itself), never guessed from mount options; free space is only advice,
//! since some filesystems report none.

use std::io::Write;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};

use crate::exit::{fail, ExitStatus};
use crate::private_fs::{Create, PrivateDir};

/// A chosen work dir, and what was passed over on the way.
pub struct WorkDir {
    pub dir: PrivateDir,
    pub path: Utf8PathBuf,
    /// Each candidate passed over, with the reason.
    pub passed_over: Vec<(Utf8PathBuf, String)>,
    /// Advice about free space, when it looks short.
    pub space_warning: Option<String>,
}

/// The candidates, in order: `--workdir`, `$ARCHY_GATE_DIR`, `/tmp`,
/// `/var/tmp`, `$XDG_RUNTIME_DIR`, `~/.cache`.
pub fn candidates(flag: Option<&Utf8Path>) -> Vec<Utf8PathBuf> {
    if let Some(dir) = flag {
        return vec![dir.to_owned()];
    }
    let mut out = Vec::new();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(dir) = env("ARCHY_GATE_DIR") {
        out.push(dir.into());
    }
    out.push("/tmp/archy-gate".into());
    out.push("/var/tmp/archy-gate".into());
    if let Some(dir) = env("XDG_RUNTIME_DIR") {
        out.push(Utf8PathBuf::from(dir).join("archy-gate"));
    }
    if let Some(home) = env("HOME") {
        out.push(Utf8PathBuf::from(home).join(".cache/archy-gate"));
    }
    out
}

/// Picks the first usable candidate. `fallback_probe` is a static
/// executable that exits 0 when run with `--version` (the launcher's own
/// bytes), for machines without a built-in probe; `need` is how many bytes
/// the unpacked bundle takes.
pub fn choose(
    flag: Option<&Utf8Path>,
    fallback_probe: &[u8],
    need: u64,
) -> anyhow::Result<WorkDir> {
    let tiny = tiny_probe();
    let probe = tiny.as_deref().unwrap_or(fallback_probe);
    let mut passed_over = Vec::new();
    for dir in candidates(flag) {
        match usable(&dir, probe) {
            Ok(private) => {
                return Ok(WorkDir {
                    space_warning: space_warning(&dir, need),
                    path: private.path().to_owned(),
                    dir: private,
                    passed_over,
                })
            }
            Err(why) => passed_over.push((dir, why)),
        }
    }
    let reasons: Vec<String> = passed_over
        .iter()
        .map(|(dir, why)| format!("  {dir}: {why}"))
        .collect();
    Err(fail(
        ExitStatus::Environment,
        format!(
            "no usable work dir:\n{}\nname one where files may be executed with --workdir DIR or ARCHY_GATE_DIR",
            reasons.join("\n")
        ),
    ))
}

fn usable(dir: &Utf8Path, probe: &[u8]) -> Result<PrivateDir, String> {
    let private = PrivateDir::open(dir, Create::Yes).map_err(|e| e.why)?;
    // Ours and writable by us alone; an older launcher made it 0755.
    private
        .restrict()
        .map_err(|e| format!("cannot chmod it 700: {e}"))?;
    // Our own name in our own dir, created exclusively: nothing planted
    // there can be written through or executed in its place.
    let name = format!(".exec-probe-{}", std::process::id());
    let _ = private.remove_all(&name);
    let probe_path = private.path().join(&name);
    let result = (|| {
        let mut file = private
            .create_file(&name, 0o700)
            .map_err(|e| format!("cannot write there: {e}"))?;
        file.write_all(probe)
            .map_err(|e| format!("cannot write there: {e}"))?;
        drop(file); // a file open for writing cannot be executed
        let status = run_probe(probe_path.as_std_path()).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                "files there cannot be executed (mounted noexec?)".to_string()
            }
            _ => format!("cannot execute a file there: {e}"),
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("a test executable there failed ({status})"))
        }
    })();
    let _ = private.remove_all(&name);
    result.map(|()| private)
}

/// Runs the probe just written. A fork elsewhere in this process (another
/// thread spawning a child) can hold a copy of the descriptor it was
/// written through for a moment, and exec then fails with ETXTBSY; that
/// passes, so it is retried briefly rather than taken for a verdict on
/// the mount.
fn run_probe(path: &std::path::Path) -> std::io::Result<std::process::ExitStatus> {
    let mut attempts = 0;
    loop {
        let result = Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// The smallest static executable that exits 0: one ELF header, one
/// loadable segment, and `exit(0)` in this machine's instructions. Probing
/// with it writes 129 bytes, not the 3 MB launcher, on every run; it
/// answers the same question, whether this mount lets a static ELF run.
fn tiny_probe() -> Option<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    const MACHINE_AND_CODE: Option<(u16, &[u8])> = Some((
        0x3e,
        // mov eax, 60 (exit); xor edi, edi; syscall
        &[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05],
    ));
    #[cfg(target_arch = "aarch64")]
    const MACHINE_AND_CODE: Option<(u16, &[u8])> = Some((
        0xb7,
        // mov x0, #0; mov x8, #93 (exit); svc #0
        &[
            0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
        ],
    ));
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const MACHINE_AND_CODE: Option<(u16, &[u8])> = None;

    let (machine, code) = MACHINE_AND_CODE?;
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    // ELF header: 64-bit, little-endian, version 1, System V; an executable.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // e_entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 1, 0, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        elf.extend_from_slice(&half.to_le_bytes());
    }
    // One PT_LOAD, read + execute, mapping the whole file at BASE.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    for word in [0, BASE, BASE, total, total, 0x1000u64] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(code);
    Some(elf)
}

fn space_warning(dir: &Utf8Path, need: u64) -> Option<String> {
    let path = std::ffi::CString::new(dir.as_str()).ok()?;
    // SAFETY: statvfs fills the zeroed struct; path is a valid C string.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return None;
        }
        st.f_bavail as u64 * st.f_frsize as u64
    };
    (free < need.saturating_mul(2)).then(|| {
        format!(
            "{dir} reports {} free and the bundle needs {} (advice only: some filesystems under-report)",
            crate::human::size(free),
            crate::human::size(need)
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    /// The built-in probe really is a program this machine runs, exiting 0.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_tiny_probe_runs_and_exits_0() {
        let probe = super::tiny_probe().expect("a built-in probe on this architecture");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .unwrap();
        file.write_all(&probe).unwrap();
        drop(file);
        // Through the launcher's own runner: other tests in this process
        // fork while this one writes (see run_probe).
        let status = super::run_probe(&path).unwrap();
        assert!(status.success(), "{status}");
    }
}
