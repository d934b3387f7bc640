//! `launcher rpc METHOD [PARAMS]`: one JSON-RPC call to the node, for gate
//! suites on nodes without curl. Prints the result as compact JSON.

use std::time::Duration;

use serde_json::Value;

use crate::cli::RpcArgs;
use crate::exit::{fail, ExitStatus};
use crate::rpc::{RpcClient, RpcError};
use crate::secret::{Redactor, Secret, PASSWORD_ENV};

pub fn rpc(args: RpcArgs) -> anyhow::Result<ExitStatus> {
    let params: Value = match &args.params {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            fail(
                ExitStatus::Usage,
                format!("PARAMS is not JSON ({e}): give e.g. '{{\"id\": \"lnd\"}}'"),
            )
        })?,
        None => Value::Null,
    };
    // A peer's RPC gets nothing of ours: no password, no session cookie.
    let password = if args.anonymous {
        None
    } else if args.password_stdin {
        crate::secret::obtain_optional(None, true)?
    } else {
        Secret::from_env(PASSWORD_ENV)
    };
    let redactor = Redactor::new(password.as_ref());
    let mut client = RpcClient::new(
        &args.scheme,
        &args.host,
        args.ca.as_deref(),
        Duration::from_secs(args.timeout),
        args.allow_cleartext,
    )?
    .with_password(password.clone());
    let session = if args.anonymous {
        None
    } else {
        args.session.clone().or_else(|| {
            std::env::var("ARCHY_GATE_RUN_DIR")
                .ok()
                .map(|dir| camino::Utf8PathBuf::from(dir).join(".rpc-session"))
        })
    };
    if let Some(path) = session {
        client = client.with_session_file(path);
    }
    if args.verbose {
        eprintln!("rpc: {} {} ({})", args.method, client.url(), client.trust);
    }
    match client.call(&args.method, params) {
        Ok(result) => {
            println!("{result}");
            Ok(ExitStatus::Success)
        }
        // The node answered, and the answer is no: a verdict, not a failure
        // to call.
        Err(err @ RpcError::Rpc { .. }) => {
            eprintln!("{}", redactor.apply(&format!("rpc {}: {err}", args.method)));
            Ok(ExitStatus::Failed)
        }
        Err(err) => Err(fail(
            ExitStatus::Environment,
            redactor.apply(&format!("rpc {} at {}: {err}", args.method, client.url())),
        )),
    }
}
