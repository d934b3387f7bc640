//! `launcher preflight [--json]`: the node's preconditions, checked.

use crate::cli::PreflightArgs;
use crate::exit::{fail, ExitStatus};
use crate::preflight::{self, Context};
use crate::secret;

pub fn preflight(args: PreflightArgs) -> anyhow::Result<()> {
    // A refused host or scheme is the operator's to fix, before any check.
    crate::rpc::endpoint(&args.scheme, &args.host, args.allow_cleartext)?;
    let password = secret::obtain_optional(args.password_file.as_deref(), args.password_stdin)?;
    let report = preflight::run_checks(&Context {
        host: args.host,
        scheme: args.scheme,
        allow_cleartext: args.allow_cleartext,
        ca: args.ca,
        password,
        workdir: None,
        bitcoin_cli: args.bitcoin_cli,
        max_load_per_core: args.max_load_per_core,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        println!("preflight: {}", report.counts());
        print!("{}", report.table());
    }
    let failed = report.failed();
    if failed.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = failed.iter().map(|c| c.id.as_str()).collect();
    Err(fail(
        ExitStatus::Preflight,
        format!("preflight failed: {}", ids.join(", ")),
    ))
}
