//! One multiplexed OpenSSH connection per node (ControlMaster), and at
//! most one session on it at a time: loaded sshds refuse concurrent
//! sessions (MaxSessions, MaxStartups). The user's ~/.ssh/config applies
//! (ProxyCommand `tailscale nc %h %p` and all), or a given ssh_config file.
//! A link that drops is reopened by the next command.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;

/// How long the master has to authenticate before the node counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum SshError {
    /// The connection could not be made or broke (ssh exit 255).
    Link(String),
    /// The connection is up but sshd refused a session on it for now.
    Refused(String),
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::Link(why) | SshError::Refused(why) => f.write_str(why),
        }
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

pub struct Ssh {
    dest: String,
    base: Vec<String>,
    control: PathBuf,
    master: Option<Child>,
    master_log: PathBuf,
    /// Connections opened so far (the first, then one per reconnect).
    pub connections: u32,
}

/// Quotes a word for the remote shell.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

impl Ssh {
    /// `control_dir` holds the control socket: keep its path short (the
    /// socket path must fit in 108 bytes).
    pub fn new(
        dest: &str,
        options: &[String],
        config: Option<&Utf8Path>,
        control_dir: &Path,
        name: &str,
    ) -> Ssh {
        let control = control_dir.join(format!("{name}.sock"));
        let mut base = Vec::new();
        if let Some(config) = config {
            base.extend(["-F".to_string(), config.to_string()]);
        }
        base.extend(options.iter().cloned());
        base.extend(
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
            ]
            .map(String::from),
        );
        base.push(format!("ControlPath={}", control.display()));
        Ssh {
            dest: dest.to_string(),
            base,
            master_log: control_dir.join(format!("{name}.master.log")),
            control,
            master: None,
            connections: 0,
        }
    }

    fn master_alive(&mut self) -> bool {
        let Some(child) = &mut self.master else {
            return false;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        Command::new("ssh")
            .args(&self.base)
            .args(["-O", "check", "--", &self.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Opens the master connection unless it is up.
    pub fn connect(&mut self) -> Result<(), SshError> {
        if self.master_alive() {
            return Ok(());
        }
        self.drop_master();
        let _ = std::fs::remove_file(&self.control);
        let log =
            std::fs::File::create(&self.master_log).map_err(|e| SshError::Link(e.to_string()))?;
        let child = Command::new("ssh")
            .args(&self.base)
            .args([
                "-M",
                "-N",
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=no",
                "--",
                &self.dest,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| SshError::Link(format!("cannot run ssh: {e}")))?;
        self.master = Some(child);
        self.connections += 1;
        let start = Instant::now();
        loop {
            if let Some(child) = &mut self.master {
                if let Ok(Some(status)) = child.try_wait() {
                    let why = std::fs::read_to_string(&self.master_log).unwrap_or_default();
                    self.master = None;
                    let why = why.trim();
                    return Err(SshError::Link(if why.is_empty() {
                        format!("ssh {} exited with {status}", self.dest)
                    } else {
                        format!("ssh {}: {why}", self.dest)
                    }));
                }
            }
            if self.control.exists() && self.master_alive() {
                return Ok(());
            }
            if start.elapsed() > CONNECT_TIMEOUT {
                self.drop_master();
                return Err(SshError::Link(format!(
                    "ssh {} did not connect within {}s",
                    self.dest,
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A session over the master. When the master's request is refused
    /// (sshd has not yet freed the last session's slot under MaxSessions),
    /// ssh would quietly open a second TCP connection: ProxyCommand=false
    /// turns that fallback into a failure we retry over the master instead.
    fn session(&self, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(&self.base).args([
            "-o",
            "ControlMaster=no",
            "-o",
            "ProxyCommand=false",
            "--",
            &self.dest,
            command,
        ]);
        cmd
    }

    /// Runs `command` on the node over the master, feeding `input` on stdin.
    /// Exit 255 (ssh's own failure) is a link error, and drops the master
    /// unless it is still up (then the session was refused, and is retried).
    pub fn run(&mut self, command: &str, input: &[u8]) -> Result<Output, SshError> {
        let mut refused = 0;
        loop {
            match self.run_once(command, input) {
                Err(SshError::Refused(_)) if refused < 20 => {
                    refused += 1;
                    thread::sleep(Duration::from_millis(50 * refused));
                }
                Err(SshError::Refused(why)) => return Err(SshError::Link(why)),
                other => return other,
            }
        }
    }

    fn run_once(&mut self, command: &str, mut input: &[u8]) -> Result<Output, SshError> {
        self.run_streaming(command, &mut input, &mut |_| {})
    }

    /// Streams `source` to `command`'s stdin, counting the bytes handed to
    /// ssh through `sent`.
    pub fn run_streaming(
        &mut self,
        command: &str,
        source: &mut dyn Read,
        sent: &mut dyn FnMut(u64),
    ) -> Result<Output, SshError> {
        self.connect()?;
        let mut child = self
            .session(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SshError::Link(format!("cannot run ssh: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(SshError::Link(format!("reading the bundle: {e}"))),
            };
            if stdin.write_all(&buf[..n]).is_err() {
                break; // the session died; its exit status says why
            }
            sent(n as u64);
        }
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| SshError::Link(e.to_string()))?;
        self.finish(out.status.code(), out.stdout, out.stderr)
    }

    fn finish(
        &mut self,
        code: Option<i32>,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    ) -> Result<Output, SshError> {
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        match code {
            Some(255) if self.master_alive() => Err(SshError::Refused(format!(
                "{} refused a session: {}",
                self.dest,
                stderr.trim()
            ))),
            Some(255) | None => {
                self.drop_master();
                Err(SshError::Link(format!(
                    "the connection to {} broke: {}",
                    self.dest,
                    stderr.trim()
                )))
            }
            Some(code) => Ok(Output {
                code,
                stdout,
                stderr,
            }),
        }
    }

    fn drop_master(&mut self) {
        if let Some(mut child) = self.master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Closes the master connection.
    pub fn close(&mut self) {
        if self.master.is_some() {
            let _ = Command::new("ssh")
                .args(&self.base)
                .args(["-O", "exit", "--", &self.dest])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        self.drop_master();
        let _ = std::fs::remove_file(&self.control);
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        self.close();
    }
}
