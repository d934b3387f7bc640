//! The ssh command lines the fleet runs, laid out so that its connection
//! guards cannot be overridden, and the operator's configuration is added
//! to, never replaced.
//!
//! Facts from OpenSSH (ssh.c, readconf.c) this layout rests on:
//! - For `-o` options and config files, the first value ssh sees for an
//!   option is the one it keeps. So our guards come first on every command
//!   line, and a roster's `-o ControlPath=…` after them would be ignored;
//!   we refuse it instead, and the flags that act later and override
//!   (`-S`, `-M`, `-O`, `-F`, …).
//! - A session over a master (`ControlMaster=no`) that the master refuses
//!   (sshd's MaxSessions) falls back to a new TCP connection of its own.
//!   Sessions therefore run with `ProxyCommand=false` first (the fallback
//!   fails, and we ask the master again) and `-F none`: no config file, so
//!   no ProxyCommand, ProxyJump, SendEnv or RemoteCommand of the
//!   operator's can apply to them; the master, which alone connects, gets
//!   the operator's whole configuration.
//! - `-F FILE` replaces both ~/.ssh/config and /etc/ssh/ssh_config. A
//!   roster's `ssh_config` is instead included first in a wrapper that
//!   then includes the two default files, in ssh's own order: the roster's
//!   file adds to the operator's, and wins where both set an option.
//!   Include restores the including file's Host/Match state afterwards.
//! - Every ssh process (and the ProxyCommand a master starts) inherits our
//!   environment, and `SendEnv` in any config may forward it: the
//!   variables that hold passwords are removed from each one's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use camino::Utf8Path;

/// What every ssh of one fleet run shares.
pub struct Setup {
    /// The dir of control sockets, master logs and the config wrapper.
    pub control_dir: PathBuf,
    /// `-F` for masters: the wrapper, when the roster names an ssh_config.
    pub config: Option<PathBuf>,
    /// Variables removed from every ssh's environment (password sources).
    pub scrub: Vec<String>,
}

/// The options a roster may not give: the fleet's own multiplexing and
/// command (ssh flags, then `-o` keywords, lowercase).
const REFUSED_FLAGS: &[(&str, &str)] = &[
    ("-S", "the fleet keeps one control socket per node itself"),
    ("-M", "the fleet starts one ControlMaster per node itself"),
    ("-O", "the fleet sends its own control commands"),
    ("-F", "name the file with ssh_config under [defaults]: it is added to your own config, not put in its place"),
    ("-N", "the fleet runs commands on the node"),
    ("-f", "the fleet keeps ssh in the foreground to follow it"),
    ("-G", "the fleet connects; `launcher fleet plan` prints the effective options"),
    ("-W", "the fleet runs commands on the node"),
    ("-s", "the fleet runs commands, not subsystems"),
    ("-t", "the fleet's sessions have no terminal"),
];
const REFUSED_KEYWORDS: &[&str] = &[
    "controlmaster",
    "controlpath",
    "controlpersist",
    "remotecommand",
    "sessiontype",
    "forkafterauthentication",
    "requesttty",
];
/// ssh's flags that take an argument (its getopt string).
const FLAGS_WITH_ARGUMENT: &str = "bcDeEFiIJlLmOopPQRSwWB";

/// Why a roster's `ssh_options` would break the fleet's guards, if they
/// would: one connection per node, one session at a time, our commands.
pub fn check_roster_options(options: &[String]) -> Result<(), String> {
    let mut i = 0;
    while i < options.len() {
        let word = &options[i];
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(format!(
                "ssh_options {word:?}: not an option (each item is one ssh argument, e.g. [\"-o\", \"ConnectTimeout=10\"])"
            ));
        };
        // Flags may be bundled (-4C); one that takes an argument ends the
        // bundle, its argument the rest of the word or the next item.
        for (at, flag) in flags.char_indices() {
            let shown = format!("-{flag}");
            if let Some((_, why)) = REFUSED_FLAGS.iter().find(|(f, _)| *f == shown) {
                return Err(format!("ssh_options {shown}: {why}"));
            }
            if FLAGS_WITH_ARGUMENT.contains(flag) {
                let rest = &flags[at + flag.len_utf8()..];
                let argument = if rest.is_empty() {
                    i += 1;
                    options
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("ssh_options {shown}: its argument is missing"))?
                } else {
                    rest.to_string()
                };
                if flag == 'o' {
                    let keyword = argument
                        .split(|c: char| c == '=' || c.is_whitespace())
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if REFUSED_KEYWORDS.contains(&keyword.as_str()) {
                        return Err(format!(
                            "ssh_options -o {argument}: the fleet sets {keyword} itself (one connection per node, its own commands); remove it"
                        ));
                    }
                }
                break;
            }
        }
        i += 1;
    }
    Ok(())
}

impl Setup {
    /// Writes the config wrapper into `control_dir` when `roster_config`
    /// is given.
    pub fn new(
        control_dir: &Path,
        roster_config: Option<&Utf8Path>,
        scrub: Vec<String>,
    ) -> std::io::Result<Setup> {
        let config = match roster_config {
            None => None,
            Some(file) => {
                let file = std::path::absolute(file)?;
                let mut text = String::from(
                    "# Written by launcher fleet for this run: the roster's ssh_config first,\n\
                     # then the files ssh reads when no -F is given, in its order.\n",
                );
                let mut files = vec![file];
                if let Some(home) = home_dir() {
                    files.push(home.join(".ssh/config"));
                }
                files.push(PathBuf::from("/etc/ssh/ssh_config"));
                for f in files {
                    text.push_str(&format!("Include \"{}\"\n", f.display()));
                }
                let path = control_dir.join("ssh_config");
                std::fs::write(&path, text)?;
                Some(path)
            }
        };
        Ok(Setup {
            control_dir: control_dir.to_path_buf(),
            config,
            scrub,
        })
    }

    /// `ssh` with the password variables removed from its environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        for var in &self.scrub {
            cmd.env_remove(var);
        }
        cmd
    }

    /// The master's arguments, without `--` and the destination: our
    /// guards first, then the roster's options, then defaults the roster
    /// may change.
    pub fn master_args(&self, control: &Path, options: &[String]) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["-F".to_string(), config.display().to_string()]);
        }
        args.extend(guards(control));
        args.extend(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"].map(String::from));
        args.extend(options.iter().cloned());
        args.extend(
            [
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-N",
            ]
            .map(String::from),
        );
        args
    }

    /// The arguments of every other ssh (sessions, control commands): no
    /// config file at all, our guards, and never a connection of its own.
    pub fn client_args(&self, control: &Path) -> Vec<String> {
        let mut args = vec!["-F".to_string(), "none".to_string()];
        args.extend(guards(control));
        args.extend(["-o", "ControlMaster=no", "-o", "ProxyCommand=false"].map(String::from));
        args
    }

    /// The options ssh would use for `dest`'s master, as `ssh -G` prints
    /// them (no connection is made): the ones an operator checks.
    pub fn effective(
        &self,
        dest: &str,
        options: &[String],
    ) -> Result<Vec<(String, String)>, String> {
        let control = self.control_dir.join("NODE.sock");
        let out = self
            .command()
            .arg("-G")
            .args(self.master_args(&control, options))
            .args(["--", dest])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ssh -G: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ssh -G {dest}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        const SHOWN: &[&str] = &[
            "user",
            "hostname",
            "port",
            "proxycommand",
            "proxyjump",
            "identityfile",
            "controlmaster",
            "controlpersist",
            "batchmode",
            "connecttimeout",
            "serveraliveinterval",
            "sendenv",
            "setenv",
        ];
        let text = String::from_utf8_lossy(&out.stdout);
        let mut shown = Vec::new();
        for key in SHOWN {
            let values: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once(' ').filter(|(k, _)| k == key).map(|(_, v)| v))
                .collect();
            if !values.is_empty() {
                shown.push((key.to_string(), values.join(", ")));
            }
        }
        Ok(shown)
    }
}

/// Options every command line of ours starts with.
fn guards(control: &Path) -> Vec<String> {
    vec![
        "-o".into(),
        format!("ControlPath={}", control.display()),
        "-o".into(),
        "BatchMode=yes".into(),
    ]
}

/// The caller's home as ssh finds it (the passwd entry, not $HOME).
fn home_dir() -> Option<PathBuf> {
    let uid = crate::private_fs::my_uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2].parse::<u32>().ok() == Some(uid))
            .then(|| PathBuf::from(fields[5]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(options: &[&str]) -> Result<(), String> {
        check_roster_options(&options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_that_would_break_the_guards_are_refused_by_name() {
        assert!(check(&["-o", "ConnectTimeout=10", "-i", "key", "-J", "jump", "-4C"]).is_ok());
        assert!(check(&["-oProxyCommand=tailscale nc %h %p", "-p", "2222"]).is_ok());
        for (options, says) in [
            (&["-o", "ControlPath=/tmp/x"][..], "controlpath"),
            (&["-oControlMaster=auto"][..], "controlmaster"),
            (&["-o", "ControlPersist 60"][..], "controlpersist"),
            (&["-S", "/tmp/sock"][..], "-S"),
            (&["-CM"][..], "-M"),
            (&["-F", "cfg"][..], "-F"),
            (&["ConnectTimeout=10"][..], "not an option"),
            (&["-o"][..], "missing"),
        ] {
            let err = check(options).unwrap_err();
            assert!(err.contains(says), "{options:?}: {err}");
        }
        // An argument that looks like a flag is an argument.
        assert!(check(&["-l", "-S"]).is_ok());
    }
}
