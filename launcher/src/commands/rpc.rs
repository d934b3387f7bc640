//! `launcher rpc METHOD [PARAMS]`: one JSON-RPC call to the node, for gate
//! suites on nodes without curl. Prints the result as compact JSON.

use std::time::Duration;

use serde_json::Value;

use crate::cli::RpcArgs;
use crate::exit::{fail, ExitStatus};
use crate::rpc::{RpcClient, RpcError};

pub fn rpc(args: RpcArgs) -> anyhow::Result<()> {
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
        crate::secret::obtain_optional(None, true)?.map(|s| s.expose().to_string())
    } else {
        std::env::var("ARCHY_PASSWORD").ok()
    };
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
    let redact = |text: String| match password.as_deref() {
        Some(p) if !p.is_empty() => text.replace(p, "[redacted]"),
        _ => text,
    };
    match client.call(&args.method, params) {
        Ok(result) => {
            println!("{result}");
            Ok(())
        }
        Err(err @ RpcError::Rpc { .. }) => Err(fail(
            ExitStatus::GateFailed,
            redact(format!("rpc {}: {err}", args.method)),
        )),
        Err(err) => Err(fail(
            ExitStatus::Environment,
            redact(format!("rpc {} at {}: {err}", args.method, client.url())),
        )),
    }
}
