//! The node password, and its one home: every source (ARCHY_PASSWORD, a
//! file, stdin, a terminal prompt, the pipe a detached supervisor reads, a
//! roster's `password_env` or `password_file`) reads it here, under one rule
//! (one trailing line break dropped, any other refused); `Redactor` is
//! what the gate's log, the run record and every error go through to keep
//! it out. It never travels on a command line.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use anyhow::Context;
use camino::Utf8Path;

use crate::exit::{fail, ExitStatus, WithStatus};

/// The variable the gate, `run` and `rpc` take the password from.
pub const PASSWORD_ENV: &str = "ARCHY_PASSWORD";

/// A password; its Debug form never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// A password handed over on a pipe by the launcher that detached us.
    pub fn from_pipe(text: String) -> Secret {
        Secret(text)
    }

    /// The variable's value, if it is set: `None` and an empty password
    /// (for a suite that needs none) are different answers.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name).ok().map(Secret)
    }

    /// A password file's first line: the file's text less one trailing line
    /// break, as editors and `echo` write it.
    pub fn from_file(path: &Utf8Path) -> io::Result<Secret> {
        std::fs::read_to_string(path).map(|text| Secret(strip_newline(text)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The one-line rule: the gate's output is redacted line by line, so a
    /// password with a line break in it would reach gate.log in pieces.
    pub fn check_one_line(&self, source: &str) -> Result<(), String> {
        if self.0.contains(['\n', '\r']) {
            Err(format!(
                "the password from {source} holds a line break: it could not be redacted \
                 from the gate's line-by-line log; give a password of one line"
            ))
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The password of `run`, and where it came from (for the run record).
pub fn obtain(file: Option<&Utf8Path>, stdin: bool) -> anyhow::Result<(Secret, &'static str)> {
    let (secret, source) = obtain_any(file, stdin)?;
    secret
        .check_one_line(source)
        .map_err(|why| fail(ExitStatus::Usage, why))?;
    Ok((secret, source))
}

fn obtain_any(file: Option<&Utf8Path>, stdin: bool) -> anyhow::Result<(Secret, &'static str)> {
    if let Some(path) = file {
        let secret = Secret::from_file(path).status(ExitStatus::Usage, || {
            format!("cannot read --password-file {path}")
        })?;
        return Ok((secret, "--password-file"));
    }
    if stdin {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        return Ok((Secret(strip_newline(text)), "--password-stdin"));
    }
    if let Some(secret) = Secret::from_env(PASSWORD_ENV) {
        return Ok((secret, PASSWORD_ENV));
    }
    if io::stdin().is_terminal() {
        return Ok((prompt()?, "prompt"));
    }
    Err(fail(
        ExitStatus::Usage,
        "no node password: set ARCHY_PASSWORD, or use --password-file FILE or --password-stdin \
         (set ARCHY_PASSWORD= empty for a suite that needs none)",
    ))
}

/// Like `obtain`, for commands that can do without: no prompt, and `None`
/// when no source gives one.
pub fn obtain_optional(file: Option<&Utf8Path>, stdin: bool) -> anyhow::Result<Option<Secret>> {
    if file.is_none() && !stdin && std::env::var_os(PASSWORD_ENV).is_none() {
        return Ok(None);
    }
    obtain(file, stdin).map(|(secret, _)| Some(secret))
}

fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Asks on the terminal with echo off.
fn prompt() -> anyhow::Result<Secret> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("cannot open the terminal to ask for the password")?;
    write!(tty, "node password (ARCHY_PASSWORD): ")?;
    tty.flush()?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tty);
    // SAFETY: termios is plain data; fd is an open terminal for the whole block.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        let ok = libc::tcgetattr(fd, &mut t) == 0;
        if ok {
            let mut quiet = t;
            quiet.c_lflag &= !libc::ECHO;
            libc::tcsetattr(fd, libc::TCSANOW, &quiet);
        }
        ok.then_some(t)
    };
    let mut line = String::new();
    let read = io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restores the settings read above on the same fd.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    writeln!(tty)?;
    read.context("cannot read the password from the terminal")?;
    Ok(Secret(strip_newline(line)))
}

/// Replaces the password wherever it appears.
#[derive(Clone, Default)]
pub struct Redactor {
    needle: Option<String>,
}

pub const REDACTED: &str = "[redacted]";

impl Redactor {
    pub fn new(secret: Option<&Secret>) -> Redactor {
        Redactor {
            needle: secret
                .map(|s| s.expose().to_string())
                .filter(|s| !s.is_empty()),
        }
    }

    pub fn apply(&self, text: &str) -> String {
        match &self.needle {
            Some(n) => text.replace(n.as_str(), REDACTED),
            None => text.to_string(),
        }
    }
}
