//! The stand-in Archy node (tests/standin/, README.md there): its JSON-RPC
//! server, run as a child of the test process, and its podman, systemctl and
//! bitcoin-cli shims installed in a bare node. The chroot shares the host's
//! network, so the server on host loopback answers inside the node too;
//! for a node with a network of its own (support::netns) the server runs
//! inside that namespace (`ip netns exec`), on port 443 of all its
//! addresses, with a certificate naming the node's address: 127.0.0.1:443
//! for the node itself, ADDR:443 for the host and its peers. Either way
//! the server is a child of the test, waited on when stopped.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::bare_node::BareNode;
use super::netns::NetNs;
use super::Run;

/// Where the shims look for the rendered state, inside the node.
pub const STATE_INSIDE: &str = "/var/lib/archy-standin";
const SHIMS: [&str; 3] = ["podman", "systemctl", "bitcoin-cli"];

pub fn standin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/standin")
}

fn script() -> PathBuf {
    standin_dir().join("archy_node.py")
}

pub struct StandinNode {
    child: Option<Child>,
    port: u16,
    state: PathBuf,
    password: String,
    /// The node's own address, when it serves in a namespace of its own.
    addr: Option<std::net::Ipv4Addr>,
    /// The bare node's root, when the shims are installed in one.
    node_root: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl StandinNode {
    /// The stand-in for `node`: state in the node's /var/lib/archy-standin,
    /// shims in its /usr/bin, the server listening on host loopback.
    pub fn start(node: &BareNode, scenario: &str, password: &str) -> StandinNode {
        StandinNode::start_in(node, None, scenario, password)
    }

    /// The same, the server in `net` when given (the node's own network).
    pub fn start_in(
        node: &BareNode,
        net: Option<&NetNs>,
        scenario: &str,
        password: &str,
    ) -> StandinNode {
        let state = node.path(STATE_INSIDE);
        let mut standin = StandinNode::spawn(state, None, net, scenario, password);
        standin.node_root = Some(node.root.clone());
        standin.install_shims();
        standin
    }

    /// The server alone, state in a temporary dir: for tests that talk only RPC.
    pub fn start_detached(scenario: &str, password: &str) -> StandinNode {
        let dir = tempfile::tempdir().unwrap();
        StandinNode::spawn(
            dir.path().join("state"),
            Some(dir),
            None,
            scenario,
            password,
        )
    }

    /// The server alone, in `net` (a namespace of its own): e.g. an
    /// impostor at an address a peer is expected at, with a certificate of
    /// its own.
    pub fn start_detached_in(net: &NetNs, scenario: &str, password: &str) -> StandinNode {
        let dir = tempfile::tempdir().unwrap();
        StandinNode::spawn(
            dir.path().join("state"),
            Some(dir),
            Some(net),
            scenario,
            password,
        )
    }

    fn spawn(
        state: PathBuf,
        dir: Option<tempfile::TempDir>,
        net: Option<&NetNs>,
        scenario: &str,
        password: &str,
    ) -> StandinNode {
        fs::create_dir_all(&state).unwrap();
        write_scenario(&state, scenario, Some(password));
        let (child, port) = serve(&state, 0, net);
        StandinNode {
            child: Some(child),
            port,
            state,
            password: password.to_string(),
            addr: net.map(NetNs::addr),
            node_root: None,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as ARCHY_HOST takes it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its RPC as the host and the node's peers reach it: `ADDR:443` for a
    /// node with its own address, else `host()`.
    pub fn peer_host(&self) -> String {
        match self.addr {
            Some(addr) => format!("{addr}:{}", self.port),
            None => self.host(),
        }
    }

    /// Its URL as the host reaches it.
    pub fn url(&self) -> String {
        format!("https://{}/rpc/v1", self.peer_host())
    }

    /// The certificate it serves (PEM), as the stand-in wrote it.
    pub fn cert_pem(&self) -> String {
        fs::read_to_string(self.state.join("tls/cert.pem")).unwrap()
    }

    /// The sha256 (hex) of that certificate's DER: what a peer pins.
    pub fn cert_sha256(&self) -> String {
        use base64::Engine;
        let pem = self.cert_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        super::sha256_hex(&der)
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The state dir as seen from the host.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The scenario as the server last wrote it.
    pub fn scenario(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.state.join("scenario.json")).unwrap()).unwrap()
    }

    /// Replaces the scenario (same password); the running server reloads it
    /// on its next request, and the shims print it at once.
    pub fn set_scenario(&self, name: &str) {
        write_scenario(&self.state, name, None);
        if self.node_root.is_some() {
            self.install_shims();
        }
    }

    /// The methods the server was asked, one per request, in order.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.state.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The shims into the node's /usr/bin; bitcoin-cli only when the
    /// scenario has bitcoin (a node without bitcoin has no bitcoin-cli).
    fn install_shims(&self) {
        let root = self.node_root.as_ref().unwrap();
        let has_bitcoin = !self.scenario()["bitcoin"].is_null();
        for shim in SHIMS {
            let to = root.join("usr/bin").join(shim);
            if shim == "bitcoin-cli" && !has_bitcoin {
                let _ = fs::remove_file(&to);
                continue;
            }
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            super::copy_executable(&standin_dir().join("shims").join(shim), &to, 0o755);
        }
    }

    /// POSTs `body` to /rpc/v1 with curl (the host's), with `cookie` as the
    /// session when given.
    pub fn post(&self, body: &str, cookie: Option<&str>) -> HttpReply {
        // The body (a login holds the password) goes on stdin, not argv.
        let mut cmd = Command::new("curl");
        cmd.args(["-sk", "-D", "-", "-H", "Content-Type: application/json"])
            .args(["--data-binary", "@-"])
            .arg(self.url())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(cookie) = cookie {
            cmd.args(["-b", &format!("session={cookie}")]);
        }
        let mut child = cmd.spawn().expect("curl runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(body.as_bytes()).unwrap();
        }
        let run = Run::of(child.wait_with_output().unwrap()).expect(0);
        let (head, body) = run
            .stdout
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP reply: {}", run.stdout));
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        HttpReply {
            status,
            headers: head.to_string(),
            body: serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
        }
    }

    /// A JSON-RPC 2.0 call.
    pub fn call(&self, method: &str, params: serde_json::Value, cookie: Option<&str>) -> HttpReply {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.post(&body.to_string(), cookie)
    }

    /// Logs in with the right password; returns the session token.
    pub fn login(&self) -> String {
        let reply = self.call(
            "auth.login",
            serde_json::json!({"password": self.password}),
            None,
        );
        reply
            .cookie("session")
            .unwrap_or_else(|| panic!("no session cookie: {}", reply.headers))
    }

    /// SIGTERM, then waits (PID 1 here reaps no orphans); SIGKILL after 10 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Some(child.wait().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl StandinNode {
    /// Stops the server and starts it again on the same state dir and port,
    /// as a node's backend restarts: only what it persisted survives.
    pub fn restart(&mut self) {
        let status = self.stop().expect("the server was running");
        assert!(status.success(), "the stand-in ended with {status:?}");
        self.start_again();
    }

    /// After `stop`: the server again, on the same state dir and port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        assert!(
            self.addr.is_none(),
            "a stand-in in a namespace of its own is not restarted"
        );
        let (child, port) = serve(&self.state, self.port, None);
        assert_eq!(port, self.port);
        self.child = Some(child);
    }

    /// Logs in, calls `method`, and returns its result; panics on an error.
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let session = self.login();
        self.call(method, params, Some(&session)).result().clone()
    }

    /// This node's DID (`node.identity`).
    pub fn did(&self) -> String {
        self.rpc("node.identity", serde_json::Value::Null)["did"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// What the peer protocol logged, one message sent or received a line.
    pub fn peer_log(&self) -> String {
        fs::read_to_string(self.state.join("peer.log")).unwrap_or_default()
    }
}

/// Polls `look` until it gives a value, every 100 ms for at most `within`;
/// then panics with `what` and the last thing `look` said. For the stand-in's
/// asynchronous deliveries (a contact request arrives 1 to 3 s after it is made).
pub fn eventually<T>(
    what: &str,
    within: Duration,
    mut look: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match look() {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {within:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The server on `port` (0: any) of host loopback, or in `net` on port 443
/// of every address there, its certificate naming the node's address.
fn serve(state: &Path, port: u16, net: Option<&NetNs>) -> (Child, u16) {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("server.log"))
        .unwrap();
    let mut cmd = match net {
        Some(net) => net.command("python3"),
        None => Command::new("python3"),
    };
    cmd.arg(script()).arg("--state").arg(state);
    match net {
        Some(net) => cmd
            .args(["--port", "443", "--bind", "0.0.0.0", "--san"])
            .arg(net.addr().to_string()),
        None => cmd.args(["--port", &port.to_string()]),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("python3 runs (the stand-in node needs python3)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("READY ") {
        Some(port) => (child, port.parse().unwrap()),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the stand-in node did not start: {line:?}\n{}",
                fs::read_to_string(state.join("server.log")).unwrap_or_default()
            );
        }
    }
}

impl Drop for StandinNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_scenario(state: &Path, scenario: &str, password: Option<&str>) {
    // The password goes in its file, never on a command line: tests watch
    // every process's argv for it, and must not find ours.
    if let Some(password) = password {
        fs::create_dir_all(state).unwrap();
        fs::write(state.join("password"), format!("{password}\n")).unwrap();
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script())
        .args(["--write-scenario", scenario, "--state"])
        .arg(state);
    Run::of(cmd.output().expect("python3 runs")).expect(0);
}

pub struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: serde_json::Value,
}

impl HttpReply {
    /// The value of the cookie `name` that the reply sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.eq_ignore_ascii_case("set-cookie") {
                return None;
            }
            let first = value.trim().split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    pub fn result(&self) -> &serde_json::Value {
        assert!(self.body.get("error").is_none(), "an error: {}", self.body);
        &self.body["result"]
    }

    /// (code, message) of a JSON-RPC error.
    pub fn error(&self) -> (i64, String) {
        let e = &self.body["error"];
        assert!(e.is_object(), "no error: {}", self.body);
        (
            e["code"].as_i64().unwrap(),
            e["message"].as_str().unwrap().to_string(),
        )
    }
}
