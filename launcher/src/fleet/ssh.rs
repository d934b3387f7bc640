//! One multiplexed OpenSSH connection per node (ControlMaster), and at
//! most one session on it at a time: loaded sshds refuse concurrent
//! sessions (MaxSessions, MaxStartups), and one that stalls instead of
//! refusing wedges. The operator's ssh configuration applies to the master
//! (ProxyCommand `tailscale nc %h %p` and all; `ssh_command.rs` lays out
//! the command lines). A link that drops is reopened by the next command.
//!
//! Sessions never overlap on the node's side either. sshd frees a closed
//! session's slot only when it garbage-collects the channel, after it read
//! our close (session.c `session_open`, channels.c
//! `channel_garbage_collect`); a master that asks for the next session at
//! once can have that request read in the same batch as the close (a
//! loaded node, a bursty cellular link) and refused: "no more sessions".
//! So before the next session, a round trip through the master that needs
//! no session slot (`round_trip`) proves the slot is free.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::roster::Node;
use super::ssh_command::Setup;
use super::{answer, retry};

/// How long the master has to authenticate before the node counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a control command's round trip may take (a dead link is found
/// by ServerAlive sooner).
const ROUND_TRIP: Duration = Duration::from_secs(60);

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

pub struct SessionOutput {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl SessionOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn with_stdout(self, stdout: Vec<u8>) -> SessionOutput {
        SessionOutput { stdout, ..self }
    }
}

/// Ends a master connection, if there is one.
fn drop_master(master: &mut Option<Child>) {
    if let Some(mut child) = master.take() {
        let _ = child.kill();
        let _ = child.wait();
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
    setup: Arc<Setup>,
    /// The roster's options for this node, for the master only.
    options: Vec<String>,
    control: PathBuf,
    master: Option<Child>,
    master_log: PathBuf,
    /// A session ended since the last round trip through the master.
    session_ended: bool,
    /// Round trips made, each with a forward spec of its own.
    round_trips: u64,
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
    /// The connection to `dest` (named `name` in the control dir: keep it
    /// short, a socket path must fit in 108 bytes), not yet opened.
    pub fn new(setup: &Arc<Setup>, dest: &str, options: &[String], name: &str) -> Ssh {
        Ssh {
            dest: dest.to_string(),
            setup: Arc::clone(setup),
            options: options.to_vec(),
            control: setup.control_dir.join(format!("{name}.sock")),
            master_log: setup.control_dir.join(format!("{name}.master.log")),
            master: None,
            session_ended: false,
            round_trips: 0,
            connections: 0,
        }
    }

    /// An ssh that acts through the master: no config, never a connection
    /// of its own.
    fn client(&self) -> Command {
        let mut cmd = self.setup.command();
        cmd.args(self.setup.client_args(&self.control));
        cmd
    }

    fn master_alive(&mut self) -> bool {
        let Some(child) = &mut self.master else {
            return false;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        self.client()
            .args(["-O", "check", "--", &self.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A round trip through the master that needs no session on the node:
    /// a remote forward request (`-O forward -R`, a port sshd picks on the
    /// node's loopback, to a socket that does not exist here), which the
    /// master answers only once sshd did, and sshd only after it read what
    /// the master sent before, the last session's close included; then the
    /// forward is cancelled. Each names a socket of its own: the master
    /// answers a forward it already holds without asking sshd. sshd logs
    /// neither above debug; where it refuses forwarding, its refusal is the
    /// same round trip. (Measured over a bursty link to a `MaxSessions 1`
    /// sshd: 15 of 30 back-to-back sessions refused without it, 0 of 40
    /// with it.)
    fn round_trip(&mut self) {
        if !std::mem::take(&mut self.session_ended) {
            return;
        }
        self.round_trips += 1;
        let spec = format!(
            "127.0.0.1:0:{}",
            self.setup
                .control_dir
                .join(format!("rt{}.sock", self.round_trips))
                .display()
        );
        let forwarded = self
            .client_once(&["-O", "forward", "-R", &spec])
            .is_some_and(|out| out.status.success());
        if forwarded {
            self.client_once(&["-O", "cancel", "-R", &spec]);
        }
    }

    /// A control command through the master, given `ROUND_TRIP` to answer.
    fn client_once(&self, args: &[&str]) -> Option<std::process::Output> {
        let mut child = self
            .client()
            .args(args)
            .args(["--", &self.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let started = Instant::now();
        while matches!(child.try_wait(), Ok(None)) {
            if started.elapsed() > ROUND_TRIP {
                let _ = child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        child.wait_with_output().ok()
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
        let child = self
            .setup
            .command()
            .args(self.setup.master_args(&self.control, &self.options))
            .args(["--", &self.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| SshError::Link(format!("cannot run ssh: {e}")))?;
        self.master = Some(child);
        self.connections += 1;
        self.session_ended = false;
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

    /// A session over the master, once the last one is known closed on
    /// the node (`round_trip`). Were the master's request refused anyway,
    /// ssh would quietly open a second TCP connection: the client's
    /// `ProxyCommand=false` (first on its command line, no config read)
    /// turns that fallback into a failure we retry over the master.
    fn session(&mut self, command: &str) -> Command {
        self.round_trip();
        self.session_ended = true;
        let mut cmd = self.client();
        cmd.args(["--", &self.dest, command]);
        cmd
    }

    /// Runs `command` on the node over the master, feeding `input` on
    /// stdin, its answer capped at `answer::SHORT` bytes. A session sshd
    /// refused on a live master is asked for again on that master (never on
    /// a new connection), `retry::REFUSED_SESSION` times.
    pub fn run(&mut self, command: &str, input: &[u8]) -> Result<SessionOutput, SshError> {
        self.run_capped(command, input, answer::SHORT)
    }

    /// `run`, its answer capped at `cap` bytes.
    pub fn run_capped(
        &mut self,
        command: &str,
        input: &[u8],
        cap: u64,
    ) -> Result<SessionOutput, SshError> {
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
    ) -> Result<SessionOutput, SshError> {
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
    ) -> Result<SessionOutput, SshError> {
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
    ) -> Result<SessionOutput, SshError> {
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
                    if cut.is_some() {
                        if status.is_none() {
                            let _ = child.kill();
                            status = child.wait().ok();
                        }
                        // The mux client handed our pipes to the master,
                        // which keeps them, and the session on the node,
                        // after the client is gone: only ending the master
                        // ends the node's side and closes them.
                        drop_master(&mut self.master);
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
    ) -> Result<SessionOutput, SshError> {
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
            Some(code) => Ok(SessionOutput {
                code,
                stdout,
                stderr,
            }),
        }
    }

    fn drop_master(&mut self) {
        drop_master(&mut self.master);
    }

    /// Closes the master connection.
    pub fn close(&mut self) {
        if self.master.is_some() {
            let _ = self
                .client()
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

/// The SSH connections of a fleet run, one per node: a node's gate and the
/// cross suites that span it are reached on the one connection.
pub struct Pool {
    setup: Arc<Setup>,
    open: Mutex<HashMap<String, Ssh>>,
}

impl Pool {
    pub fn new(setup: Setup) -> Pool {
        Pool {
            setup: Arc::new(setup),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ssh>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's connection: the one kept, or a new (not yet connected) one.
    pub fn take(&self, node: &Node) -> Ssh {
        let kept = self.open().remove(&node.name);
        kept.unwrap_or_else(|| Ssh::new(&self.setup, &node.ssh, &node.ssh_options, &node.name))
    }

    pub fn put(&self, name: &str, ssh: Ssh) {
        self.open().insert(name.to_string(), ssh);
    }

    pub fn close_all(&self) {
        let open: Vec<Ssh> = self.open().drain().map(|(_, ssh)| ssh).collect();
        for mut ssh in open {
            ssh.close();
        }
    }
}
