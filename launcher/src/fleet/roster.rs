//! The roster: which nodes there are, how to reach them, what role they
//! play, whether the gate runs there, and where each one's password comes
//! from (an environment variable or a file, never the roster itself); and
//! the cross-node suites (`[[cross]]`): which nodes each spans, with what
//! role, and which one it runs on.

use std::collections::HashSet;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::exit::{fail, ExitStatus};
use crate::minisig::PublicKey;
use crate::secret::Secret;

/// Where the bundle goes on a node by default: beside, not on, the
/// launcher's own work dir candidates (/tmp/archy-gate, /var/tmp/archy-gate).
pub const DEFAULT_REMOTE_PATH: &str = "/var/tmp/archy-gate-fleet/archy-gate";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Must pass before any other node starts.
    Primary,
    Fleet,
    Tester,
    Dev,
}

impl Role {
    /// The role as the roster spells it, everywhere it is shown.
    pub fn word(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Fleet => "fleet",
            Role::Tester => "tester",
            Role::Dev => "dev",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub iterations: Option<u32>,
    #[serde(default)]
    pub ssh_options: Vec<String>,
    pub allow_destructive: Option<bool>,
    /// The node's RPC address as the gate on the node sees it.
    pub host: Option<String>,
    /// Where the bundle is put on each node (must allow executing files).
    pub remote_path: Option<String>,
    /// An ssh_config file added before ~/.ssh/config and /etc/ssh/ssh_config.
    pub ssh_config: Option<Utf8PathBuf>,
    /// The key every node must find the bundle signed by: a minisign
    /// public key (its base64 line) or a .pub file on this host.
    pub trust: Option<String>,
    /// The operator's secret key that signs each node run's result into
    /// attestations.jsonl (a path on this host, relative to the roster).
    pub attest_key: Option<Utf8PathBuf>,
}

/// A node as the roster (or an inventory, `inventory.rs`) gives it, before
/// the checks and defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: String,
    pub(super) ssh: String,
    pub(super) role: Role,
    #[serde(default = "yes")]
    pub(super) gate: bool,
    pub(super) iterations: Option<u32>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<String>,
    #[serde(default)]
    pub(super) ssh_options: Vec<String>,
    pub(super) allow_destructive: Option<bool>,
    pub(super) host: Option<String>,
    /// The node's RPC address as the other nodes reach it (cross suites).
    pub(super) peer_host: Option<String>,
    pub(super) remote_path: Option<String>,
}

/// `[inventory]`: the nodes of an Ansible inventory, added to the roster's
/// own (`inventory.rs`); the roster's `[defaults]` and `[[cross]]` apply on top.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    /// An inventory `ansible-inventory -i` reads.
    path: Option<String>,
    /// A saved `ansible-inventory --list`.
    json: Option<String>,
}

/// A node a cross suite spans: its name, or its name and its role there.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMember {
    Name(String),
    WithRole { name: String, role: Option<String> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCross {
    suite: String,
    nodes: Vec<RawMember>,
    runs_on: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoster {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    node: Vec<RawNode>,
    #[serde(default)]
    cross: Vec<RawCross>,
    inventory: Option<RawInventory>,
}

/// Where a node's password comes from.
#[derive(Clone, Debug)]
pub enum PasswordSource {
    Env(String),
    File(Utf8PathBuf),
}

impl PasswordSource {
    pub fn describe(&self) -> String {
        match self {
            PasswordSource::Env(name) => format!("${name}"),
            PasswordSource::File(path) => path.to_string(),
        }
    }

    /// The password, under the rule `run` applies to its own sources.
    pub fn read(&self) -> Result<Secret, String> {
        let secret = match self {
            PasswordSource::Env(name) => Secret::from_env(name)
                .ok_or_else(|| format!("the environment variable {name} is not set"))?,
            PasswordSource::File(path) => {
                Secret::from_file(path).map_err(|e| format!("cannot read {path}: {e}"))?
            }
        };
        secret.check_one_line(&self.describe())?;
        Ok(secret)
    }
}

/// A node with every default applied.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub ssh: String,
    pub role: Role,
    pub gate: bool,
    pub iterations: u32,
    pub allow_destructive: bool,
    pub password: Option<PasswordSource>,
    pub ssh_options: Vec<String>,
    pub host: String,
    /// The node's RPC as its peers in a cross suite reach it: `peer_host`,
    /// else `host` when that is not loopback.
    pub peer_host: Option<String>,
    pub remote_path: String,
}

/// One node of a cross suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub role: Option<String>,
}

/// A `[[cross]]` entry: a suite of the bundle, the nodes it spans (at least
/// two, all gate targets), and the one it runs on.
#[derive(Clone, Debug)]
pub struct Cross {
    pub suite: String,
    pub nodes: Vec<Member>,
    /// Where the suite runs [default: the first of `nodes`].
    pub runs_on: String,
}

impl Cross {
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|m| m.name.clone()).collect()
    }

    pub fn spans(&self, name: &str) -> bool {
        self.nodes.iter().any(|m| m.name == name)
    }
}

#[derive(Debug)]
pub struct Roster {
    pub path: Utf8PathBuf,
    pub ssh_config: Option<Utf8PathBuf>,
    /// `[defaults] trust`: passed to every node's `run --trust`.
    pub trust: Option<PublicKey>,
    /// `[defaults] attest_key`, resolved; read when a run starts.
    pub attest_key: Option<Utf8PathBuf>,
    pub nodes: Vec<Node>,
    pub cross: Vec<Cross>,
    /// The Ansible inventory the nodes came from, and where each field of
    /// each of them came from (`fleet plan` shows it).
    pub inventory: Option<(super::inventory::Source, super::inventory::Origins)>,
}

impl Roster {
    /// The environment variables that hold the nodes' passwords (and
    /// ARCHY_PASSWORD, the launcher's own), removed from every ssh's.
    pub fn password_vars(&self) -> Vec<String> {
        let mut vars = vec!["ARCHY_PASSWORD".to_string()];
        for n in &self.nodes {
            if let Some(PasswordSource::Env(var)) = &n.password {
                if !vars.contains(var) {
                    vars.push(var.clone());
                }
            }
        }
        vars
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// A role in a cross suite goes on a command line and into reports.
fn plain_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The bundle's place on a node: an absolute path of plain names, whose dir
/// the fleet makes private to the remote user (fleet/remote_dir.rs).
fn check_remote_path(path: &str) -> Result<(), &'static str> {
    let plain = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must be absolute");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2 || !parts.iter().all(|c| plain(c)) {
        return Err(
            "must be /DIR/.../FILE, each name letters, digits, '-', '_' and '.' (not '..')",
        );
    }
    Ok(())
}

/// Why `name` cannot be a node's name, if it cannot: it becomes a dir of
/// the fleet dir and a file name, so never `.`, `..` or a hidden name.
pub(super) fn check_node_name(name: &str) -> Result<(), &'static str> {
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(
            "start with a letter or digit, then letters, digits, '-', '_' and '.' (at most 64)",
        );
    }
    Ok(())
}

/// `~/x` → `$HOME/x`; relative paths are relative to the roster's directory.
fn resolve(base: &Utf8Path, path: &str) -> Utf8PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Ok(home) = std::env::var("HOME") {
            return Utf8PathBuf::from(home).join(rest);
        }
    }
    base.join(path)
}

impl Roster {
    pub fn load(path: &Utf8Path) -> anyhow::Result<Roster> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(
                ExitStatus::Usage,
                format!("cannot read the roster {path}: {e}"),
            )
        })?;
        Roster::parse(path, &text)
    }

    pub fn parse(path: &Utf8Path, text: &str) -> anyhow::Result<Roster> {
        Roster::parse_with(path, text, None)
    }

    /// The roster at `roster`, or none, with the nodes of `inventory` (over
    /// the roster's own `[inventory]`): `--roster`, `--inventory`,
    /// `--inventory-json`.
    pub fn load_with(
        roster: Option<&Utf8Path>,
        inventory: Option<super::inventory::Source>,
    ) -> anyhow::Result<Roster> {
        match (roster, inventory) {
            (Some(path), None) => Roster::load(path),
            (Some(path), inventory) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    fail(
                        ExitStatus::Usage,
                        format!("cannot read the roster {path}: {e}"),
                    )
                })?;
                Roster::parse_with(path, &text, inventory)
            }
            (None, Some(inventory)) => {
                let path = inventory.path().to_owned();
                Roster::parse_with(&path, "", Some(inventory))
            }
            (None, None) => Err(fail(
                ExitStatus::Usage,
                "name the nodes with --roster FILE, --inventory INV or --inventory-json FILE",
            )),
        }
    }

    /// `text` as the roster at `path`, its nodes after `inventory`'s (or
    /// its own `[inventory]`'s) when there is one.
    pub fn parse_with(
        path: &Utf8Path,
        text: &str,
        inventory: Option<super::inventory::Source>,
    ) -> anyhow::Result<Roster> {
        let bad = |msg: String| fail(ExitStatus::Usage, format!("roster {path}: {msg}"));
        let raw: RawRoster = toml::from_str(text).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("unknown field `password`") {
                bad("a password never goes in the roster: name its source with password_env = \"VAR\" or password_file = \"PATH\"".into())
            } else if msg.contains("untagged enum RawMember") {
                bad(format!("{msg}\n[[cross]] nodes: each is a node name, or {{ name = \"n198\", role = \"client\" }}"))
            } else {
                bad(msg)
            }
        })?;
        let base = path.parent().unwrap_or(Utf8Path::new("."));
        let d = &raw.defaults;
        let inventory = match (inventory, &raw.inventory) {
            (Some(source), _) => Some(source),
            (None, None) => None,
            (
                None,
                Some(RawInventory {
                    path: Some(p),
                    json: None,
                }),
            ) => Some(super::inventory::Source::Inventory(resolve(base, p))),
            (
                None,
                Some(RawInventory {
                    path: None,
                    json: Some(j),
                }),
            ) => Some(super::inventory::Source::Dump(resolve(base, j))),
            (None, Some(_)) => {
                return Err(bad(
                    "[inventory]: name one of path = \"INVENTORY\" or json = \"DUMP.json\"".into(),
                ))
            }
        };
        let loaded = inventory
            .as_ref()
            .map(|source| super::inventory::load(source, d))
            .transpose()?;
        let (inventory_nodes, inventory) = match loaded {
            Some(l) => (l.nodes, inventory.map(|s| (s, l.origins))),
            None => (Vec::new(), None),
        };
        let mut names = HashSet::new();
        let mut nodes = Vec::new();
        for n in inventory_nodes.into_iter().chain(raw.node) {
            if let Err(why) = check_node_name(&n.name) {
                return Err(bad(format!("node name {:?}: {why}", n.name)));
            }
            // ssh would take a leading '-' as an option (-oProxyCommand=…).
            if n.ssh.is_empty() || n.ssh.starts_with('-') || n.ssh.chars().any(char::is_whitespace)
            {
                return Err(bad(format!(
                    "node {}: ssh destination {:?} must be user@host or a Host from your ssh config (no leading '-', no spaces)",
                    n.name, n.ssh
                )));
            }
            if !names.insert(n.name.clone()) {
                return Err(bad(format!("two nodes are named {}", n.name)));
            }
            let password = match (&n.password_env, &n.password_file) {
                (Some(_), Some(_)) => {
                    return Err(bad(format!(
                        "node {} names both password_env and password_file: keep one",
                        n.name
                    )))
                }
                (Some(var), None) => Some(PasswordSource::Env(var.clone())),
                (None, Some(file)) => Some(PasswordSource::File(resolve(base, file))),
                (None, None) if n.gate => {
                    return Err(bad(format!(
                        "node {} is a gate target but has no password_env or password_file",
                        n.name
                    )))
                }
                (None, None) => None,
            };
            let iterations = n.iterations.or(d.iterations).unwrap_or(1);
            if iterations == 0 {
                return Err(bad(format!(
                    "node {}: iterations must be at least 1",
                    n.name
                )));
            }
            let remote_path = n
                .remote_path
                .or_else(|| d.remote_path.clone())
                .unwrap_or_else(|| DEFAULT_REMOTE_PATH.into());
            check_remote_path(&remote_path).map_err(|why| {
                bad(format!(
                    "node {}: remote_path {remote_path:?} {why}",
                    n.name
                ))
            })?;
            let mut ssh_options = d.ssh_options.clone();
            ssh_options.extend(n.ssh_options);
            super::ssh_command::check_roster_options(&ssh_options)
                .map_err(|why| bad(format!("node {}: {why}", n.name)))?;
            let host = n
                .host
                .or_else(|| d.host.clone())
                .unwrap_or_else(|| "127.0.0.1".into());
            if let Some(peer_host) = &n.peer_host {
                crate::rpc::endpoint("https", peer_host, false)
                    .map_err(|e| bad(format!("node {}: peer_host {peer_host:?}: {e}", n.name)))?;
            }
            let peer_host = n
                .peer_host
                .or_else(|| (!crate::rpc::is_loopback(&host)).then(|| host.clone()));
            nodes.push(Node {
                name: n.name,
                ssh: n.ssh,
                role: n.role,
                gate: n.gate,
                iterations,
                allow_destructive: n.allow_destructive.or(d.allow_destructive).unwrap_or(false),
                password,
                ssh_options,
                host,
                peer_host,
                remote_path,
            });
        }
        if nodes.is_empty() {
            return Err(bad("no [[node]] entries (and no [inventory])".into()));
        }
        let cross = cross_suites(raw.cross, &nodes).map_err(bad)?;
        let trust = match &d.trust {
            None => None,
            Some(value) => Some(match PublicKey::from_base64(value) {
                Some(key) => key,
                None => {
                    let file = resolve(base, value);
                    let text = std::fs::read_to_string(&file).map_err(|e| {
                        bad(format!("trust = {value:?} is neither a minisign public key nor a readable .pub file ({file}: {e})"))
                    })?;
                    match PublicKey::parse_file(&text)
                        .map_err(|why| bad(format!("trust {file}: {why}")))?[..]
                    {
                        [key] => key,
                        _ => {
                            return Err(bad(format!(
                                "trust {file}: name one key, the one that signs the bundle"
                            )))
                        }
                    }
                }
            }),
        };
        Ok(Roster {
            trust,
            attest_key: d.attest_key.as_deref().map(|p| resolve(base, p.as_str())),
            path: path.to_owned(),
            ssh_config: d.ssh_config.as_deref().map(|p| resolve(base, p.as_str())),
            nodes,
            cross,
            inventory,
        })
    }
}

/// The `[[cross]]` entries, checked against the nodes.
fn cross_suites(raw: Vec<RawCross>, nodes: &[Node]) -> Result<Vec<Cross>, String> {
    let mut out: Vec<Cross> = Vec::new();
    for c in raw {
        let suite = c.suite;
        crate::manifest::check_cross_name(&suite)?;
        if out.iter().any(|o| o.suite == suite) {
            return Err(format!(
                "two [[cross]] entries run suite {suite}: one entry per suite"
            ));
        }
        let members: Vec<Member> = c
            .nodes
            .into_iter()
            .map(|m| match m {
                RawMember::Name(name) => Member { name, role: None },
                RawMember::WithRole { name, role } => Member { name, role },
            })
            .collect();
        if members.len() < 2 {
            return Err(format!(
                "cross suite {suite} spans {} node(s): a cross-node suite spans at least two",
                members.len()
            ));
        }
        for (i, m) in members.iter().enumerate() {
            if members[..i].iter().any(|o| o.name == m.name) {
                return Err(format!("cross suite {suite} names {} twice", m.name));
            }
            let Some(node) = nodes.iter().find(|n| n.name == m.name) else {
                return Err(format!(
                    "cross suite {suite} spans {}, which is no [[node]] of the roster",
                    m.name
                ));
            };
            if !node.gate {
                return Err(format!(
                    "cross suite {suite} spans {}, which is not a gate target (gate = false): a cross suite runs on nodes whose gate passed",
                    m.name
                ));
            }
            if let Some(role) = &m.role {
                if !plain_word(role) {
                    return Err(format!(
                        "cross suite {suite}: {}'s role {role:?}: use letters, digits, '-', '_' and '.'",
                        m.name
                    ));
                }
            }
            if node.peer_host.is_none() {
                return Err(format!(
                    "cross suite {suite} spans {}, whose RPC host {} is loopback, which its peers cannot reach: set peer_host = \"ADDRESS[:PORT]\" on node {}",
                    m.name, node.host, m.name
                ));
            }
        }
        let runs_on = match c.runs_on {
            Some(name) if members.iter().any(|m| m.name == name) => name,
            Some(name) => {
                return Err(format!(
                    "cross suite {suite}: runs_on = {name:?} is not one of its nodes ({})",
                    members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            None => members[0].name.clone(),
        };
        out.push(Cross {
            suite,
            nodes: members,
            runs_on,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
[defaults]
iterations = 5
ssh_options = ["-o", "ConnectTimeout=10"]

[[node]]
name = "n228"
ssh = "root@192.168.1.228"
role = "primary"
password_env = "ARCHY_PW_228"

[[node]]
name = "x250-a"
ssh = "root@x250-a"            # ~/.ssh/config supplies ProxyCommand tailscale nc %h %p
role = "tester"
password_file = "~/.config/archy-gate/x250-a.pw"

[[node]]
name = "n116"
ssh = "root@192.168.1.116"
role = "dev"
gate = false                   # listed, never a gate target
"#;

    #[test]
    fn the_design_example_parses_with_its_defaults() {
        let r = Roster::parse(Utf8Path::new("fleet.toml"), DESIGN_EXAMPLE).unwrap();
        assert_eq!(r.nodes.len(), 3);
        assert_eq!(r.nodes[0].iterations, 5);
        assert_eq!(r.nodes[0].ssh_options, vec!["-o", "ConnectTimeout=10"]);
        assert_eq!(r.nodes[1].role, Role::Tester);
        assert!(!r.nodes[2].gate);
        assert!(r.nodes[2].password.is_none());
    }

    #[test]
    fn trust_takes_a_key_line() {
        let (key, _) = crate::minisig::SecretKey::generate().unwrap();
        let text = format!(
            "[defaults]\ntrust = \"{}\"\n[[node]]\nname='a'\nssh='a'\nrole='dev'\ngate=false\n",
            key.public.to_base64()
        );
        let r = Roster::parse(Utf8Path::new("r.toml"), &text).unwrap();
        assert_eq!(r.trust, Some(key.public));
    }

    #[test]
    fn cross_suites_name_their_nodes_roles_and_where_they_run() {
        let text = format!(
            "{DESIGN_EXAMPLE}\n[[node]]\nname = \"n198\"\nssh = \"root@n198\"\nrole = \"fleet\"\npassword_env = \"P\"\nhost = \"192.168.1.198\"\n\n[[cross]]\nsuite = \"federation\"\nnodes = [\"n198\", {{ name = \"x250-a\", role = \"client\" }}]\nruns_on = \"x250-a\"\n"
        );
        let text = text.replace(
            "password_file = \"~/.config/archy-gate/x250-a.pw\"",
            "password_file = \"~/.config/archy-gate/x250-a.pw\"\npeer_host = \"100.64.0.7:8443\"",
        );
        let r = Roster::parse(Utf8Path::new("fleet.toml"), &text).unwrap();
        let c = &r.cross[0];
        assert_eq!(c.suite, "federation");
        assert_eq!(c.runs_on, "x250-a");
        assert_eq!(
            c.nodes[0],
            Member {
                name: "n198".into(),
                role: None
            }
        );
        assert_eq!(c.nodes[1].role.as_deref(), Some("client"));
        assert_eq!(
            r.node("n198").unwrap().peer_host.as_deref(),
            Some("192.168.1.198")
        );
        assert_eq!(
            r.node("x250-a").unwrap().peer_host.as_deref(),
            Some("100.64.0.7:8443")
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[[node]]\nname='a'\nssh='a'\nrole='primary'\npassword='x'\n", "never goes in the roster"),
            ("[[node]]\nname='a'\nssh='a'\nrole='primary'\n", "has no password_env or password_file"),
            ("[[node]]\nname='a'\nssh='a'\nrole='boss'\npassword_env='X'\n", "unknown variant"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\ngate=false\n[[node]]\nname='a'\nssh='b'\nrole='dev'\ngate=false\n", "two nodes are named a"),
            ("", "no [[node]] entries"),
            ("[inventory]\n", "name one of path"),
            ("[defaults]\ntrust='no-such.pub'\n[[node]]\nname='a'\nssh='a'\nrole='dev'\ngate=false\n", "neither a minisign public key nor a readable .pub file"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\npassword_env='X'\n[[node]]\nname='b'\nssh='b'\nrole='dev'\npassword_env='X'\n[[cross]]\nsuite='f'\nnodes=['a','b']\n", "whose RPC host 127.0.0.1 is loopback, which its peers cannot reach: set peer_host"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\npassword_env='X'\npeer_host='10.0.0.1'\n[[cross]]\nsuite='f'\nnodes=['a','c']\n", "spans c, which is no [[node]] of the roster"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\npassword_env='X'\npeer_host='10.0.0.1'\n[[cross]]\nsuite='f'\nnodes=['a']\n", "a cross-node suite spans at least two"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\npassword_env='X'\npeer_host='10.0.0.1'\n[[node]]\nname='b'\nssh='b'\nrole='dev'\ngate=false\n[[cross]]\nsuite='f'\nnodes=['a','b']\n", "which is not a gate target"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\npassword_env='X'\n[[cross]]\nsuite='f'\nnodes=[3]\n", "each is a node name, or"),
        ];
        for (text, expected) in cases {
            let err = format!(
                "{:#}",
                Roster::parse(Utf8Path::new("r.toml"), text).unwrap_err()
            );
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
