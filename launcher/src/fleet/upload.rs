//! Putting the bundle on a node: only when the node's copy differs by hash;
//! into `PATH.part`, resumed from what arrived when a link breaks; renamed
//! into place atomically once its sha256 matches. Every pass counts
//! against `retry::UPLOAD`, whatever the node answers.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

use camino::Utf8Path;

use super::answer;
use super::retry;
use super::ssh::{quote, Ssh, SshError};
use super::state::UploadStats;
use crate::exit::ExitStatus;

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
    progress: &mut (dyn FnMut(u64, u64) + Send),
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
    // Every pass counts: a look at the node's copy with what follows it
    // (chunks sent, or the move into place). A node that answers "part
    // complete, moved" but never holds the file uses them up.
    let mut tries = retry::UPLOAD.start();
    let mut last = String::from("the node never reported the bundle in place");
    // What was on the node at the first look (a part from an earlier run):
    // every byte past it must cross once; more than that was sent again.
    let mut first_offset: Option<u64> = None;
    loop {
        if !tries.next() {
            return Err(format!(
                "the upload failed {} times; last: {last}",
                tries.made()
            ));
        }
        stats.attempts = tries.made();
        let (current, mut offset) = match remote_facts(ssh, remote) {
            Ok(f) => f,
            Err(SshError::Misbehaved(why)) => return Err(why),
            Err(e) => {
                last = format!("cannot reach the node to upload: {e}");
                tries.pause();
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
            // Complete: check and move into place; the next look must see it.
            let script = format!(
                "cd {d} && [ \"$(sha256sum {p} | cut -d' ' -f1)\" = {s} ] && chmod 755 {p} && mv -f {p} {r}",
                d = quote(dir),
                p = quote(&part),
                s = sha256,
                r = quote(remote)
            );
            match ssh.run(&script, b"") {
                Ok(out) if out.code == ExitStatus::Success.code() => {
                    last = "the node said the bundle was moved into place, then did not have it"
                        .into();
                }
                Ok(_) => {
                    // The part is corrupt: start over.
                    let _ = ssh.run(&format!("rm -f {}", quote(&part)), b"");
                    first_offset = Some(0);
                    last = "the uploaded copy did not match its sha256".into();
                }
                Err(SshError::Misbehaved(why)) => return Err(why),
                Err(e) => {
                    last = e.to_string();
                    tries.pause();
                }
            }
            continue;
        }
        let mut file = File::open(local).map_err(|e| format!("{local}: {e}"))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        // Chunk by chunk, each its own session: a broken link loses at most
        // the chunk in flight, not the SSH window's worth.
        while offset < size {
            let chunk = CHUNK.min(size - offset);
            let command = format!(
                "mkdir -p {d} && {{ [ {o} -gt 0 ] || : > {p}; }} && cat >> {p}",
                d = quote(dir),
                o = offset,
                p = quote(&part)
            );
            let mut done = offset;
            let sent = &mut stats.sent;
            let mut on_sent = |n: u64| {
                *sent += n;
                done += n;
                progress(done, size);
            };
            match ssh.run_streaming(&command, &mut (&mut file).take(chunk), &mut on_sent) {
                Ok(out) if out.code == ExitStatus::Success.code() => {
                    offset += chunk;
                    tries.progressed();
                }
                Ok(out) => {
                    return Err(format!(
                        "writing {part} failed: {}",
                        answer::tame_str(out.stderr.trim())
                    ))
                }
                Err(SshError::Misbehaved(why)) => return Err(why),
                Err(e) => {
                    last = e.to_string();
                    tries.pause();
                    break;
                }
            }
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
