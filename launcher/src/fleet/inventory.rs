//! The roster's nodes from an Ansible inventory: `ansible-inventory -i INV
//! --list` run as a program (never linked: Ansible's Python API is neither
//! stable nor ours to link), or a dump of it saved earlier
//! (`--inventory-json`). Each host's effective variables are read from
//! `_meta.hostvars`, where Ansible has already merged group_vars and
//! host_vars by its own precedence; nothing here re-implements it, and
//! nothing in our environment overrides a host's variable (the mistake
//! pytest-testinfra made).
//!
//! This module only maps and refuses; the nodes it yields go through the
//! roster's own checks (names, destinations, ssh options, passwords) in
//! `roster.rs`. What it never does: decrypt a vault value, render Jinja,
//! or take a password from the inventory.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Map, Value};

use super::roster::{Defaults, RawNode, Role};
use crate::exit::{fail, ExitStatus};

/// The group whose hosts are the fleet, when the inventory has it; without
/// it, every host of the inventory is.
pub const FLEET_GROUP: &str = "archy_gate";
/// Groups that give a host its role (when `archy_gate_role` does not).
const ROLE_GROUPS: [(&str, Role); 4] = [
    ("archy_primary", Role::Primary),
    ("archy_fleet", Role::Fleet),
    ("archy_tester", Role::Tester),
    ("archy_dev", Role::Dev),
];
/// The most of `ansible-inventory`'s output read.
const OUTPUT_CAP: u64 = 64 << 20;

/// Where the inventory comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// An inventory Ansible reads (`-i`): a file, a dir, a plugin's config.
    Inventory(Utf8PathBuf),
    /// `ansible-inventory --list`'s output, saved.
    Dump(Utf8PathBuf),
}

impl Source {
    pub fn path(&self) -> &Utf8Path {
        match self {
            Source::Inventory(p) | Source::Dump(p) => p,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Inventory(p) => format!("`ansible-inventory -i {p} --list`"),
            Source::Dump(p) => format!("{p} (a saved `ansible-inventory --list`)"),
        }
    }
}

/// Where each field of an inventory node came from, for `fleet plan`.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    pub source: String,
    /// "every host" or "group archy_gate".
    pub hosts: String,
    /// Per node, in roster order: (field, where it came from).
    pub nodes: Vec<(String, Vec<(&'static str, String)>)>,
    /// `--limit` as Ansible resolved it, when it did.
    pub limit: Option<(String, Vec<String>)>,
}

impl Origins {
    /// The section `fleet plan` prints.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "\nnodes from the Ansible inventory {} ({}; each host's variables as Ansible merged them):\n",
            self.source, self.hosts
        );
        for (name, fields) in &self.nodes {
            out.push_str(&format!("  {name}:\n"));
            for (field, from) in fields {
                out.push_str(&format!("      {field:<12} {from}\n"));
            }
        }
        if let Some((pattern, names)) = &self.limit {
            out.push_str(&format!(
                "  --limit {pattern:?}, Ansible's pattern (ansible-inventory --limit): {}\n",
                if names.is_empty() {
                    "no host".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
        out
    }
}

/// The inventory's nodes, ready for the roster's checks.
pub(super) struct Loaded {
    pub(super) nodes: Vec<RawNode>,
    pub(super) origins: Origins,
}

fn usage(msg: String) -> anyhow::Error {
    fail(ExitStatus::Usage, msg)
}

/// `ansible-inventory -i INV --list [--limit PATTERN]`'s JSON.
fn run_ansible_inventory(inventory: &Utf8Path, limit: Option<&str>) -> anyhow::Result<Value> {
    let mut cmd = Command::new("ansible-inventory");
    cmd.args(["-i", inventory.as_str(), "--list"]);
    if let Some(pattern) = limit {
        cmd.args(["--limit", pattern]);
    }
    // A source Ansible cannot parse is an error, not an empty inventory
    // with a warning; and no password of ours goes to its plugins.
    cmd.env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
        .env_remove("ARCHY_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        let how = if e.kind() == std::io::ErrorKind::NotFound {
            "ansible-inventory is not on PATH: install ansible-core (`pipx install ansible-core`, \
             or `python3 -m venv V && V/bin/pip install ansible-core` and put V/bin on PATH, \
             or your distribution's ansible-core package), or save `ansible-inventory -i INV --list` \
             on a host that has it and pass the file with --inventory-json"
                .to_string()
        } else {
            format!("cannot run ansible-inventory: {e}")
        };
        usage(format!("inventory {inventory}: {how}"))
    })?;
    let mut stdout = Vec::new();
    let stderr_pipe = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.take(64 << 10).read_to_string(&mut text);
        text
    });
    child
        .stdout
        .take()
        .expect("piped")
        .take(OUTPUT_CAP)
        .read_to_end(&mut stdout)?;
    let status = child.wait()?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(usage(format!(
            "inventory {inventory}: ansible-inventory failed ({status}): {}",
            stderr.trim()
        )));
    }
    serde_json::from_slice(&stdout).map_err(|e| {
        usage(format!(
            "inventory {inventory}: ansible-inventory's output is not JSON ({e})"
        ))
    })
}

/// Reads the source into its JSON.
fn read(source: &Source) -> anyhow::Result<Value> {
    match source {
        Source::Inventory(inv) => run_ansible_inventory(inv, None),
        Source::Dump(file) => {
            let text = std::fs::read(file)
                .map_err(|e| usage(format!("cannot read the inventory dump {file}: {e}")))?;
            serde_json::from_slice(&text).map_err(|e| {
                usage(format!(
                    "inventory dump {file}: not the JSON of `ansible-inventory --list` ({e})"
                ))
            })
        }
    }
}

/// The hosts of `group` and of every group below it, in the order the
/// inventory lists them.
fn hosts_of(groups: &Map<String, Value>, group: &str, seen: &mut BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    if !seen.insert(group.to_string()) {
        return out;
    }
    let Some(g) = groups.get(group) else {
        return out;
    };
    for h in g["hosts"].as_array().into_iter().flatten() {
        if let Some(h) = h.as_str() {
            if !out.iter().any(|o| o == h) {
                out.push(h.to_string());
            }
        }
    }
    for child in g["children"].as_array().into_iter().flatten() {
        if let Some(child) = child.as_str() {
            for h in hosts_of(groups, child, seen) {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
    }
    out
}

fn members(groups: &Map<String, Value>, group: &str) -> Vec<String> {
    hosts_of(groups, group, &mut BTreeSet::new())
}

/// One host's variables, with the refusals applied as each is read.
struct Vars<'a> {
    host: &'a str,
    vars: &'a Map<String, Value>,
}

impl<'a> Vars<'a> {
    fn refuse(&self, var: &str, why: &str) -> anyhow::Error {
        usage(format!("inventory host {}: {var}: {why}", self.host))
    }

    /// A variable's value, refused when Ansible left it for later:
    /// vault-encrypted or Jinja that `ansible-inventory` does not render.
    fn get(&self, var: &str) -> anyhow::Result<Option<&'a Value>> {
        let Some(value) = self.vars.get(var) else {
            return Ok(None);
        };
        if value.get("__ansible_vault").is_some() {
            return Err(self.refuse(
                var,
                "is vault-encrypted, and `launcher fleet` never decrypts vault: give this value in plain text \
                 (it is not a secret: a password comes from archy_gate_password_env or archy_gate_password_file)",
            ));
        }
        if let Some(text) = value.as_str() {
            if ["{{", "{%", "{#"].iter().any(|j| text.contains(j)) {
                return Err(self.refuse(
                    var,
                    &format!(
                        "{text:?} is Jinja, which ansible-inventory does not render (ansible#32795): \
                         give the value itself in the inventory, or run the gate from a playbook (the archy.gate collection)"
                    ),
                ));
            }
        }
        Ok(Some(value))
    }

    fn string(&self, var: &str) -> anyhow::Result<Option<String>> {
        match self.get(var)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.refuse(var, &format!("{other} is not a string"))),
        }
    }

    /// The last of `vars` that is set, as Ansible's ssh connection plugin
    /// reads its option (its config manager keeps the last match).
    fn last_of(&self, vars: &[&'static str]) -> anyhow::Result<Option<(&'static str, String)>> {
        let mut found = None;
        for var in vars {
            if let Some(v) = self.string(var)? {
                found = Some((*var, v));
            }
        }
        Ok(found)
    }

    fn boolean(&self, var: &str) -> anyhow::Result<Option<bool>> {
        match self.get(var)? {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Ansible's own truthy words, as an INI inventory gives them.
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "off" | "0" => Ok(Some(false)),
                _ => Err(self.refuse(var, &format!("{s:?} is not true or false"))),
            },
            Some(other) => Err(self.refuse(var, &format!("{other} is not true or false"))),
        }
    }

    fn number(&self, var: &str) -> anyhow::Result<Option<u32>> {
        match self.string(var)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| self.refuse(var, &format!("{s:?} is not a whole number"))),
        }
    }
}

/// The words a shell would make of `text` (Ansible splits
/// `ansible_ssh_common_args` with Python's shlex, a POSIX shell's rules).
fn shell_words(v: &Vars, var: &str, text: &str) -> anyhow::Result<Vec<String>> {
    shlex::split(text).ok_or_else(|| {
        v.refuse(
            var,
            &format!("{text:?} does not split as a shell would (an unclosed quote?)"),
        )
    })
}

/// The variables that would hand `launcher fleet` a password or a
/// privilege change: never read, always refused.
fn refused_var(name: &str, value: &Value) -> Option<&'static str> {
    match name {
        "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => Some(
            "a login password: the fleet logs in with keys only (BatchMode); give the host a key \
             (ansible_ssh_private_key_file) and remove the password for these hosts",
        ),
        "ansible_become" if value == &Value::Bool(false) => None,
        n if n.starts_with("ansible_become") => Some(
            "the gate runs as the ssh user, with no become: connect as root (ansible_user: root), \
             and leave become out of the variables of the fleet's hosts",
        ),
        _ => None,
    }
}

/// The roster's nodes from the inventory at `source`.
pub(super) fn load(source: &Source, defaults: &Defaults) -> anyhow::Result<Loaded> {
    let json = read(source)?;
    from_json(source, &json, defaults)
}

/// The mapping itself, from `ansible-inventory --list`'s JSON.
pub(super) fn from_json(
    source: &Source,
    json: &Value,
    defaults: &Defaults,
) -> anyhow::Result<Loaded> {
    let shown = source.describe();
    let empty = Map::new();
    let groups = json.as_object().ok_or_else(|| {
        usage(format!(
            "inventory {shown}: not the JSON of `ansible-inventory --list` (an object of groups)"
        ))
    })?;
    let hostvars = groups
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let (hosts, which) = if groups.contains_key(FLEET_GROUP) {
        (
            members(groups, FLEET_GROUP),
            format!("the hosts of group {FLEET_GROUP}"),
        )
    } else {
        (
            members(groups, "all"),
            format!("every host: it has no group {FLEET_GROUP}"),
        )
    };
    if hosts.is_empty() {
        return Err(usage(format!("inventory {shown}: no hosts in {which}")));
    }
    // Relative password files are relative to the inventory, as a roster's
    // are to the roster.
    let base = match source {
        Source::Inventory(p) if p.is_dir() => p.clone(),
        _ => source
            .path()
            .parent()
            .map(Utf8Path::to_owned)
            .unwrap_or_default(),
    };
    let role_members: Vec<(&str, Role, Vec<String>)> = ROLE_GROUPS
        .iter()
        .map(|(g, r)| (*g, *r, members(groups, g)))
        .collect();
    let mut nodes = Vec::new();
    let mut origins = Origins {
        source: shown,
        hosts: which,
        ..Origins::default()
    };
    for host in &hosts {
        // A name becomes a dir of the fleet dir: our rule, said by name.
        super::roster::check_node_name(host).map_err(|why| {
            usage(format!(
                "inventory host {host:?}: a node name must {why}; give the host such a name in the inventory \
                 (its address goes in ansible_host)"
            ))
        })?;
        let vars = hostvars
            .get(host)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let v = Vars { host, vars };
        for (name, value) in vars {
            if let Some(why) = refused_var(name, value) {
                return Err(v.refuse(name, why));
            }
        }
        let mut from: Vec<(&'static str, String)> = Vec::new();
        if let Some(conn) = v.string("ansible_connection")? {
            if !matches!(conn.as_str(), "ssh" | "ansible.builtin.ssh" | "smart") {
                return Err(v.refuse(
                    "ansible_connection",
                    &format!(
                        "{conn:?}: the fleet reaches nodes over OpenSSH only; leave this host out of group {FLEET_GROUP} \
                         (or set ansible_connection: ssh)"
                    ),
                ));
            }
        }
        // Destination: [user@]address, as Ansible's ssh plugin reads them.
        let address = v.last_of(&["ansible_host", "ansible_ssh_host"])?;
        let user = v.last_of(&["ansible_user", "ansible_ssh_user"])?;
        let mut ssh = address
            .as_ref()
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| host.clone());
        if let Some((_, u)) = &user {
            ssh = format!("{u}@{ssh}");
        }
        from.push((
            "ssh",
            format!(
                "{ssh} ({}{})",
                match &address {
                    Some((var, _)) => format!("address from {var}"),
                    None => "address: the inventory name".into(),
                },
                match &user {
                    Some((var, _)) => format!(", user from {var}"),
                    None => ", user: your ssh config's".into(),
                }
            ),
        ));
        let mut ssh_options = Vec::new();
        let mut shown_options = Vec::new();
        if let Some((var, port)) = v.last_of(&["ansible_port", "ansible_ssh_port"])? {
            ssh_options.extend(["-p".to_string(), port.clone()]);
            shown_options.push(format!("-p {port} ({var})"));
        }
        if let Some((var, key)) =
            v.last_of(&["ansible_private_key_file", "ansible_ssh_private_key_file"])?
        {
            ssh_options.extend(["-i".to_string(), key.clone()]);
            shown_options.push(format!("-i {key} ({var})"));
        }
        for var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
            if let Some(text) = v.string(var)? {
                let words = shell_words(&v, var, &text)?;
                super::ssh_command::check_roster_options(&words)
                    .map_err(|why| v.refuse(var, &why))?;
                if !words.is_empty() {
                    shown_options.push(format!("{} ({var})", words.join(" ")));
                }
                ssh_options.extend(words);
            }
        }
        if !defaults.ssh_options.is_empty() {
            shown_options.push(format!(
                "{} (roster [defaults], first)",
                defaults.ssh_options.join(" ")
            ));
        }
        if !shown_options.is_empty() {
            from.push(("ssh options", shown_options.join("; ")));
        }
        // Role: the variable, else the one archy_* group the host is in.
        let role = match v.string("archy_gate_role")? {
            Some(word) => {
                let role = ROLE_GROUPS
                    .iter()
                    .map(|(_, r)| *r)
                    .find(|r| r.word() == word)
                    .ok_or_else(|| {
                        v.refuse(
                            "archy_gate_role",
                            &format!("{word:?}: give primary, fleet, tester or dev"),
                        )
                    })?;
                from.push(("role", format!("{word} (archy_gate_role)")));
                role
            }
            None => {
                let held: Vec<&(&str, Role, Vec<String>)> = role_members
                    .iter()
                    .filter(|(_, _, m)| m.contains(host))
                    .collect();
                match held[..] {
                    [] => {
                        from.push(("role", "fleet (default: in no archy_* role group)".into()));
                        Role::Fleet
                    }
                    [(group, role, _)] => {
                        from.push(("role", format!("{} (group {group})", role.word())));
                        *role
                    }
                    _ => {
                        let names: Vec<&str> = held.iter().map(|(g, _, _)| *g).collect();
                        return Err(usage(format!(
                            "inventory host {host}: it is in groups {}, which give different roles: \
                             keep it in one, or set archy_gate_role",
                            names.join(" and ")
                        )));
                    }
                }
            }
        };
        let gate = v.boolean("archy_gate_target")?;
        if gate == Some(false) {
            from.push(("gate", "no (archy_gate_target)".into()));
        }
        let password_env = v.string("archy_gate_password_env")?;
        let password_file = v.string("archy_gate_password_file")?.map(|f| {
            if f.starts_with('/') || f.starts_with("~/") {
                f
            } else {
                // Absolute: the roster resolves relative paths against its own dir.
                std::path::absolute(base.join(&f))
                    .map(|p| p.display().to_string())
                    .unwrap_or(f)
            }
        });
        match (&password_env, &password_file) {
            (Some(var), _) => from.push(("password", format!("${var} (archy_gate_password_env)"))),
            (None, Some(f)) => from.push(("password", format!("{f} (archy_gate_password_file)"))),
            (None, None) if gate != Some(false) => {
                let vaulted = if vars.contains_key("archy_gate_password") {
                    " (archy_gate_password is the playbook's vaulted password, for the archy.gate collection: \
                     `launcher fleet` never decrypts vault)"
                } else {
                    ""
                };
                return Err(usage(format!(
                    "inventory host {host}: a gate target needs archy_gate_password_env (a variable of \
                     the operator's environment) or archy_gate_password_file{vaulted}"
                )));
            }
            (None, None) => {}
        }
        let iterations = v.number("archy_gate_iterations")?;
        from.push((
            "iterations",
            match (iterations, defaults.iterations) {
                (Some(n), _) => format!("{n} (archy_gate_iterations)"),
                (None, Some(n)) => format!("{n} (roster [defaults])"),
                (None, None) => "1 (default)".into(),
            },
        ));
        let allow_destructive = v.boolean("archy_gate_allow_destructive")?;
        if let Some(yes) = allow_destructive {
            from.push((
                "destructive",
                format!("{yes} (archy_gate_allow_destructive)"),
            ));
        }
        let rpc_host = v.string("archy_gate_rpc_host")?;
        if let Some(h) = &rpc_host {
            from.push(("rpc host", format!("{h} (archy_gate_rpc_host)")));
        }
        let peer_host = v.string("archy_gate_peer_host")?;
        if let Some(h) = &peer_host {
            from.push(("peer host", format!("{h} (archy_gate_peer_host)")));
        }
        let remote_path = v.string("archy_gate_remote_path")?;
        if let Some(p) = &remote_path {
            from.push(("remote path", format!("{p} (archy_gate_remote_path)")));
        }
        origins.nodes.push((host.clone(), from));
        nodes.push(RawNode {
            name: host.clone(),
            ssh,
            role,
            gate: gate.unwrap_or(true),
            iterations,
            password_env,
            password_file,
            ssh_options,
            allow_destructive,
            host: rpc_host,
            peer_host,
            remote_path,
        });
    }
    Ok(Loaded { nodes, origins })
}

/// `--limit PATTERN` as Ansible means it (`ansible-inventory --limit`): the
/// names of the roster's nodes it picks. A pattern that picks none of them
/// is refused, as the roster's own `--limit` refuses one.
pub fn limit(
    source: &Source,
    patterns: &[String],
    roster_names: &[String],
) -> anyhow::Result<(String, Vec<String>)> {
    let Source::Inventory(inv) = source else {
        unreachable!("a dump keeps the roster's --limit");
    };
    let pattern = patterns.join(",");
    let json = run_ansible_inventory(inv, Some(&pattern))?;
    let groups = json.as_object().cloned().unwrap_or_default();
    let picked: BTreeSet<String> = members(&groups, "all").into_iter().collect();
    let names: Vec<String> = roster_names
        .iter()
        .filter(|n| picked.contains(*n))
        .cloned()
        .collect();
    if names.is_empty() {
        return Err(usage(format!(
            "--limit {pattern:?} (Ansible's pattern, through ansible-inventory -i {inv} --limit) picks no node of the fleet ({})",
            roster_names.join(", ")
        )));
    }
    Ok((pattern, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_json(text: &str) -> anyhow::Result<Loaded> {
        let json: Value = serde_json::from_str(text).unwrap();
        from_json(
            &Source::Dump("inv.json".into()),
            &json,
            &Defaults::default(),
        )
    }

    const BASE: &str = r#"{
      "_meta": {"hostvars": {
        "n1": {"ansible_host": "10.0.0.1", "ansible_user": "root", "ansible_port": 2222,
               "archy_gate_password_env": "PW1",
               "ansible_ssh_common_args": "-o 'ProxyCommand=tailscale nc %h %p'"},
        "n2": {"ansible_ssh_host": "10.0.0.2", "ansible_host": "ignored",
               "archy_gate_password_file": "pw/n2", "archy_gate_role": "tester"}
      }},
      "all": {"children": ["ungrouped", "archy_primary", "archy_fleet"]},
      "archy_primary": {"hosts": ["n1"]},
      "archy_fleet": {"hosts": ["n2"]}
    }"#;

    #[test]
    fn hostvars_map_to_nodes_as_ansibles_ssh_plugin_reads_them() {
        let l = load_json(BASE).unwrap();
        let n1 = &l.nodes[0];
        assert_eq!(n1.ssh, "root@10.0.0.1");
        assert_eq!(n1.role, Role::Primary);
        assert_eq!(
            n1.ssh_options,
            ["-p", "2222", "-o", "ProxyCommand=tailscale nc %h %p"]
        );
        let n2 = &l.nodes[1];
        // The last of the plugin's names wins: ansible_ssh_host.
        assert_eq!(n2.ssh, "10.0.0.2");
        assert_eq!(n2.role, Role::Tester);
        assert!(n2.password_file.as_deref().unwrap().ends_with("pw/n2"));
    }

    #[test]
    fn refusals_are_named() {
        let cases = [
            (r#""ansible_host": "{{ lookup('env','X') }}""#, "ansible_host: \"{{ lookup('env','X') }}\" is Jinja"),
            (r#""ansible_user": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n61"}"#, "ansible_user: is vault-encrypted"),
            (r#""ansible_connection": "docker""#, "ansible_connection: \"docker\": the fleet reaches nodes over OpenSSH only"),
            (r#""ansible_password": "x""#, "ansible_password: a login password"),
            (r#""ansible_become": true"#, "ansible_become: the gate runs as the ssh user"),
            (r#""ansible_become_password": "x""#, "ansible_become_password"),
            (r#""ansible_ssh_extra_args": "-o ControlPath=/tmp/x""#, "ansible_ssh_extra_args: ssh_options -o ControlPath=/tmp/x: the fleet sets controlpath itself"),
            (r#""ansible_ssh_extra_args": "-o 'ProxyCommand=nc""#, "does not split as a shell would"),
            (r#""archy_gate_role": "boss""#, "give primary, fleet, tester or dev"),
        ];
        for (var, says) in cases {
            let text = BASE.replace(r#""ansible_port": 2222,"#, &format!("{var},"));
            let err = format!("{:#}", load_json(&text).err().expect(var));
            assert!(err.contains("inventory host n1"), "{var}: {err}");
            assert!(err.contains(says), "{var}: {err}");
        }
        let bad_name = BASE.replace("\"n1\"", "\"web[1]\"");
        let err = format!("{:#}", load_json(&bad_name).err().unwrap());
        assert!(
            err.contains("inventory host \"web[1]\": a node name must"),
            "{err}"
        );
    }

    #[test]
    fn the_archy_gate_group_when_there_is_one() {
        let text = BASE.replace(
            r#""archy_fleet": {"hosts": ["n2"]}"#,
            r#""archy_fleet": {"hosts": ["n2"]}, "archy_gate": {"children": ["archy_primary"]}"#,
        );
        let l = load_json(&text).unwrap();
        assert_eq!(l.nodes.len(), 1);
        assert_eq!(l.nodes[0].name, "n1");
    }
}
