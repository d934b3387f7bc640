//! `launcher rpc METHOD [PARAMS]`: one JSON-RPC call to the node, for gate
//! suites on nodes without curl. Prints the result as compact JSON.
//! `launcher rpc --print-cert`: the certificate this node's RPC serves, read
//! on loopback, for the fleet to pin it on the node's peers.

use std::time::Duration;

use serde_json::Value;

use crate::cli::RpcArgs;
use crate::exit::{fail, ExitStatus};
use crate::pinned_tls::{self, CertPin};
use crate::rpc::{RpcClient, RpcError};
use crate::secret::{Redactor, Secret, PASSWORD_ENV};

pub fn rpc(args: RpcArgs) -> anyhow::Result<ExitStatus> {
    if args.print_cert {
        return print_cert(&args);
    }
    let method = args.method.clone().unwrap_or_default();
    let pin = args
        .pin_sha256
        .as_deref()
        .map(|hex| {
            CertPin::parse(hex).map_err(|e| fail(ExitStatus::Usage, format!("--pin-sha256: {e}")))
        })
        .transpose()?;
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
    if let Some(pin) = pin {
        client = client.with_pin(pin)?;
    }
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
        eprintln!("rpc: {} {} ({})", method, client.url(), client.trust);
    }
    match client.call(&method, params) {
        Ok(result) => {
            println!("{result}");
            Ok(ExitStatus::Success)
        }
        // The node answered, and the answer is no: a verdict, not a failure
        // to call.
        Err(err @ RpcError::Rpc { .. }) => {
            eprintln!("{}", redactor.apply(&format!("rpc {}: {err}", method)));
            Ok(ExitStatus::Failed)
        }
        Err(err) => Err(fail(
            ExitStatus::Environment,
            redactor.apply(&format!("rpc {} at {}: {err}", method, client.url())),
        )),
    }
}

/// Prints the PEM of the certificate the server at `--host` presents, which
/// must be this machine: a certificate read over the network proves
/// nothing, so a peer's is read on the peer (by the fleet, over its SSH).
fn print_cert(args: &RpcArgs) -> anyhow::Result<ExitStatus> {
    let endpoint = crate::rpc::endpoint("https", &args.host, false)?;
    if !endpoint.loopback {
        return Err(fail(
            ExitStatus::Usage,
            format!(
                "--print-cert reads the certificate of a server on this machine only, and {} \
                 is not loopback: a certificate read over the network proves nothing; run it \
                 on that node, against its own loopback address",
                args.host
            ),
        ));
    }
    let der = pinned_tls::presented_certificate(&endpoint.url, Duration::from_secs(args.timeout))
        .map_err(|e| {
        fail(
            ExitStatus::Environment,
            format!("rpc --print-cert at {}: {e}", endpoint.url),
        )
    })?;
    if args.verbose {
        eprintln!(
            "rpc: {} presents the certificate of sha256 {}",
            endpoint.url,
            CertPin::of_der(&der)
        );
    }
    print!("{}", pinned_tls::pem_of_der(&der));
    Ok(ExitStatus::Success)
}
