//! A stand-in for an Archy node reached over SSH, as `launcher fleet` drives
//! one: the real OpenSSH sshd on a loopback port, chrooted into a bare node
//! (busybox plus a static bash, the login shell) with its own /, /tmp and
//! /proc. sshd runs as the init of its own pid and mount namespaces, so the
//! node's processes (sessions, detached gate runs) see only each other,
//! orphans are reaped inside, and stopping sshd powers the whole node off.
//!
//! With `.own_network()` the node also has an address of its own (its own
//! network namespace, support::netns): sshd listens there on port 22, the
//! stand-in's RPC serves there (and on the node's loopback), and the
//! fleet and the other nodes reach it there, as Archy nodes on a LAN.
//!
//! sshd's log (LogLevel VERBOSE) is how tests count, on the node's side, the
//! TCP connections and sessions a client opened. `SshConfig` writes the
//! `ssh -F FILE` config that names every node, as ~/.ssh/config does for an
//! operator.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bare_node::BareNode;
use super::netns::NetNs;
use super::Run;

const SSHD: &str = "/usr/sbin/sshd";
const BASH_STATIC: &str = "/bin/bash-static";

/// How a node's sshd is configured; `SshNode::builder(name)` starts from the defaults.
/// Where SSH nodes live: root-owned all the way up, as ChrootDirectory demands.
pub const NODES_DIR: &str = "/var/lib/archy-gate-tests/ssh-nodes";

pub struct SshNodeBuilder {
    name: String,
    max_sessions: u32,
    max_startups: String,
    accept_env: bool,
    traced: bool,
    own_network: bool,
}

impl SshNodeBuilder {
    /// The node in a network namespace of its own with an address of its
    /// own (support::netns), where sshd listens on port 22; the stand-in
    /// Archy node started on it serves its RPC there too.
    pub fn own_network(mut self) -> Self {
        self.own_network = true;
        self
    }

    /// sshd's MaxSessions: sessions at once over one connection (1 = a node
    /// whose sshd allows one session at a time). Default 10, as sshd's.
    pub fn max_sessions(mut self, n: u32) -> Self {
        self.max_sessions = n;
        self
    }

    /// sshd's MaxStartups, e.g. "1" or "2:50:4". Default "10:30:100", as sshd's.
    pub fn max_startups(mut self, spec: &str) -> Self {
        self.max_startups = spec.to_string();
        self
    }

    /// sshd's `AcceptEnv *`: every variable a client sends is set in its
    /// sessions (a node configured too trustingly).
    pub fn accept_env(mut self) -> Self {
        self.accept_env = true;
        self
    }

    /// The node run under strace (support::strace), from outside its
    /// namespaces: every program any of its processes starts is recorded,
    /// and sshd is still the init of the node; `SshNode::stop_traced`.
    pub fn traced(mut self) -> Self {
        self.traced = true;
        self
    }

    pub fn start(self) -> SshNode {
        SshNode::start_with(self)
    }
}

pub struct SshNode {
    /// The node's filesystem; `StandinNode::start(&ssh_node.node, …)` installs
    /// the stand-in Archy node's shims in it.
    pub node: BareNode,
    name: String,
    port: u16,
    /// sshd_config, host and client keys, authorized_keys, sshd.log, and
    /// `root/`, the chroot.
    dir: PathBuf,
    /// `unshare`, whose only child is sshd; or strace, whose only child
    /// is that `unshare`.
    unshare: Option<Child>,
    traced: bool,
    /// sshd, as the host sees it: the init of the node's pid namespace.
    sshd_pid: u32,
    /// The node's own network, when it has one (dropped after sshd stops).
    net: Option<NetNs>,
    _dir: tempfile::TempDir,
}

impl SshNode {
    /// A node called `name` (its `Host` in ssh configs) with sshd's default limits.
    pub fn start(name: &str) -> SshNode {
        SshNode::builder(name).start()
    }

    pub fn builder(name: &str) -> SshNodeBuilder {
        SshNodeBuilder {
            name: name.to_string(),
            max_sessions: 10,
            max_startups: "10:30:100".to_string(),
            accept_env: false,
            traced: false,
            own_network: false,
        }
    }

    fn start_with(opts: SshNodeBuilder) -> SshNode {
        for tool in [SSHD, "/usr/bin/ssh-keygen", BASH_STATIC] {
            assert!(
                Path::new(tool).exists(),
                "the SSH node needs {tool}: apt-get install openssh-server openssh-client bash-static"
            );
        }
        // sshd's privilege separation dir, as Debian's service unit makes it.
        fs::create_dir_all("/run/sshd").unwrap();
        // sshd refuses a chroot below any group- or world-writable dir, and a
        // checkout may sit below /tmp: keep nodes in a root-owned place.
        let parent = Path::new(NODES_DIR).to_path_buf();
        fs::create_dir_all(&parent).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}.", opts.name))
            .tempdir_in(&parent)
            .unwrap();
        let dir = tmp.path().to_path_buf();
        assert_chroot_safe(&dir);

        let node = BareNode::at(dir.join("root"));
        // The login shell sshd runs is root's in the host's passwd, /bin/bash.
        let bash = node.path("/bin/bash");
        super::copy_executable(Path::new(BASH_STATIC), &bash, 0o755);
        fs::write(
            node.path("/etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\n",
        )
        .unwrap();
        for (dev, major, minor) in [("zero", 1, 5), ("random", 1, 8), ("urandom", 1, 9)] {
            let path = node.path(&format!("/dev/{dev}"));
            let status = Command::new("mknod")
                .arg(&path)
                .args(["c", &major.to_string(), &minor.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "mknod {}", path.display());
            fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        }

        keygen(&dir.join("host_key"));
        keygen(&dir.join("id_ed25519"));
        fs::copy(dir.join("id_ed25519.pub"), dir.join("authorized_keys")).unwrap();

        let net = opts.own_network.then(NetNs::new);
        let listen = match &net {
            Some(net) => net.addr().to_string(),
            None => "127.0.0.1".to_string(),
        };
        let mut last_log = String::new();
        for _ in 0..5 {
            // In a namespace of its own, port 22 is the node's.
            let port = if net.is_some() { 22 } else { free_port() };
            let config = format!(
                "# An Archy node stand-in for tests (launcher/tests/it/support/ssh_node.rs).\n\
                 ListenAddress {listen}:{port}\n\
                 HostKey {dir}/host_key\n\
                 PidFile none\n\
                 UsePAM no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 ChrootDirectory {dir}/root\n\
                 Subsystem sftp internal-sftp\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 LogLevel VERBOSE\n\
                 MaxSessions {sessions}\n\
                 MaxStartups {startups}\n\
                 {accept}",
                dir = dir.display(),
                sessions = opts.max_sessions,
                startups = opts.max_startups,
                accept = if opts.accept_env { "AcceptEnv *\n" } else { "" },
            );
            fs::write(dir.join("sshd_config"), config).unwrap();
            let log = dir.join("sshd.log");
            let _ = fs::remove_file(&log);
            // unshare blocks SIGTERM and waits for its child; the node's sshd
            // is that child, the init of the new pid namespace.
            let outer = r#"mount -t proc proc "$1/proc" && exec "$2" -D -f "$3" -E "$4""#;
            let mut unshare = match &net {
                Some(net) => net.command("unshare"),
                None => Command::new("unshare"),
            };
            unshare
                .args(["--mount", "--propagation", "private", "--pid", "--fork"])
                .args(["--kill-child", "--", "sh", "-c", outer, "sh"])
                .arg(dir.join("root"))
                .arg(SSHD)
                .arg(dir.join("sshd_config"))
                .arg(&log);
            if opts.traced {
                unshare = super::strace::traced(&unshare, &dir.join("execs"));
            }
            let mut unshare = unshare
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(dir.join("unshare.err")).unwrap())
                .spawn()
                .expect("unshare runs");
            let listening = format!("Server listening on {listen} port {port}.");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                last_log = fs::read_to_string(&log).unwrap_or_default();
                if last_log.contains(&listening) {
                    let mut sshd_pid = only_child(unshare.id());
                    if opts.traced {
                        sshd_pid = only_child(sshd_pid);
                    }
                    return SshNode {
                        node,
                        name: opts.name,
                        port,
                        dir,
                        unshare: Some(unshare),
                        traced: opts.traced,
                        sshd_pid,
                        net,
                        _dir: tmp,
                    };
                }
                if unshare.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = unshare.kill();
                    let _ = unshare.wait();
                    last_log.push_str(&fs::read_to_string(dir.join("unshare.err")).unwrap());
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // Another test took the port between our probe and sshd's bind: again.
            if !last_log.contains("Bind to port") && !last_log.contains("Cannot bind") {
                break;
            }
        }
        panic!("sshd for {} did not start:\n{last_log}", opts.name);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// sshd's port: on 127.0.0.1, or 22 at the node's own address.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's own network (`own_network`), if it has one.
    pub fn network(&self) -> Option<&NetNs> {
        self.net.as_ref()
    }

    /// Where sshd listens: the node's own address, else 127.0.0.1.
    pub fn address(&self) -> String {
        match &self.net {
            Some(net) => net.addr().to_string(),
            None => "127.0.0.1".to_string(),
        }
    }

    /// The node's `/`, as the host sees it.
    pub fn root(&self) -> &Path {
        &self.node.root
    }

    /// A path inside the node, as the host sees it.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.node.path(inside)
    }

    /// The client key sshd accepts for root.
    pub fn identity_file(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// Everything sshd logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// TCP connections sshd accepted and handed to a connection process,
    /// whatever became of them ("Connection from … port N on …", VERBOSE).
    pub fn connections(&self) -> usize {
        self.count(|l| l.starts_with("Connection from "))
    }

    /// Sessions sshd started: each command, shell or subsystem (sftp, so
    /// scp) run, whether over its own connection or a multiplexed one
    /// ("Starting session: … id N", VERBOSE).
    pub fn sessions(&self) -> usize {
        self.count(|l| l.starts_with("Starting session: "))
    }

    /// Session requests sshd refused because MaxSessions were open on that
    /// connection ("no more sessions").
    pub fn refused_sessions(&self) -> usize {
        self.count(|l| l == "no more sessions")
    }

    /// Connections sshd dropped before authentication because of MaxStartups.
    pub fn dropped_startups(&self) -> usize {
        self.count(|l| l.contains("past MaxStartups"))
    }

    /// The most sessions open at once on this node, over all connections:
    /// "Starting session: … from ADDR port P id N" opens what
    /// "Close session: … from ADDR port P id N" closes. Within a connection
    /// the log is in protocol order; a session whose Close is not logged
    /// yet counts as open.
    pub fn peak_sessions(&self) -> usize {
        let mut open = HashSet::new();
        let mut peak = 0;
        for line in self.log().lines() {
            let key = || line.rsplit_once(" from ").map(|(_, k)| k.to_string());
            if line.starts_with("Starting session: ") {
                if let Some(k) = key() {
                    open.insert(k);
                }
                peak = peak.max(open.len());
            } else if line.starts_with("Close session: ") {
                if let Some(k) = key() {
                    open.remove(&k);
                }
            }
        }
        peak
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log().lines().filter(|l| pred(l.trim_end())).count()
    }

    /// This node's entry for an ssh config: `Host NAME` on its own port.
    pub fn ssh_config(&self) -> String {
        entry_at(
            &self.name,
            &self.address(),
            self.port,
            &self.identity_file(),
        )
    }

    /// An entry called `host` that reaches this node's sshd through
    /// 127.0.0.1:`port` (a `FlakyProxy` in front of it).
    pub fn ssh_config_as(&self, host: &str, port: u16) -> String {
        entry(host, port, &self.identity_file())
    }

    /// `ssh -F <this node's own config> NAME`, in batch mode, no multiplexing:
    /// add the command.
    pub fn ssh_command(&self) -> Command {
        let config = self.dir.join("ssh_config");
        if !config.exists() {
            fs::write(&config, self.ssh_config()).unwrap();
        }
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(config)
            .args(["-o", "BatchMode=yes", "-o", "ControlMaster=no"])
            .args(["-o", "ControlPath=none", &self.name]);
        cmd
    }

    /// Runs `script` on the node over a connection of its own (it counts).
    pub fn ssh(&self, script: &str) -> Run {
        Run::of(
            self.ssh_command()
                .arg(script)
                .stdin(Stdio::null())
                .output()
                .expect("ssh runs"),
        )
    }

    /// Powers the node off: SIGTERM to sshd, the init of the node's pid
    /// namespace, so every process of the node dies with it.
    pub fn stop(&mut self) {
        let Some(mut unshare) = self.unshare.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.sshd_pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while unshare.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.sshd_pid.to_string()])
                    .status();
                let _ = unshare.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Powers a `traced` node off and reads its trace: every exec of its
    /// processes since sshd started, whole now that strace has ended.
    pub fn stop_traced(&mut self) -> super::strace::Trace {
        assert!(self.traced, "{} was not started traced", self.name);
        self.stop();
        super::strace::Trace::read(&self.dir.join("execs"))
    }
}

impl Drop for SshNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `Host` entry on loopback: key auth as root, no host key checks, quiet.
fn entry(host: &str, port: u16, identity: &Path) -> String {
    entry_at(host, "127.0.0.1", port, identity)
}

/// The same, at `address`.
fn entry_at(host: &str, address: &str, port: u16, identity: &Path) -> String {
    format!(
        "Host {host}\n\
         \x20 HostName {address}\n\
         \x20 Port {port}\n\
         \x20 User root\n\
         \x20 IdentityFile {}\n\
         \x20 IdentitiesOnly yes\n\
         \x20 StrictHostKeyChecking no\n\
         \x20 UserKnownHostsFile /dev/null\n\
         \x20 LogLevel ERROR\n",
        identity.display()
    )
}

/// One ssh config file naming every node of a fleet, for `ssh -F FILE`
/// (what ~/.ssh/config is to an operator), and a short dir for control
/// sockets (their paths must stay under ~100 bytes).
pub struct SshConfig {
    path: PathBuf,
    entries: Vec<String>,
    /// Listeners that accept no connection, kept open for `silent` entries.
    silent: Vec<TcpListener>,
    dir: tempfile::TempDir,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig::new()
    }
}

impl SshConfig {
    pub fn new() -> SshConfig {
        // Outside /tmp, so that a fleet run in the security lab (its own
        // /tmp) still finds it.
        // Short: the ControlPath socket below it must fit in 108 bytes.
        let dir = super::lab::scratch("c.");
        let path = dir.path().join("ssh_config");
        fs::create_dir(dir.path().join("ctl")).unwrap();
        let config = SshConfig {
            path,
            entries: Vec::new(),
            silent: Vec::new(),
            dir,
        };
        config.write();
        config
    }

    /// The file, for `ssh -F`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A ControlPath pattern in a dir this config owns: `<dir>/%C`.
    pub fn control_path(&self) -> String {
        format!("{}/%C", self.dir.path().join("ctl").display())
    }

    /// Adds `node` under its own name.
    pub fn add(&mut self, node: &SshNode) -> &mut Self {
        self.push(node.ssh_config())
    }

    /// Adds `host`, reaching `node` through 127.0.0.1:`port` (a proxy's).
    pub fn add_via(&mut self, host: &str, node: &SshNode, port: u16) -> &mut Self {
        self.push(node.ssh_config_as(host, port))
    }

    /// Adds `host` on a loopback port where nothing listens: connecting is
    /// refused at once.
    pub fn add_refusing(&mut self, host: &str) -> &mut Self {
        let port = free_port();
        self.push(entry(host, port, Path::new("/dev/null")))
    }

    /// Adds `host` on a loopback port that takes TCP connections and never
    /// speaks, as a node behind a dead link: the client waits until its
    /// ConnectTimeout ("Connection timed out during banner exchange").
    pub fn add_silent(&mut self, host: &str) -> &mut Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        self.silent.push(listener);
        self.push(entry(host, port, Path::new("/dev/null")))
    }

    /// Adds an entry as written.
    pub fn push(&mut self, entry: String) -> &mut Self {
        self.entries.push(entry);
        self.write();
        self
    }

    fn write(&self) {
        let mut file = fs::File::create(&self.path).unwrap();
        for entry in &self.entries {
            writeln!(file, "{entry}").unwrap();
        }
    }

    /// `ssh -F FILE -o BatchMode=yes`: add options, the host and the command.
    pub fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(&self.path).args(["-o", "BatchMode=yes"]);
        cmd
    }

    /// The options for one multiplexed connection per host that outlives
    /// each command by `persist_secs`.
    pub fn multiplexed(&self, persist_secs: u32) -> Vec<String> {
        vec![
            "-o".into(),
            "ControlMaster=auto".into(),
            "-o".into(),
            format!("ControlPath={}", self.control_path()),
            "-o".into(),
            format!("ControlPersist={persist_secs}"),
        ]
    }

    /// `scp -F FILE -o BatchMode=yes`.
    pub fn scp(&self) -> Command {
        let mut cmd = Command::new("scp");
        cmd.arg("-F").arg(&self.path).args(["-o", "BatchMode=yes"]);
        cmd
    }

    /// Ends a master started with `multiplexed` (`ssh -O exit`), so no
    /// client process outlives the test.
    pub fn exit_master(&self, host: &str) {
        let _ = self
            .ssh()
            .args(["-o", &format!("ControlPath={}", self.control_path())])
            .args(["-O", "exit", host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn keygen(path: &Path) {
    let run = Run::of(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "archy-gate-test",
                "-f",
            ])
            .arg(path)
            .output()
            .expect("ssh-keygen runs"),
    );
    assert_eq!(run.code, 0, "ssh-keygen: {}", run.stderr);
}

/// A loopback port nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pid of `parent`'s only child, once it has one.
fn only_child(parent: u32) -> u32 {
    let path = format!("/proc/{parent}/task/{parent}/children");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "unshare {parent} has no child");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// sshd refuses a ChrootDirectory (and StrictModes an AuthorizedKeysFile)
/// unless every component of the path is root-owned and not writable by
/// group or others: say which one is not, rather than let sshd fail later.
fn assert_chroot_safe(dir: &Path) {
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor).unwrap();
        assert!(
            meta.uid() == 0 && meta.mode() & 0o022 == 0,
            "sshd would refuse {}: {} is not root-owned or is group/world-writable",
            dir.display(),
            ancestor.display()
        );
    }
}
