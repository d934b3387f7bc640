//! The node's JSON-RPC backend (`{scheme}://{host}/rpc/v1`), as the gate's
//! suite (`launcher rpc`) and preflight talk to it: log in with the
//! password, keep the session cookie, retry once when the session expired.
//!
//! TLS: with a CA file (the node's own CA) the server is verified against it.
//! Without one, a loopback host is spoken to without verification, since
//! nodes serve a self-signed certificate and loopback never leaves the
//! machine; any other host is verified against the public roots. Whether a
//! host is loopback is decided on the URL as parsed (the `url` crate), from
//! the host that is dialled: `--host` must be `host[:port]`, nothing more.
//!
//! A pin (`--pin-sha256`, a cross suite's peer) replaces all of that: the
//! server must present exactly the certificate whose DER hashes to it, on
//! loopback too, and is refused otherwise, naming both fingerprints; its
//! handshake signatures are still verified (`pinned_tls.rs`, which also
//! carries the call: ureq cannot take a verifier of ours). The fleet reads
//! each peer's certificate on the peer itself, over its own SSH connection
//! (`rpc --print-cert`, loopback only), so no certificate is trusted
//! because the network showed it.
//!
//! Cleartext: `http` sends the password unencrypted, so it is refused for a
//! host other than loopback unless the operator allows it explicitly
//! (`--allow-cleartext`, `ARCHY_ALLOW_CLEARTEXT=1`).

use std::fs;
use std::time::Duration;

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};

use crate::pinned_tls::{self, CertPin};
use crate::private_fs::{Create, PrivateDir};
use crate::secret::Secret;

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
pub enum TlsTrust {
    NodeCa(Utf8PathBuf),
    LoopbackUnverified,
    PublicRoots,
    /// Exactly the certificate whose DER has this sha256.
    Pinned(CertPin),
    /// http: no TLS at all.
    Cleartext {
        loopback: bool,
    },
}

impl std::fmt::Display for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsTrust::NodeCa(path) => write!(f, "verified against the node's CA {path}"),
            TlsTrust::LoopbackUnverified => {
                f.write_str("loopback, certificate not verified (no node CA found)")
            }
            TlsTrust::PublicRoots => f.write_str("verified against the public roots"),
            TlsTrust::Pinned(pin) => write!(
                f,
                "pinned: only the certificate of sha256 {pin} (no CA, roots or names consulted)"
            ),
            TlsTrust::Cleartext { loopback: true } => {
                f.write_str("cleartext http on loopback: no TLS, nothing verified")
            }
            TlsTrust::Cleartext { loopback: false } => f.write_str(
                "cleartext http to another host (allowed by --allow-cleartext): no TLS, \
                 nothing verified, the password readable on the network",
            ),
        }
    }
}

pub struct RpcClient {
    agent: ureq::Agent,
    url: url::Url,
    password: Option<Secret>,
    cookie: Option<String>,
    session_file: Option<Utf8PathBuf>,
    pub trust: TlsTrust,
    /// With a pin, calls go through `pinned_tls` instead of ureq.
    pin: Option<CertPin>,
    timeout: Duration,
    next_id: u64,
}

/// Where the RPC is, as the client will dial it.
pub struct Endpoint {
    pub url: url::Url,
    /// The dialled host is this machine.
    pub loopback: bool,
}

/// Parses `{scheme}://{host}/rpc/v1` and checks the operator's rules: the
/// scheme is http or https, `host` is just `host[:port]` (user info, a path
/// or a query could make the client dial a host other than the one judged),
/// and cleartext goes to loopback only, unless `allow_cleartext`.
pub fn endpoint(scheme: &str, host: &str, allow_cleartext: bool) -> anyhow::Result<Endpoint> {
    use crate::exit::{fail, ExitStatus};
    if scheme != "https" && scheme != "http" {
        return Err(fail(
            ExitStatus::Usage,
            format!("--scheme {scheme:?}: use https (or http)"),
        ));
    }
    let not_a_host = || {
        fail(
            ExitStatus::Usage,
            format!("--host {host:?} is not host[:port] (e.g. 127.0.0.1 or node.lan:8443)"),
        )
    };
    // A bare IPv6 address (`::1`) is a host too; a URL needs it bracketed.
    let authority = match host.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => format!("[{ip}]"),
        Err(_) => host.to_string(),
    };
    let url =
        url::Url::parse(&format!("{scheme}://{authority}/rpc/v1")).map_err(|_| not_a_host())?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/rpc/v1"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(not_a_host());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => return Err(not_a_host()),
    };
    if scheme == "http" && !loopback && !allow_cleartext {
        return Err(fail(
            ExitStatus::Usage,
            format!(
                "refusing to send the password in cleartext (http) to {}: use https, or \
                 --allow-cleartext (ARCHY_ALLOW_CLEARTEXT=1) if the network is yours alone",
                url.host_str().unwrap_or(host)
            ),
        ));
    }
    Ok(Endpoint { url, loopback })
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
        allow_cleartext: bool,
    ) -> anyhow::Result<RpcClient> {
        let Endpoint { url, loopback } = endpoint(scheme, host, allow_cleartext)?;
        let ca = match ca {
            Some(path) => Some(path.to_owned()),
            None => NODE_CA_CANDIDATES
                .iter()
                .map(Utf8Path::new)
                .find(|p| p.is_file())
                .map(Utf8Path::to_owned),
        };
        let (tls, trust) = match (&ca, loopback) {
            _ if scheme == "http" => (
                ureq::tls::TlsConfig::default(),
                TlsTrust::Cleartext { loopback },
            ),
            (Some(path), _) => {
                let pem = fs::read(path).with_context(|| format!("cannot read the CA {path}"))?;
                let cert = ureq::tls::Certificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{path} is not a PEM certificate: {e}"))?;
                (
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                        .build(),
                    TlsTrust::NodeCa(path.clone()),
                )
            }
            (None, true) => (
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
                TlsTrust::LoopbackUnverified,
            ),
            (None, false) => (ureq::tls::TlsConfig::default(), TlsTrust::PublicRoots),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Ok(RpcClient {
            agent,
            url,
            password: None,
            cookie: None,
            session_file: None,
            trust,
            pin: None,
            timeout,
            next_id: 1,
        })
    }

    /// Trusts the server by its certificate alone: the one whose DER has
    /// sha256 `pin` (https only).
    pub fn with_pin(mut self, pin: CertPin) -> anyhow::Result<RpcClient> {
        if self.url.scheme() != "https" {
            return Err(crate::exit::fail(
                crate::exit::ExitStatus::Usage,
                "--pin-sha256 pins a TLS certificate: use --scheme https".to_string(),
            ));
        }
        self.trust = TlsTrust::Pinned(pin.clone());
        self.pin = Some(pin);
        Ok(self)
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    pub fn with_password(mut self, password: Option<Secret>) -> RpcClient {
        self.password = password;
        self
    }

    /// Keeps the session cookie in `path` across processes (the suite calls
    /// `launcher rpc` once per request).
    /// Only a file in a dir the caller owns counts (private_fs.rs): a cookie
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
        self.request("auth.login", &json!({ "password": password.expose() }))?;
        if let (Some(path), Some(cookie)) = (&self.session_file, &self.cookie) {
            let _ = write_private(path, cookie);
        }
        Ok(())
    }

    fn request(&mut self, method: &str, params: &Value) -> Result<Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let (status, set_cookies, answer) = match &self.pin {
            Some(pin) => self.send_pinned(pin, &body)?,
            None => self.send(&body)?,
        };
        let cookies: Vec<String> = set_cookies
            .iter()
            .filter_map(|v| v.split(';').next())
            .map(|pair| pair.trim().to_string())
            .collect();
        if !cookies.is_empty() {
            self.cookie = Some(cookies.join("; "));
        }
        let answer: Value = answer?;
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

type Sent = (u16, Vec<String>, Result<Value, RpcError>);

impl RpcClient {
    /// POSTs `body` through ureq: the status, the Set-Cookie values, the JSON.
    fn send(&self, body: &Value) -> Result<Sent, RpcError> {
        let mut request = self.agent.post(self.url.as_str());
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let mut response = request
            .send_json(body)
            .map_err(|e| RpcError::Unreachable(e.to_string()))?;
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .read_json()
            .map_err(|e| RpcError::Protocol(format!("HTTP {status}: {e}")));
        Ok((status, cookies, answer))
    }

    /// The same through `pinned_tls`, to the server holding the pinned
    /// certificate only (the cookie is not sent: pinned calls are a peer's,
    /// anonymous).
    fn send_pinned(&self, pin: &CertPin, body: &Value) -> Result<Sent, RpcError> {
        let reply = pinned_tls::post(&self.url, pin, body.to_string().as_bytes(), self.timeout)
            .map_err(|e| RpcError::Unreachable(e.to_string()))?;
        let cookies = reply
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect();
        let status = reply.status;
        let answer = serde_json::from_slice(&reply.body)
            .map_err(|e| RpcError::Protocol(format!("HTTP {status}: {e}")));
        Ok((status, cookies, answer))
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
    use super::{endpoint, is_loopback};

    #[test]
    fn the_loopback_decision_is_made_on_the_dialled_host() {
        for (host, loopback) in [
            ("127.0.0.1", true),
            ("127.0.0.1:8443", true),
            ("[::1]:443", true),
            ("::1", true),
            ("localhost", true),
            ("0x7f.1", true),
            ("192.168.1.228", false),
            ("node.example:8443", false),
        ] {
            let e = endpoint("https", host, false).unwrap();
            assert_eq!(e.loopback, loopback, "{host}");
        }
        for host in [
            "[::1]@evil.example",
            "127.0.0.1@evil.example",
            "127.0.0.1/x",
            "127.0.0.1?x",
            "127.0.0.1#x",
            "",
            "user:pw@127.0.0.1",
        ] {
            assert!(endpoint("https", host, false).is_err(), "{host}");
        }
        assert!(endpoint("http", "127.0.0.1", false).is_ok());
        assert!(endpoint("http", "192.168.1.228", false).is_err());
        assert!(endpoint("http", "192.168.1.228", true).is_ok());
        assert!(endpoint("ftp", "127.0.0.1", false).is_err());
    }

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
