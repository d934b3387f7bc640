//! `launcher preflight [--json]`: the node's preconditions, checked.

use camino::Utf8PathBuf;

use crate::cli::{CheckArgs, NodeArgs, PreflightArgs};
use crate::exit::ExitStatus;
use crate::preflight::{self, Context};
use crate::secret;
use crate::secret::Secret;

pub fn preflight(args: PreflightArgs) -> anyhow::Result<ExitStatus> {
    // A refused host or scheme is the operator's to fix, before any check.
    crate::rpc::endpoint(
        &args.node.scheme,
        &args.node.host,
        args.node.allow_cleartext,
    )?;
    let password = secret::obtain_optional(
        args.password.password_file.as_deref(),
        args.password.password_stdin,
    )?;
    let report = preflight::run_checks(&context(&args.node, &args.checks, password, None));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("preflight: {}", report.counts());
        print!("{}", report.table());
    }
    let failed = report.failed();
    if failed.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let ids: Vec<&str> = failed.iter().map(|c| c.id.as_str()).collect();
    eprintln!("preflight failed: {}", ids.join(", "));
    Ok(ExitStatus::Preflight)
}

/// What the checks need, from the flags `preflight` and `run` share: one
/// place, so both judge a node the same way.
pub fn context(
    node: &NodeArgs,
    checks: &CheckArgs,
    password: Option<Secret>,
    workdir: Option<Utf8PathBuf>,
) -> Context {
    Context {
        host: node.host.clone(),
        scheme: node.scheme.clone(),
        allow_cleartext: node.allow_cleartext,
        ca: node.ca.clone(),
        password,
        workdir,
        bitcoin_cli: checks.bitcoin_cli.clone(),
        max_load_per_core: checks.max_load_per_core,
        command_timeout: std::time::Duration::from_secs(checks.command_timeout),
    }
}
