//! Every program started under a command (the launcher, or a node's sshd:
//! `SshNodeBuilder::traced`), as `strace -f` saw it exec: its argv and its
//! environment, whole, and which process started which. Unlike a look at
//! /proc now and then, it cannot miss a process that lived a millisecond.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

const STRACE: &str = "/usr/bin/strace";

/// What every trace records: each execve, whole, and each new process's
/// parent (pids as the host sees them, also for a node's pid namespace).
/// The kernel stops a process for strace only at those calls (seccomp).
const OPTIONS: &[&str] = &[
    "-f",
    "--seccomp-bpf",
    "-qq",
    "-v",
    "-s",
    "65536",
    "--pidns-translation",
    "-e",
    "trace=execve,fork,vfork,clone,clone3",
    "-e",
    "signal=none",
];

/// One execve: who, what, with which arguments and environment.
#[derive(Debug, Clone)]
pub struct Exec {
    pub pid: u32,
    pub path: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
}

fn strace(out: &Path) -> Command {
    assert!(
        Path::new(STRACE).exists(),
        "these tests need strace: apt-get install strace"
    );
    let mut strace = Command::new(STRACE);
    strace.args(OPTIONS).arg("-o").arg(out);
    strace
}

/// `cmd` run under `strace -f`, what it and all it starts did written to
/// `out`; whole once strace has ended, which is when they all have.
pub fn traced(cmd: &Command, out: &Path) -> Command {
    let mut traced = strace(out);
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
    Trace::read(file).execs
}

/// What strace wrote: every execve, in order, and each process's parent.
pub struct Trace {
    pub execs: Vec<Exec>,
    parents: HashMap<u32, u32>,
}

impl Trace {
    pub fn read(file: &Path) -> Trace {
        let text = fs::read_to_string(file).unwrap();
        let mut trace = Trace {
            execs: Vec::new(),
            parents: HashMap::new(),
        };
        for line in text.lines() {
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            let Ok(pid) = pid.parse() else { continue };
            let rest = rest.trim_start();
            if let Some(exec) = rest.strip_prefix("execve(").and_then(|r| exec(pid, r)) {
                trace.execs.push(exec);
            } else if let Some(child) = new_process(rest) {
                trace.parents.insert(child, pid);
            }
        }
        trace
    }

    /// Whether `exec` is, or was started by, a process that `is` holds for,
    /// judged on each process's execs, its own and its ancestors'.
    pub fn within(&self, exec: &Exec, is: impl Fn(&Exec) -> bool) -> bool {
        let mut pid = Some(exec.pid);
        let mut seen = 0;
        while let Some(p) = pid {
            if self.execs.iter().any(|e| e.pid == p && is(e)) {
                return true;
            }
            pid = self.parents.get(&p).copied();
            seen += 1;
            assert!(seen < 10_000, "a cycle of parents at {p}");
        }
        false
    }

    /// Whether `exec`'s process was started by one that `is` holds for.
    pub fn child_of(&self, exec: &Exec, is: impl Fn(&Exec) -> bool) -> bool {
        self.parents
            .get(&exec.pid)
            .is_some_and(|p| self.execs.iter().any(|e| e.pid == *p && is(e)))
    }

    /// Whether `exec` is the gate or was started by it: what the detached
    /// supervisor (`launcher __supervise`) starts, where gate.rs hands a
    /// node's password over as `ARCHY_PASSWORD`, by design.
    pub fn in_gate(&self, exec: &Exec) -> bool {
        let supervisor = |e: &Exec| e.argv.get(1).is_some_and(|a| a == "__supervise");
        self.within(exec, |e| self.child_of(e, supervisor))
    }

    /// Every way `password` is where it should not be: in any argv, or in
    /// an environment other than as the one entry `allowed` names for that
    /// exec. Each names the process and its argv.
    pub fn leaks(&self, password: &str, allowed: impl Fn(&Exec) -> Option<String>) -> Vec<String> {
        let mut leaks = Vec::new();
        // A shell's PATH search execs the same argv in one process again
        // and again: each said once.
        let mut say = |leak: String| {
            if !leaks.contains(&leak) {
                leaks.push(leak);
            }
        };
        for exec in &self.execs {
            if exec.argv.iter().any(|a| a.contains(password)) {
                say(format!("in the argv of pid {}: {:?}", exec.pid, exec.argv));
            }
            let allowed = allowed(exec);
            for var in exec.env.iter().filter(|v| v.contains(password)) {
                if allowed.as_ref() != Some(var) {
                    say(format!(
                        "in the environment of pid {} ({:?}): {var}",
                        exec.pid, exec.argv
                    ));
                }
            }
        }
        leaks
    }
}

/// One execve line after `execve(`.
fn exec(pid: u32, rest: &str) -> Option<Exec> {
    let mut p = Parser(rest.as_bytes(), 0);
    let path = p.string()?;
    p.expect(", ")?;
    let argv = p.list()?;
    p.expect(", ")?;
    let env = p.list()?;
    Some(Exec {
        pid,
        path,
        argv,
        env,
    })
}

/// The new process a finished fork, vfork, clone or clone3 line returned:
/// `… = 12` or, from another pid namespace, `… = 3 /* 12 in strace's PID NS */`.
fn new_process(rest: &str) -> Option<u32> {
    let call = rest.strip_prefix("<... ").unwrap_or(rest);
    let name = call.split(['(', ' ']).next()?;
    if !["fork", "vfork", "clone", "clone3"].contains(&name) || rest.ends_with("<unfinished ...>") {
        return None;
    }
    let (_, result) = rest.rsplit_once(" = ")?;
    match result.split_once(" /* ") {
        Some((_, ours)) => ours.split_once(' ')?.0.parse().ok(),
        None => result.trim().parse().ok(),
    }
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
