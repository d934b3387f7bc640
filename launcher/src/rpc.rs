//! The node's JSON-RPC backend (`{scheme}://{host}/rpc/v1`), as the gate's
//! suite (`launcher rpc`) and preflight talk to it: log in with the
//! password, keep the session cookie, retry once when the session expired.
//!
//! TLS: with a CA file (the node's own CA) the server is verified against it.
//! Without one, a loopback host is spoken to without verification, since
//! nodes serve a self-signed certificate and loopback never leaves the
//! machine; any other host is verified against the public roots.

use std::fs;
use std::time::Duration;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};

use crate::trust::{Create, PrivateDir};

/// Where the node keeps its CA certificate, when it has one.
pub const NODE_CA_CANDIDATES: &[&str] = &[
    "/etc/archy/ca.crt",
    "/var/lib/archy/ca.crt",
    "/etc/ssl/certs/archy-ca.pem",
];

/// The JSON-RPC error code the backend uses for a missing or bad session.
const UNAUTHORIZED: i64 = 34;

#[derive(Debug)]
pub enum RpcError {
    /// No answer: refused, timed out, TLS failed.
    Unreachable(String),
    /// The backend answered with a JSON-RPC error.
    Rpc { code: i64, message: String },
    /// The answer was not JSON-RPC.
    Protocol(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Unreachable(why) => write!(f, "unreachable: {why}"),
            RpcError::Rpc { code, message } => write!(f, "error {code}: {message}"),
            RpcError::Protocol(why) => write!(f, "not a JSON-RPC answer: {why}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// How the server's certificate is checked, in words for reports.
#[derive(Debug, Clone)]
pub enum Trust {
    NodeCa(Utf8PathBuf),
    LoopbackUnverified,
    PublicRoots,
}

impl std::fmt::Display for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::NodeCa(path) => write!(f, "verified against the node's CA {path}"),
            Trust::LoopbackUnverified => {
                f.write_str("loopback, certificate not verified (no node CA found)")
            }
            Trust::PublicRoots => f.write_str("verified against the public roots"),
        }
    }
}

pub struct RpcClient {
    agent: ureq::Agent,
    url: String,
    password: Option<String>,
    cookie: Option<String>,
    session_file: Option<Utf8PathBuf>,
    pub trust: Trust,
    next_id: u64,
}

/// Is `host` (possibly with a port) this machine?
pub fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RpcClient {
    /// `ca`: a CA file to trust; `None` looks for the node's own.
    pub fn new(
        scheme: &str,
        host: &str,
        ca: Option<&Utf8Path>,
        timeout: Duration,
    ) -> anyhow::Result<RpcClient> {
        let ca = match ca {
            Some(path) => Some(path.to_owned()),
            None => NODE_CA_CANDIDATES
                .iter()
                .map(Utf8Path::new)
                .find(|p| p.is_file())
                .map(Utf8Path::to_owned),
        };
        let (tls, trust) = match (&ca, is_loopback(host)) {
            (Some(path), _) => {
                let pem = fs::read(path).with_context(|| format!("cannot read the CA {path}"))?;
                let cert = ureq::tls::Certificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{path} is not a PEM certificate: {e}"))?;
                (
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                        .build(),
                    Trust::NodeCa(path.clone()),
                )
            }
            (None, true) => (
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
                Trust::LoopbackUnverified,
            ),
            (None, false) => (ureq::tls::TlsConfig::default(), Trust::PublicRoots),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Ok(RpcClient {
            agent,
            url: format!("{scheme}://{host}/rpc/v1"),
            password: None,
            cookie: None,
            session_file: None,
            trust,
            next_id: 1,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn with_password(mut self, password: Option<String>) -> RpcClient {
        self.password = password;
        self
    }

    /// Keeps the session cookie in `path` across processes (the suite calls
    /// `launcher rpc` once per request).
    /// Only a file in a dir the caller owns counts (trust.rs): a cookie
    /// another user planted is never sent.
    pub fn with_session_file(mut self, path: Utf8PathBuf) -> RpcClient {
        self.cookie = session_dir(&path)
            .and_then(|(dir, name)| dir.open_file(name).ok())
            .and_then(|mut f| {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut f, &mut text).ok()?;
                Some(text)
            })
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        self.session_file = Some(path);
        self
    }

    /// Calls `method`; when the backend refuses it for want of a session and
    /// a password is known, logs in and calls once more.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        if method == "auth.login" {
            return self.login().map(|()| Value::Null);
        }
        // Log in only when asked to: `health` needs no session, and a
        // wrong password must not hide whether the node answers at all.
        match self.request(method, &params) {
            Err(RpcError::Rpc { code, .. }) if code == UNAUTHORIZED && self.password.is_some() => {
                self.login()?;
                self.request(method, &params)
            }
            other => other,
        }
    }

    pub fn login(&mut self) -> Result<(), RpcError> {
        let password = self.password.clone().ok_or_else(|| RpcError::Rpc {
            code: UNAUTHORIZED,
            message: "no password to log in with: set ARCHY_PASSWORD".into(),
        })?;
        self.cookie = None;
        self.request("auth.login", &json!({ "password": password }))?;
        if let (Some(path), Some(cookie)) = (&self.session_file, &self.cookie) {
            let _ = write_private(path, cookie);
        }
        Ok(())
    }

    fn request(&mut self, method: &str, params: &Value) -> Result<Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut request = self.agent.post(&self.url);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let mut response = request
            .send_json(&body)
            .map_err(|e| RpcError::Unreachable(e.to_string()))?;
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|pair| pair.trim().to_string())
            .collect();
        if !cookies.is_empty() {
            self.cookie = Some(cookies.join("; "));
        }
        let status = response.status().as_u16();
        let answer: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| RpcError::Protocol(format!("HTTP {status}: {e}")))?;
        if let Some(error) = answer.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_string(),
            });
        }
        if status == 401 {
            return Err(RpcError::Rpc {
                code: UNAUTHORIZED,
                message: "unauthorized".into(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| RpcError::Protocol(format!("HTTP {status}: no result in {answer}")))
    }
}

/// The session file's dir, when it is the caller's own, and its name.
fn session_dir(path: &Utf8Path) -> Option<(PrivateDir, &str)> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_str().is_empty() => p,
        _ => Utf8Path::new("."),
    };
    Some((PrivateDir::open(parent, Create::No).ok()?, name))
}

fn write_private(path: &Utf8Path, text: &str) -> std::io::Result<()> {
    let (dir, name) = session_dir(path)
        .ok_or_else(|| std::io::Error::other(format!("{path} is not in a dir of yours alone")))?;
    dir.write_atomic(name, text.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts_with_and_without_ports() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8443",
            "localhost",
            "localhost:1",
            "[::1]:443",
            "::1",
            "127.8.9.1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["192.168.1.228", "node.example", "10.0.0.1:443"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
