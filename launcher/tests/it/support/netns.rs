//! A test node's own address: a network namespace (`ip netns add`) joined
//! to a bridge on the host by a veth pair, so that the node is reached, and
//! reaches its peers, at a non-loopback address of its own, as Archy nodes
//! are on a LAN. The host end sits on the bridge, which holds the host's
//! address in the subnet; inside, `eth0` has the node's address and `lo`
//! is up (the node's own RPC is still 127.0.0.1 there).
//!
//! One bridge and one private /16 per test process (tests run as threads of
//! one process; addresses come from an atomic counter), named after the
//! process id, so two test processes on one machine never share one; the
//! first use sweeps the namespaces, links and bridges that processes no
//! longer running left behind (a killed run). Each namespace is deleted on
//! drop, which takes its veth pair with it.
//!
//! Run a program inside with [`NetNs::command`] (`ip netns exec`): it is a
//! child of the test, which must wait on it (PID 1 here reaps nothing).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Names: `agb<pid>` the bridge, `agn<pid>-<n>` a namespace, `agh<pid>-<n>`
/// its host end (at most 15 bytes, the kernel's limit for a link).
const BRIDGE: &str = "agb";
const NETNS: &str = "agn";
const HOST_END: &str = "agh";

/// This process's bridge and the /16 behind it: `10.X.0.1` is the host.
struct Subnet {
    bridge: String,
    second_octet: u8,
}

static SUBNET: OnceLock<Subnet> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e} (apt-get install iproute2)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[track_caller]
fn must(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The pid in one of our names (`agn123-4` -> 123), when it is one.
fn owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    rest.split('-').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes what dead test processes left: namespaces, host ends, bridges.
fn sweep() {
    for line in ip(&["netns", "list"]).unwrap_or_default().lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if owner(name, NETNS).is_some_and(|pid| !alive(pid)) {
            let _ = ip(&["netns", "delete", name]);
        }
    }
    for line in ip(&["-o", "link", "show"]).unwrap_or_default().lines() {
        // "7: agh123-4@if2: <…" or "5: agb123: <…"
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or_default();
        let dead = [HOST_END, BRIDGE]
            .iter()
            .any(|p| owner(name, p).is_some_and(|pid| !alive(pid)));
        if dead {
            let _ = ip(&["link", "delete", name]);
        }
    }
}

/// This process's bridge, made at first use, on a /16 no interface of the
/// host has yet.
fn subnet() -> &'static Subnet {
    SUBNET.get_or_init(|| {
        sweep();
        let bridge = format!("{BRIDGE}{}", std::process::id());
        let taken = must(&["-o", "-4", "addr", "show"]);
        let start = std::process::id() % 100;
        let second_octet = (0..100)
            .map(|i| 100 + ((start + i) % 100) as u8)
            .find(|x| !taken.contains(&format!(" 10.{x}.")))
            .expect("a free 10.X.0.0/16 for the test nodes' bridge");
        let _ = ip(&["link", "delete", &bridge]);
        must(&["link", "add", &bridge, "type", "bridge"]);
        must(&[
            "addr",
            "add",
            &format!("10.{second_octet}.0.1/16"),
            "dev",
            &bridge,
        ]);
        must(&["link", "set", &bridge, "up"]);
        Subnet {
            bridge,
            second_octet,
        }
    })
}

/// A network namespace with an address of its own on this process's bridge.
pub struct NetNs {
    name: String,
    addr: Ipv4Addr,
}

impl NetNs {
    pub fn new() -> NetNs {
        let subnet = subnet();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // A host end's name, `agh<pid>-<n>`, must fit in 15 bytes.
        assert!(n < 10_000, "too many test namespaces");
        let pid = std::process::id();
        let name = format!("{NETNS}{pid}-{n}");
        let host_end = format!("{HOST_END}{pid}-{n}");
        // .0.1 is the host; nodes from .0.2 on.
        let host = n + 2;
        let addr = Ipv4Addr::new(
            10,
            subnet.second_octet,
            (host / 256) as u8,
            (host % 256) as u8,
        );
        must(&["netns", "add", &name]);
        let ns = NetNs { name, addr };
        must(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        must(&["link", "set", &host_end, "master", &subnet.bridge, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            must(&all);
        };
        inside(&["addr", "add", &format!("{}/16", ns.addr), "dev", "eth0"]);
        inside(&["link", "set", "eth0", "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's own address, as the host and the other nodes reach it.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `program`, to be run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Its veth pair goes with it.
        let _ = ip(&["netns", "delete", &self.name]);
    }
}
