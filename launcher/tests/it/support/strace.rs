//! Every program started under a command, as `strace -f` saw it exec:
//! its argv and its environment, whole. Unlike a look at /proc now and
//! then, it cannot miss a process that lived a millisecond.

use std::fs;
use std::path::Path;
use std::process::Command;

/// One execve: who, what, with which arguments and environment.
#[derive(Debug, Clone)]
pub struct Exec {
    pub pid: u32,
    pub path: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
}

/// `cmd` run under `strace -f`, its execve calls written to `out`; also
/// every process of `attach` (e.g. a node's sshd) and all they start.
pub fn traced(cmd: &Command, attach: &[u32], out: &Path) -> Command {
    assert!(
        Path::new("/usr/bin/strace").exists(),
        "these tests need strace: apt-get install strace"
    );
    let mut traced = Command::new("/usr/bin/strace");
    traced
        .args(["-f", "-qq", "-v", "-s", "65536", "-e", "trace=execve", "-o"])
        .arg(out);
    for pid in attach {
        traced.arg("-p").arg(pid.to_string());
    }
    traced.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        traced.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => traced.env(key, v),
            None => traced.env_remove(key),
        };
    }
    traced
}

/// The execve calls strace wrote to `file`.
pub fn execs(file: &Path) -> Vec<Exec> {
    let text = fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|line| {
            let (pid, rest) = line.split_once(' ')?;
            let rest = rest.trim_start().strip_prefix("execve(")?;
            let mut p = Parser(rest.as_bytes(), 0);
            let path = p.string()?;
            p.expect(", ")?;
            let argv = p.list()?;
            p.expect(", ")?;
            let env = p.list()?;
            Some(Exec {
                pid: pid.parse().ok()?,
                path,
                argv,
                env,
            })
        })
        .collect()
}

/// strace's quoted strings and `[…]` lists, with its C escapes.
struct Parser<'a>(&'a [u8], usize);

impl Parser<'_> {
    fn expect(&mut self, text: &str) -> Option<()> {
        let rest = &self.0[self.1..];
        rest.starts_with(text.as_bytes())
            .then(|| self.1 += text.len())
    }

    fn string(&mut self) -> Option<String> {
        self.expect("\"")?;
        let mut out = Vec::new();
        loop {
            let b = *self.0.get(self.1)?;
            self.1 += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = *self.0.get(self.1)?;
                    self.1 += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'v' => 0x0b,
                        b'f' => 0x0c,
                        b'x' => {
                            let hex = std::str::from_utf8(self.0.get(self.1..self.1 + 2)?).ok()?;
                            self.1 += 2;
                            u8::from_str_radix(hex, 16).ok()?
                        }
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.0.get(self.1) {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.1 += 1;
                                    }
                                    _ => break,
                                }
                            }
                            v as u8
                        }
                        other => other,
                    });
                }
                other => out.push(other),
            }
        }
        // A string cut at -s ends in "..." after the quote: never here.
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn list(&mut self) -> Option<Vec<String>> {
        self.expect("[")?;
        let mut items = Vec::new();
        if self.expect("]").is_some() {
            return Some(items);
        }
        loop {
            items.push(self.string()?);
            if self.expect("]").is_some() {
                return Some(items);
            }
            self.expect(", ")?;
        }
    }
}
