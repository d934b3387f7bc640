//! One multiplexed OpenSSH connection per node (ControlMaster), and at
//! most one session on it at a time: loaded sshds refuse concurrent
//! sessions (MaxSessions, MaxStartups). The user's ~/.ssh/config applies
//! (ProxyCommand `tailscale nc %h %p` and all), or a given ssh_config file.
//! A link that drops is reopened by the next command.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::{answer, retry};

/// How long the master has to authenticate before the node counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum SshError {
    /// The connection could not be made or broke (ssh exit 255).
    Link(String),
    /// The connection is up but sshd refused a session on it for now.
    Refused(String),
    /// The node's answer broke a bound (too long, too slow): the node
    /// misbehaves, and no retry will change that.
    Misbehaved(String),
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::Link(why) | SshError::Refused(why) | SshError::Misbehaved(why) => {
                f.write_str(why)
            }
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

    fn with_stdout(self, stdout: Vec<u8>) -> Output {
        Output { stdout, ..self }
    }
}

/// Why a session was ended before it was done.
enum Cut {
    /// A reader met its cap.
    Overflow,
    /// The session outlived its deadline.
    Deadline,
}

/// The first words of a remote command, for a verdict: which command the
/// node answered badly, without a script's whole text.
fn short_command(command: &str) -> String {
    let first = command.lines().next().unwrap_or("");
    let words: Vec<&str> = first.split_whitespace().take(3).collect();
    let mut shown = words.join(" ");
    if shown.len() > 60 {
        shown = shown.chars().take(60).collect();
    }
    if words.len() < first.split_whitespace().count() || command.lines().nth(1).is_some() {
        shown.push_str(" …");
    }
    shown
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
                    // ssh's own words, with whatever the far end sent
                    // during the handshake: capped and escaped.
                    let why = answer::read_capped_file(&self.master_log, answer::STDERR_KEPT);
                    let why = crate::printable::printable(&why).into_owned();
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

    /// Runs `command` on the node over the master, feeding `input` on
    /// stdin, its answer capped at `answer::SHORT` bytes. A session sshd
    /// refused on a live master is asked for again on that master (never on
    /// a new connection), `retry::REFUSED_SESSION` times.
    pub fn run(&mut self, command: &str, input: &[u8]) -> Result<Output, SshError> {
        self.run_capped(command, input, answer::SHORT)
    }

    /// `run`, its answer capped at `cap` bytes.
    pub fn run_capped(
        &mut self,
        command: &str,
        input: &[u8],
        cap: u64,
    ) -> Result<Output, SshError> {
        let mut tries = retry::REFUSED_SESSION.start();
        loop {
            let mut stdout = Vec::new();
            let outcome = self.exchange(
                command,
                &mut &input[..],
                &mut |_| {},
                cap,
                retry::SESSION,
                &mut |out| {
                    out.read_to_end(&mut stdout)?;
                    Ok(())
                },
            );
            match outcome {
                Ok(end) => return Ok(end.with_stdout(stdout)),
                Err(SshError::Refused(_)) if tries.next() => tries.pause(),
                Err(SshError::Refused(why)) => return Err(SshError::Link(why)),
                Err(other) => return Err(other),
            }
        }
    }

    /// Streams `source` to `command`'s stdin, counting the bytes handed to
    /// ssh through `sent`; the command's answer is capped at `answer::SHORT`.
    pub fn run_streaming(
        &mut self,
        command: &str,
        source: &mut (dyn Read + Send),
        sent: &mut (dyn FnMut(u64) + Send),
    ) -> Result<Output, SshError> {
        let mut stdout = Vec::new();
        let end = self.exchange(
            command,
            source,
            sent,
            answer::SHORT,
            retry::SESSION,
            &mut |out| {
                out.read_to_end(&mut stdout)?;
                Ok(())
            },
        )?;
        Ok(end.with_stdout(stdout))
    }

    /// Runs `command` with nothing on stdin and hands its stdout, as a
    /// stream of at most `cap` bytes, to `sink` (the fetch of a run dir).
    /// `Ok` holds the command's exit code and stderr; what `sink` made of
    /// the stream is the caller's.
    pub fn run_into(
        &mut self,
        command: &str,
        cap: u64,
        sink: &mut (dyn FnMut(&mut dyn Read) -> io::Result<()> + Send),
    ) -> Result<Output, SshError> {
        self.exchange(
            command,
            &mut io::empty(),
            &mut |_| {},
            cap,
            retry::FETCH_SESSION,
            sink,
        )
    }

    /// One session: `source` to its stdin (on a thread of its own, so a
    /// node that answers before it reads cannot stall us), its stdout
    /// through `sink` capped at `cap` bytes, its stderr kept up to
    /// `answer::STDERR_KEPT`, all within `deadline`. Whatever breaks a cap
    /// or the deadline ends the session (the ssh client is killed; the
    /// master stays) and is the node's misbehaviour, named.
    fn exchange(
        &mut self,
        command: &str,
        source: &mut (dyn Read + Send),
        sent: &mut (dyn FnMut(u64) + Send),
        cap: u64,
        deadline: Duration,
        sink: &mut (dyn FnMut(&mut dyn Read) -> io::Result<()> + Send),
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
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let started = Instant::now();
        // Set by a reader that met its cap: the session is ended at once.
        let over = AtomicBool::new(false);
        let (fed, sunk, said, status, cut) = thread::scope(|scope| {
            let feeder = scope.spawn(move || -> io::Result<()> {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = source.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    if stdin.write_all(&buf[..n]).is_err() {
                        return Ok(()); // the session ended; its exit status says why
                    }
                    sent(n as u64);
                }
            });
            let over = &over;
            let reader = scope.spawn(move || {
                let mut capped = answer::Capped::new(stdout, cap);
                let sunk = sink(&mut capped);
                // What the sink left unread is drained, within the cap, so
                // that ssh can exit.
                let _ = io::copy(&mut capped, &mut io::sink());
                if capped.overflowed() {
                    over.store(true, Ordering::SeqCst);
                }
                sunk
            });
            let errors = scope.spawn(move || {
                let said = answer::read_stderr(stderr);
                if said.overflowed {
                    over.store(true, Ordering::SeqCst);
                }
                said
            });
            let mut status = None;
            let mut cut: Option<Cut> = None;
            loop {
                if status.is_none() {
                    status = child.try_wait().ok().flatten();
                }
                if status.is_some() && reader.is_finished() && errors.is_finished() {
                    break;
                }
                if cut.is_none() {
                    if over.load(Ordering::SeqCst) {
                        cut = Some(Cut::Overflow);
                    } else if started.elapsed() > deadline {
                        cut = Some(Cut::Deadline);
                    }
                    if cut.is_some() && status.is_none() {
                        let _ = child.kill();
                        status = child.wait().ok();
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            // A reader may have met its cap just as ssh ended by itself
            // (the far end saw its pipe close): that is still the node's.
            if cut.is_none() && over.load(Ordering::SeqCst) {
                cut = Some(Cut::Overflow);
            }
            let fed = feeder.join().unwrap_or(Ok(()));
            let sunk = reader
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the reader panicked")));
            let said = errors.join().unwrap_or_default();
            (fed, sunk, said, status, cut)
        });
        let shown = short_command(command);
        match cut {
            Some(Cut::Deadline) => {
                return Err(SshError::Misbehaved(format!(
                    "its answer to `{shown}` took longer than {}",
                    crate::clock::duration(deadline.as_secs())
                )))
            }
            Some(Cut::Overflow) if said.overflowed => {
                return Err(SshError::Misbehaved(format!(
                    "it wrote more than {} of errors for `{shown}`",
                    crate::human::size(answer::STDERR_MAX)
                )))
            }
            Some(Cut::Overflow) => {
                return Err(SshError::Misbehaved(format!(
                    "it answered `{shown}` with more than {}, the most the fleet reads from it",
                    crate::human::size(cap)
                )))
            }
            None => {}
        }
        if let Err(e) = fed {
            return Err(SshError::Link(format!("reading what to send: {e}")));
        }
        let out = self.finish(status.and_then(|s| s.code()), Vec::new(), said.text)?;
        sunk.map_err(|e| SshError::Link(format!("reading the answer to `{shown}`: {e}")))?;
        Ok(out)
    }

    fn finish(
        &mut self,
        code: Option<i32>,
        stdout: Vec<u8>,
        stderr: String,
    ) -> Result<Output, SshError> {
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
