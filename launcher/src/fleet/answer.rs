//! What a node sends back, taken as input from a machine that may be
//! compromised (one app escaping its container, a broken disk): every
//! answer is read as a stream under a cap, parsed into our own types, and
//! every string in it escaped and shortened before anything keeps it. This
//! module owns the caps and the taming; `fetch.rs` applies the same rule to
//! a run dir's files, and the reports escape again where people read.
//!
//! Nothing here trusts a length, a count, a time or a name the node gives:
//! numbers are clamped where they are used (`clamp_*`), to what this host
//! itself observed.

use std::io::{self, Read};

use serde_json::Value;

use crate::printable::printable;
use crate::runs::RunRecord;

/// The most read of a shell check's answer (the remote dir check, the
/// upload's look at the node's copy, a chunk written).
pub const SHORT: u64 = 64 << 10;
/// The most read of a JSON answer (`status --json`, `run --detach --json`,
/// `rpc server.get-state`). A real one is a few KiB.
pub const JSON: u64 = 1 << 20;
/// The most of a session's stderr kept for a reason line.
pub const STDERR_KEPT: usize = 64 << 10;
/// The most of a session's stderr read at all: past it, the node misbehaves.
pub const STDERR_MAX: u64 = 16 << 20;
/// The most a run dir fetched from a node may hold, in file bytes and in
/// entries; past either, the node misbehaves and nothing more is kept.
pub const RUN_DIR_BYTES: u64 = 64 << 20;
pub const RUN_DIR_ENTRIES: usize = 1000;
/// The tar stream that carries a run dir: its files, a header and padding
/// per entry, and the end marker.
pub const RUN_DIR_STREAM: u64 = RUN_DIR_BYTES + (RUN_DIR_ENTRIES as u64 + 20) * 1024;
/// A string from a node, kept: at most this many characters.
pub const STRING_CHARS: usize = 2000;
/// A list from a node, kept: at most this many items.
pub const LIST_ITEMS: usize = 500;

/// A reader that yields at most `cap` bytes and then fails, remembering
/// that the source had more.
pub struct Capped<R> {
    inner: R,
    left: u64,
    overflowed: bool,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Capped<R> {
        Capped {
            inner,
            left: cap,
            overflowed: false,
        }
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.overflowed {
            return Err(io::Error::other("over the cap"));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the cap tells a source that ends exactly there from
        // one that has more.
        let want = buf
            .len()
            .min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.overflowed = true;
            return Err(io::Error::other("over the cap"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A session's stderr: the first `STDERR_KEPT` bytes as text, the rest
/// read and dropped, up to `STDERR_MAX`.
#[derive(Default)]
pub struct Said {
    pub text: String,
    pub overflowed: bool,
}

pub fn read_stderr(source: impl Read) -> Said {
    let mut capped = Capped::new(source, STDERR_MAX);
    let mut kept = Vec::new();
    let _ = (&mut capped)
        .take(STDERR_KEPT as u64)
        .read_to_end(&mut kept);
    let _ = io::copy(&mut capped, &mut io::sink());
    Said {
        text: String::from_utf8_lossy(&kept).into_owned(),
        overflowed: capped.overflowed(),
    }
}

/// The first `cap` bytes of a file of ours (the ssh master's log), as text.
pub fn read_capped_file(path: &std::path::Path, cap: usize) -> String {
    let mut kept = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(cap as u64).read_to_end(&mut kept);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A node's string as we keep it: control characters escaped
/// (`printable`), at most `STRING_CHARS` characters.
pub fn tame_str(text: &str) -> String {
    let text = printable(text);
    if text.chars().count() <= STRING_CHARS {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(STRING_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Every string in `value` tamed, every list at most `LIST_ITEMS` long,
/// every object at most `LIST_ITEMS` keys (keys tamed too).
pub fn tame(value: &mut Value) {
    match value {
        Value::String(s) => *s = tame_str(s),
        Value::Array(items) => {
            items.truncate(LIST_ITEMS);
            items.iter_mut().for_each(tame);
        }
        Value::Object(map) => {
            let taken = std::mem::take(map);
            for (key, mut item) in taken.into_iter().take(LIST_ITEMS) {
                tame(&mut item);
                map.insert(tame_str(&key), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `bytes` (at most `JSON`, as read) parsed as JSON and tamed.
fn tamed_json(bytes: &[u8]) -> Result<Value, String> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    tame(&mut value);
    Ok(value)
}

/// A run's record as a node's `status --json` printed it: parsed, tamed,
/// and its iteration no higher than the run has.
pub fn record(bytes: &[u8]) -> Result<(RunRecord, Value), String> {
    let value = tamed_json(bytes)?;
    let mut record: RunRecord =
        serde_json::from_value(value.clone()).map_err(|e| format!("not a run record ({e})"))?;
    record.iteration = record.iteration.map(|i| i.min(record.iterations));
    Ok((record, value))
}

/// Any other JSON answer (a peer's `server.get-state`), parsed and tamed.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_value(tamed_json(bytes)?).map_err(|e| e.to_string())
}

/// A time a node claims (unix seconds), clamped into `[earliest, latest]`,
/// which this host observed; a claim that is not a finite number is `earliest`.
pub fn clamp_time(claim: f64, earliest: f64, latest: f64) -> f64 {
    let latest = latest.max(earliest);
    if claim.is_finite() {
        claim.clamp(earliest, latest)
    } else {
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reads_up_to_the_cap_and_knows_there_was_more() {
        let mut exact = Capped::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        exact.read_to_end(&mut out).unwrap();
        assert_eq!((out.as_slice(), exact.overflowed()), (&b"12345"[..], false));

        let mut more = Capped::new(&b"123456"[..], 5);
        let mut out = Vec::new();
        assert!(more.read_to_end(&mut out).is_err());
        assert!(more.overflowed());
        assert!(out.len() <= 5, "{out:?}");
    }

    #[test]
    fn strings_lists_and_keys_are_tamed() {
        let long = "x".repeat(STRING_CHARS * 2);
        let mut value = serde_json::json!({
            "signed_by": "\u{1b}]0;pwned\u{7}",
            "failing": (0..LIST_ITEMS + 7).map(|i| i.to_string()).collect::<Vec<_>>(),
            "\u{9b}key": long,
        });
        tame(&mut value);
        assert_eq!(value["signed_by"], "\\x1b]0;pwned\\x07");
        assert_eq!(value["failing"].as_array().unwrap().len(), LIST_ITEMS);
        let kept = value["\\u{9b}key"].as_str().unwrap();
        assert_eq!(kept.chars().count(), STRING_CHARS);
    }

    #[test]
    fn times_are_clamped_to_what_was_observed() {
        assert_eq!(clamp_time(2f64.powi(62), 10.0, 20.0), 20.0);
        assert_eq!(clamp_time(-5.0, 10.0, 20.0), 10.0);
        assert_eq!(clamp_time(f64::NAN, 10.0, 20.0), 10.0);
        assert_eq!(clamp_time(15.0, 10.0, 20.0), 15.0);
        assert_eq!(clamp_time(15.0, 10.0, 5.0), 10.0);
    }
}
