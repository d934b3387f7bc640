//! Putting the bundle on a node: only when the node's copy differs by hash;
//! into `PATH.part`, resumed from what arrived when a link breaks; renamed
//! into place atomically once its sha256 matches.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::ssh::{quote, Ssh, SshError};
use super::state::UploadStats;
use crate::exit::ExitStatus;

const ATTEMPTS: u32 = 8;
/// The most a broken link can cost: one chunk sent again.
const CHUNK: u64 = 256 * 1024;

/// What the node holds at `remote`: the final file's sha256 and the part's length.
fn remote_facts(ssh: &mut Ssh, remote: &str) -> Result<(Option<String>, u64), SshError> {
    let r = quote(remote);
    let part = quote(&format!("{remote}.part"));
    let script = format!(
        "if [ -f {r} ]; then sha256sum {r} | cut -d' ' -f1; else echo none; fi; \
         if [ -f {part} ]; then wc -c < {part}; else echo 0; fi"
    );
    let out = ssh.run(&script, b"")?;
    let text = out.stdout_text();
    let mut lines = text.lines().map(str::trim);
    let sha = lines.next().filter(|s| s.len() == 64).map(String::from);
    let part_len = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    Ok((sha, part_len))
}

pub fn upload(
    ssh: &mut Ssh,
    local: &Utf8Path,
    sha256: &str,
    remote: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<UploadStats, String> {
    let started = Instant::now();
    let size = std::fs::metadata(local)
        .map_err(|e| format!("{local}: {e}"))?
        .len();
    let mut stats = UploadStats {
        size,
        ..UploadStats::default()
    };
    let part = format!("{remote}.part");
    let dir = remote
        .rsplit_once('/')
        .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d });
    let mut backoff = Duration::from_secs(1);
    // What was on the node at the first look (a part from an earlier run):
    // every byte past it must cross once; more than that was sent again.
    let mut first_offset: Option<u64> = None;
    loop {
        if stats.attempts >= ATTEMPTS {
            return Err(format!("the upload failed {ATTEMPTS} times"));
        }
        let facts = remote_facts(ssh, remote);
        let (current, mut offset) = match facts {
            Ok(f) => f,
            Err(e) => {
                stats.attempts += 1;
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                if stats.attempts >= ATTEMPTS {
                    return Err(format!("cannot reach the node to upload: {e}"));
                }
                continue;
            }
        };
        if current.as_deref() == Some(sha256) {
            stats.skipped = stats.sent == 0;
            break;
        }
        if offset > size {
            offset = 0;
        }
        first_offset.get_or_insert(offset);
        if offset == size {
            // Complete: check and move into place.
            let script = format!(
                "cd {d} && [ \"$(sha256sum {p} | cut -d' ' -f1)\" = {s} ] && chmod 755 {p} && mv -f {p} {r}",
                d = quote(dir),
                p = quote(&part),
                s = sha256,
                r = quote(remote)
            );
            match ssh.run(&script, b"") {
                Ok(out) if out.code == ExitStatus::Success.code() => continue, // the next look sees the final file
                Ok(_) => {
                    // The part is corrupt: start over.
                    let _ = ssh.run(&format!("rm -f {}", quote(&part)), b"");
                    first_offset = Some(0);
                    stats.attempts += 1;
                    continue;
                }
                Err(_) => {
                    stats.attempts += 1;
                    thread::sleep(backoff);
                    continue;
                }
            }
        }
        stats.attempts += 1;
        let mut file = File::open(local).map_err(|e| format!("{local}: {e}"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        // Chunk by chunk, each its own session: a broken link loses at most
        // the chunk in flight, not the SSH window's worth.
        let mut broke = false;
        while offset < size {
            let chunk = CHUNK.min(size - offset);
            let command = format!(
                "mkdir -p {d} && {{ [ {o} -gt 0 ] || : > {p}; }} && cat >> {p}",
                d = quote(dir),
                o = offset,
                p = quote(&part)
            );
            let mut done = offset;
            let mut on_sent = |n: u64| {
                stats.sent += n;
                done += n;
                progress(done, size);
            };
            match ssh.run_streaming(&command, &mut (&mut file).take(chunk), &mut on_sent) {
                Ok(out) if out.code == ExitStatus::Success.code() => {
                    offset += chunk;
                    backoff = Duration::from_secs(1);
                }
                Ok(out) => return Err(format!("writing {part} failed: {}", out.stderr.trim())),
                Err(_) => {
                    broke = true;
                    break;
                }
            }
        }
        if broke {
            thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
    let needed = size - first_offset.unwrap_or(0).min(size);
    stats.resent = if stats.skipped {
        0
    } else {
        stats.sent.saturating_sub(needed)
    };
    stats.seconds = started.elapsed().as_secs();
    Ok(stats)
}
