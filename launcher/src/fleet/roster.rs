//! The roster: which nodes there are, how to reach them, what role they
//! play, whether the gate runs there, and where each one's password comes
//! from (an environment variable or a file, never the roster itself).

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
    /// An ssh_config file to use instead of ~/.ssh/config.
    pub ssh_config: Option<Utf8PathBuf>,
    /// The key every node must find the bundle signed by: a minisign
    /// public key (its base64 line) or a .pub file on this host.
    pub trust: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    ssh: String,
    role: Role,
    #[serde(default = "yes")]
    gate: bool,
    iterations: Option<u32>,
    password_env: Option<String>,
    password_file: Option<String>,
    #[serde(default)]
    ssh_options: Vec<String>,
    allow_destructive: Option<bool>,
    host: Option<String>,
    remote_path: Option<String>,
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
    pub remote_path: String,
}

#[derive(Debug)]
pub struct Roster {
    pub path: Utf8PathBuf,
    pub ssh_config: Option<Utf8PathBuf>,
    /// `[defaults] trust`: passed to every node's `run --trust`.
    pub trust: Option<PublicKey>,
    pub nodes: Vec<Node>,
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
        let bad = |msg: String| fail(ExitStatus::Usage, format!("roster {path}: {msg}"));
        let raw: RawRoster = toml::from_str(text).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("unknown field `password`") {
                bad("a password never goes in the roster: name its source with password_env = \"VAR\" or password_file = \"PATH\"".into())
            } else {
                bad(msg)
            }
        })?;
        let base = path.parent().unwrap_or(Utf8Path::new("."));
        let d = &raw.defaults;
        let mut names = HashSet::new();
        let mut nodes = Vec::new();
        for n in raw.node {
            // A name becomes a dir of the fleet dir and a file name: never
            // `.`, `..` or a hidden name.
            if !n.name.starts_with(|c: char| c.is_ascii_alphanumeric())
                || n.name.len() > 64
                || !n
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(bad(format!(
                    "node name {:?}: start with a letter or digit, then letters, digits, '-', '_' and '.' (at most 64)",
                    n.name
                )));
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
            nodes.push(Node {
                name: n.name,
                ssh: n.ssh,
                role: n.role,
                gate: n.gate,
                iterations,
                allow_destructive: n.allow_destructive.or(d.allow_destructive).unwrap_or(false),
                password,
                ssh_options,
                host: n
                    .host
                    .or_else(|| d.host.clone())
                    .unwrap_or_else(|| "127.0.0.1".into()),
                remote_path,
            });
        }
        if nodes.is_empty() {
            return Err(bad("no [[node]] entries".into()));
        }
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
            path: path.to_owned(),
            ssh_config: d.ssh_config.as_deref().map(|p| resolve(base, p.as_str())),
            nodes,
        })
    }
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
    fn mistakes_are_named() {
        let cases = [
            ("[[node]]\nname='a'\nssh='a'\nrole='primary'\npassword='x'\n", "never goes in the roster"),
            ("[[node]]\nname='a'\nssh='a'\nrole='primary'\n", "has no password_env or password_file"),
            ("[[node]]\nname='a'\nssh='a'\nrole='boss'\npassword_env='X'\n", "unknown variant"),
            ("[[node]]\nname='a'\nssh='a'\nrole='dev'\ngate=false\n[[node]]\nname='a'\nssh='b'\nrole='dev'\ngate=false\n", "two nodes are named a"),
            ("", "no [[node]] entries"),
            ("[defaults]\ntrust='no-such.pub'\n[[node]]\nname='a'\nssh='a'\nrole='dev'\ngate=false\n", "neither a minisign public key nor a readable .pub file"),
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
