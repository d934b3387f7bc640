//! Preflight: the node's preconditions for a meaningful gate, as checks
//! that each give pass, warn, fail or skip, one line of reason, and the
//! evidence behind it. A fail stops `run` unless `--force`. Each concern
//! lives in its own module; this one runs them and prints the table.

mod bitcoin;
mod containers;
mod nginx;
mod quadlet;

use std::time::Duration;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::host;
use crate::printable::printable;
use crate::rpc::RpcClient;
use crate::secret::{Redactor, Secret};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    /// A stable identifier, e.g. `bitcoin-synced`.
    pub id: String,
    pub verdict: Verdict,
    /// One line: why this verdict.
    pub reason: String,
    /// What was looked at: commands, files and lines, values.
    pub evidence: Vec<String>,
}

/// The checks of one preflight. It is written with its overall verdict
/// (`{"verdict": "fail", "checks": […]}`, what `preflight --json` prints
/// and run.json keeps); the verdict is read back from the checks.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Report", 2)?;
        out.serialize_field("verdict", self.verdict())?;
        out.serialize_field("checks", &self.checks)?;
        out.end()
    }
}

impl Report {
    /// "3 pass, 1 warn, 1 FAIL, 2 skip".
    pub fn counts(&self) -> String {
        let n = |v: Verdict| self.checks.iter().filter(|c| c.verdict == v).count();
        format!(
            "{} pass, {} warn, {} fail, {} skip",
            n(Verdict::Pass),
            n(Verdict::Warn),
            n(Verdict::Fail),
            n(Verdict::Skip)
        )
    }

    /// `fail` if any check failed, else `warn` if any warned, else `pass`.
    pub fn verdict(&self) -> &'static str {
        if !self.failed().is_empty() {
            "fail"
        } else if self.checks.iter().any(|c| c.verdict == Verdict::Warn) {
            "warn"
        } else {
            "pass"
        }
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .collect()
    }

    /// A table for people: verdict, check, reason; evidence indented below.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            // Reasons and evidence quote the node's files and tools.
            out.push_str(&format!(
                "  {:<4}  {:<width$}  {}\n",
                c.verdict,
                c.id,
                printable(&c.reason)
            ));
            for e in &c.evidence {
                out.push_str(&format!(
                    "  {:<4}  {:<width$}    {}\n",
                    "",
                    "",
                    printable(e)
                ));
            }
        }
        out
    }
}

impl Check {
    pub fn new(id: &str, verdict: Verdict, reason: String) -> Check {
        Check {
            id: id.to_string(),
            verdict,
            reason,
            evidence: Vec::new(),
        }
    }

    pub fn evidence(mut self, lines: impl IntoIterator<Item = String>) -> Check {
        self.evidence.extend(lines);
        self
    }
}

/// What the checks need to know.
pub struct Context {
    pub host: String,
    pub scheme: String,
    /// http to a host other than loopback, allowed explicitly.
    pub allow_cleartext: bool,
    pub ca: Option<Utf8PathBuf>,
    /// Without it, checks that need the backend's package list skip.
    pub password: Option<Secret>,
    pub workdir: Option<Utf8PathBuf>,
    /// The command that prints getblockchaininfo, when not found by itself.
    pub bitcoin_cli: Option<String>,
    /// Load per core above which the load check warns.
    pub max_load_per_core: f64,
    /// How long one node command (podman, systemctl, bitcoin-cli) may take.
    pub command_timeout: Duration,
}

/// Runs every check, in an order a person reads top to bottom.
pub fn run_checks(ctx: &Context) -> Report {
    let mut checks = Vec::new();
    let (health, state) = backend(ctx);
    checks.push(health);
    let timeout = ctx.command_timeout;
    let containers = containers::list(timeout);
    checks.push(bitcoin::check(
        ctx.bitcoin_cli.as_deref(),
        &containers,
        timeout,
    ));
    checks.push(quadlet::orphans(&containers));
    checks.push(quadlet::activating(timeout));
    checks.push(nginx::check());
    checks.push(containers::adopted(&containers, &state));
    checks.push(load(ctx.max_load_per_core));
    checks.push(match &ctx.workdir {
        Some(dir) => Check::new(
            "workdir",
            Verdict::Pass,
            format!("{dir} is writable and executes files"),
        ),
        None => Check::new("workdir", Verdict::Skip, "no work dir chosen yet".into()),
    });
    Report { checks }
}

/// The RPC's `health`, and the package list when a password allows it.
fn backend(ctx: &Context) -> (Check, Result<serde_json::Value, String>) {
    let id = "rpc-health";
    let client = RpcClient::new(
        &ctx.scheme,
        &ctx.host,
        ctx.ca.as_deref(),
        Duration::from_secs(15),
        ctx.allow_cleartext,
    );
    let mut client = match client {
        Ok(c) => c.with_password(ctx.password.clone()),
        Err(e) => {
            return (
                Check::new(id, Verdict::Fail, format!("{e:#}")),
                Err("no RPC client".into()),
            )
        }
    };
    let redactor = Redactor::new(ctx.password.as_ref());
    let trust = client.trust.to_string();
    let health = match client.call("health", serde_json::Value::Null) {
        Ok(answer) => Check::new(
            id,
            Verdict::Pass,
            format!("{} answers health ({trust})", client.url()),
        )
        .evidence([format!("health: {answer}")]),
        Err(e) => {
            let why = redactor.apply(&e.to_string());
            return (
                Check::new(
                    id,
                    Verdict::Fail,
                    format!("{} does not answer health: {why}", client.url()),
                ),
                Err("the RPC does not answer".into()),
            );
        }
    };
    let state = if ctx.password.is_none() {
        Err("no password to log in with".into())
    } else {
        client
            .call("server.get-state", serde_json::Value::Null)
            .map_err(|e| redactor.apply(&format!("server.get-state: {e}")))
    };
    (health, state)
}

fn load(max_per_core: f64) -> Check {
    let [one, five, fifteen] = host::load_average();
    let cpus = host::cpus();
    let per_core = one / cpus as f64;
    let evidence = [format!(
        "/proc/loadavg: {one} {five} {fifteen}; {cpus} cores"
    )];
    if per_core > max_per_core {
        Check::new(
            "load",
            Verdict::Warn,
            format!("load {per_core:.2} per core is above {max_per_core}: a loaded node makes timing tests flaky"),
        )
        .evidence(evidence)
    } else {
        Check::new(
            "load",
            Verdict::Pass,
            format!("load {per_core:.2} per core"),
        )
        .evidence(evidence)
    }
}
