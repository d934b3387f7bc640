//! A server trusted by its certificate alone: TLS that accepts exactly the
//! end-entity certificate whose DER hashes (sha256) to a pin, and a minimal
//! HTTP/1.1 POST over it.
//!
//! Why: an Archy node serves its RPC with a self-signed certificate, so a
//! peer at a non-loopback address can be verified neither against the
//! public roots nor against this node's CA. The fleet reads each peer's
//! certificate on the peer itself, over that peer's own SSH connection
//! (`fleet/peer_cert.rs`), and hands its sha256 to the suite in
//! ARCHY_PEERS; `launcher rpc --anonymous --pin-sha256` connects through
//! here. Nothing is trusted on first use over the network.
//!
//! The pin replaces the chain, the names and the dates (a pinned
//! certificate is the trust; whoever pinned it read it from the node), not
//! the handshake: the server's signatures are still verified with the
//! provider's algorithms against the pinned certificate's key, so a
//! machine in the middle holding only the (public) certificate fails.
//!
//! ureq 3, the launcher's HTTP client, has no hook for a verifier of our
//! own, hence rustls directly and the small HTTP client below: one POST,
//! `Connection: close`, a reply framed by Content-Length, chunks or the
//! close, read under a size cap and the caller's timeout.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::digest;

/// The most of a reply read, headers and body: a JSON-RPC answer is far
/// smaller; a server sending more is cut off, not held.
pub const REPLY_CAP: usize = 16 << 20;

/// The sha256 of a certificate's DER, as lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPin(String);

impl CertPin {
    /// 64 hex digits, either case.
    pub fn parse(text: &str) -> Result<CertPin, String> {
        digest::parse_hex(text)
            .map(|bytes| CertPin(digest::to_hex(&bytes)))
            .ok_or_else(|| format!("{text:?} is not a sha256 (64 hex digits)"))
    }

    pub fn of_der(der: &[u8]) -> CertPin {
        CertPin(digest::to_hex(&digest::sha256(der)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CertPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The one certificate a PEM text holds, as DER: exactly one, else why not.
pub fn der_of_pem(pem: &str) -> Result<Vec<u8>, String> {
    let mut certs = CertificateDer::pem_slice_iter(pem.as_bytes());
    let first = certs
        .next()
        .ok_or("no PEM certificate in it")?
        .map_err(|e| format!("not a PEM certificate: {e:?}"))?;
    if certs.next().is_some() {
        return Err("more than one certificate in it (give the server's own only)".into());
    }
    Ok(first.as_ref().to_vec())
}

/// A certificate's DER as PEM text, 64 columns, with its final newline.
pub fn pem_of_der(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[derive(Debug)]
pub enum PinnedTlsError {
    /// The server presented another certificate than the pinned one.
    Mismatch {
        host: String,
        presented: CertPin,
        pinned: CertPin,
    },
    /// No answer: not connected, the handshake failed (a bad signature
    /// among the reasons), I/O, a timeout, a reply past the cap or not HTTP.
    Failed(String),
}

impl std::fmt::Display for PinnedTlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinnedTlsError::Mismatch {
                host,
                presented,
                pinned,
            } => write!(
                f,
                "{host}'s certificate differs from the one pinned for it: it presents sha256 \
                 {presented}, the pin is sha256 {pinned}; refused (another server at that \
                 address, or its certificate was replaced since the pin was read)"
            ),
            PinnedTlsError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for PinnedTlsError {}

/// Accepts the end-entity certificate that hashes to the pin (any, with no
/// pin: for reading a loopback server's certificate), and verifies the
/// handshake's signatures against it with the provider's algorithms.
#[derive(Debug)]
struct PinVerifier {
    pin: Option<CertPin>,
    provider: Arc<CryptoProvider>,
    /// The end-entity certificate the server presented, pinned or not.
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.as_ref().to_vec());
        }
        match &self.pin {
            Some(pin) if CertPin::of_der(end_entity) != *pin => {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to `url`'s host and port (https) and completes the handshake
/// under `verifier`, before `deadline`.
fn connect(url: &url::Url, verifier: &Arc<PinVerifier>, deadline: Instant) -> Result<Tls, String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let name: ServerName<'static> = match url.host() {
        Some(url::Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        Some(url::Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
        _ => ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?,
    };
    let addrs: Vec<_> = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let mut last = format!("{host}: no address");
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        let left = remaining(deadline)?;
        tls.sock.set_read_timeout(Some(left)).ok();
        tls.sock.set_write_timeout(Some(left)).ok();
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
    }
    Ok(tls)
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out".to_string())
}

fn verifier(pin: Option<&CertPin>) -> Arc<PinVerifier> {
    Arc::new(PinVerifier {
        pin: pin.cloned(),
        provider: Arc::new(rustls::crypto::ring::default_provider()),
        seen: Mutex::new(None),
    })
}

/// `url`'s host and port, the port said even when it is https' own.
fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `url`'s authority as the Host header wants it.
fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// An HTTP reply, read whole under [`REPLY_CAP`].
#[derive(Debug)]
pub struct PinnedReply {
    pub status: u16,
    /// Every header, name lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// POSTs `body` (JSON) to `url` over TLS pinned to `pin`, and reads the
/// reply; all of it within `timeout`.
pub fn post(
    url: &url::Url,
    pin: &CertPin,
    body: &[u8],
    timeout: Duration,
) -> Result<PinnedReply, PinnedTlsError> {
    let deadline = Instant::now() + timeout;
    let verifier = verifier(Some(pin));
    let mut tls = connect(url, &verifier, deadline).map_err(|why| {
        let seen = verifier.seen.lock().ok().and_then(|s| s.clone());
        match seen.map(|der| CertPin::of_der(&der)) {
            Some(presented) if presented != *pin => PinnedTlsError::Mismatch {
                host: host_port(url),
                presented,
                pinned: pin.clone(),
            },
            _ => PinnedTlsError::Failed(why),
        }
    })?;
    let fail = |e: String| PinnedTlsError::Failed(e);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path(),
        authority(url),
        body.len()
    );
    let left = remaining(deadline).map_err(fail)?;
    tls.sock.set_write_timeout(Some(left)).ok();
    tls.write_all(head.as_bytes())
        .and_then(|()| tls.write_all(body))
        .and_then(|()| tls.flush())
        .map_err(|e| fail(format!("sending to {}: {e}", authority(url))))?;
    let (raw, closed_cleanly) = read_capped(&mut tls, deadline).map_err(fail)?;
    parse_reply(&raw, closed_cleanly).map_err(|e| fail(format!("{}: {e}", authority(url))))
}

/// The end-entity certificate the server at `url` presents, as DER, once
/// it has proved in the handshake that it holds its key. Trusts whatever
/// it is shown: only for a server on this machine (the caller checks).
pub fn presented_certificate(url: &url::Url, timeout: Duration) -> Result<Vec<u8>, String> {
    let verifier = verifier(None);
    let mut tls = connect(url, &verifier, Instant::now() + timeout)?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    let seen = verifier.seen.lock().ok().and_then(|s| s.clone());
    seen.ok_or_else(|| "the server presented no certificate".into())
}

/// Reads until the server closes, or the cap or the deadline. Whether the
/// close was TLS's own (close_notify) or only the socket's.
fn read_capped(tls: &mut Tls, deadline: Instant) -> Result<(Vec<u8>, bool), String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        tls.sock.set_read_timeout(Some(remaining(deadline)?)).ok();
        match tls.read(&mut buf) {
            Ok(0) => return Ok((raw, true)),
            Ok(n) => {
                if raw.len() + n > REPLY_CAP {
                    return Err(format!("the reply is larger than {REPLY_CAP} bytes"));
                }
                raw.extend_from_slice(&buf[..n]);
            }
            // Servers often close without close_notify; whether the reply
            // is whole is then its framing's to say.
            // (or reset it, when our request was not read to its end).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return Ok((raw, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the reply: {e}")),
        }
    }
}

/// An HTTP/1.x reply: status line, headers, then a body framed by
/// chunks, Content-Length, or (only after a clean TLS close) the close.
fn parse_reply(raw: &[u8], closed_cleanly: bool) -> Result<PinnedReply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP header in the reply")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "an HTTP header that is not text")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("Content-Length {length:?}"))?;
        if rest.len() < length {
            return Err(format!(
                "the reply was cut short: {} of {length} bytes",
                rest.len()
            ));
        }
        rest[..length].to_vec()
    } else if closed_cleanly {
        rest.to_vec()
    } else {
        return Err("a reply with no length, cut off without TLS's close".into());
    };
    Ok(PinnedReply {
        status,
        headers,
        body,
    })
}

/// A chunked body, whole (through its last, empty chunk), decoded.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked reply cut short")?;
        let line =
            std::str::from_utf8(&rest[..eol]).map_err(|_| "a chunk size that is not text")?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| format!("chunk size {size:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err("a chunked reply cut short".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    // Two self-signed P-256 certificates and their keys, made once with
    // `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
    // -nodes -days 36500 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1`.
    const A_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkTCCATagAwIBAgIUcSpzRYx/LENY8/td9h7oMHW33YIwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNjA4MDY0NloYDzIxMjYxMTEy
MDgwNjQ2WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARPn9SJzDHj87fQeZGQs+IzCBR98P4uBROSRgGUdrbaPWydl/jX5ZWz
eQ5wCteweKIQam7IGHuzb0ccaCZVLuq2o2QwYjAdBgNVHQ4EFgQUn55Gml4YBCJW
G97eQhswtm8e3icwHwYDVR0jBBgwFoAUn55Gml4YBCJWG97eQhswtm8e3icwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC
IQCm52StwPOHNWFBILEyj5iZBb/LRtr+zU2Swnx2b9/KVQIhANXjm+IMQtH2O34Z
CaiuTt3cd1aZvR5tn0+Ss54c3A/d
-----END CERTIFICATE-----
";
    const A_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgT9exQ5Y0VnmNQyr0
gBfghYFBO/7VhzSpxwcJA8ZiPFGhRANCAARPn9SJzDHj87fQeZGQs+IzCBR98P4u
BROSRgGUdrbaPWydl/jX5ZWzeQ5wCteweKIQam7IGHuzb0ccaCZVLuq2
-----END PRIVATE KEY-----
";
    const B_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBkTCCATagAwIBAgIUYb+FPcCH05x4e3xp1Co3ah+E120wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwNjA4MDY0NloYDzIxMjYxMTEy
MDgwNjQ2WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATvRc6YfYF7rOTH0wzTTsmg5gGTBloL/0xHb0T1VYxwimkj86wRxHhV
t10/kKfDHgSrLZOh40DAygs+0BnAGOPqo2QwYjAdBgNVHQ4EFgQUDuAyMNGBLLVK
4A9eSXepJB2fM18wHwYDVR0jBBgwFoAUDuAyMNGBLLVK4A9eSXepJB2fM18wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC
IQC0vKDl+jtPIyUBSkJsxNbp6kc8Nsu1ssWtQD+RFJKyVQIhANL8Xv0/NrY9NKrv
6UxkSKlxbFKh9mvh6NeUIzq7FfIu
-----END CERTIFICATE-----
";
    const B_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdgnGovh7p6JLByKP
rM/GzP9CU0+fD22T0YRJhUdZLy+hRANCAATvRc6YfYF7rOTH0wzTTsmg5gGTBloL
/0xHb0T1VYxwimkj86wRxHhVt10/kKfDHgSrLZOh40DAygs+0BnAGOPq
-----END PRIVATE KEY-----
";

    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A one-connection HTTPS server on loopback presenting `cert`, and
    /// signing its handshake with `key` (another certificate's key: a
    /// machine in the middle that holds only the public certificate).
    fn serve_once(cert: &str, key: &str) -> u16 {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let der = CertificateDer::from(der_of_pem(cert).unwrap());
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let signing = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(vec![der], signing);
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The request, through its body ("{}").
            while !seen.ends_with(b"\r\n\r\n{}") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Transfer-Encoding: chunked\r\n\r\n\
                         b\r\n{\"result\": \r\n10\r\n{\"status\":\"ok\"}}\r\n0\r\n\r\n";
            let _ = tls.write_all(reply.as_bytes());
            let _ = tls.flush();
            // Closed without close_notify, as many servers do.
        });
        port
    }

    fn url(port: u16) -> url::Url {
        url::Url::parse(&format!("https://127.0.0.1:{port}/rpc/v1")).unwrap()
    }

    fn pin_of(pem: &str) -> CertPin {
        CertPin::of_der(&der_of_pem(pem).unwrap())
    }

    const SECS: Duration = Duration::from_secs(10);

    #[test]
    fn the_pinned_certificate_is_accepted() {
        let port = serve_once(A_CERT, A_KEY);
        let reply = post(&url(port), &pin_of(A_CERT), b"{}", SECS).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            String::from_utf8(reply.body).unwrap(),
            r#"{"result": {"status":"ok"}}"#
        );
    }

    #[test]
    fn another_certificate_is_refused_naming_both_fingerprints() {
        let port = serve_once(B_CERT, B_KEY);
        let err = post(&url(port), &pin_of(A_CERT), b"{}", SECS).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PinnedTlsError::Mismatch { .. }), "{text}");
        assert!(
            text.starts_with(&format!("127.0.0.1:{port}'s certificate differs")),
            "{text}"
        );
        assert!(text.contains(pin_of(A_CERT).as_str()), "{text}");
        assert!(text.contains(pin_of(B_CERT).as_str()), "{text}");
    }

    #[test]
    fn the_pinned_certificate_without_its_key_fails_the_handshake() {
        // A's public certificate, B's key: the pin matches, the signature not.
        let port = serve_once(A_CERT, B_KEY);
        let err = post(&url(port), &pin_of(A_CERT), b"{}", SECS).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, PinnedTlsError::Failed(_)), "{text}");
        assert!(text.contains("TLS with 127.0.0.1"), "{text}");
        assert!(text.to_lowercase().contains("signature"), "{text}");
    }

    #[test]
    fn a_loopback_server_shows_its_certificate() {
        let port = serve_once(B_CERT, B_KEY);
        let der = presented_certificate(&url(port), SECS).unwrap();
        assert_eq!(pem_of_der(&der), B_CERT);
    }

    #[test]
    fn pins_and_pem() {
        let pin = pin_of(A_CERT);
        assert_eq!(CertPin::parse(&pin.as_str().to_uppercase()).unwrap(), pin);
        assert!(CertPin::parse("abc").is_err());
        assert_eq!(pem_of_der(&der_of_pem(A_CERT).unwrap()), A_CERT);
        assert!(der_of_pem(&format!("{A_CERT}{B_CERT}")).is_err());
        assert!(der_of_pem("hello").is_err());
    }

    #[test]
    fn replies_are_framed_by_length_chunks_or_a_clean_close() {
        let ok = |raw: &str, clean| parse_reply(raw.as_bytes(), clean).map(|r| r.body);
        assert_eq!(
            ok("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", false).unwrap(),
            b"{}"
        );
        assert!(ok("HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\n{}", false).is_err());
        assert_eq!(ok("HTTP/1.0 200 OK\r\n\r\n{}", true).unwrap(), b"{}");
        assert!(ok("HTTP/1.0 200 OK\r\n\r\n{}", false).is_err());
        assert!(ok(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}",
            true
        )
        .is_err());
        assert!(ok("SSH-2.0-x\r\n\r\n", true).is_err());
    }
}
