//! Stale nginx app proxies: every `location /app/<id>/` whose `proxy_pass`
//! goes to a local port must find that port listening (read from
//! /proc/net/tcp and tcp6, so no ss or netstat is needed).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Check, Verdict};

/// One `location /app/<id>/` block's proxy target.
#[derive(Debug, PartialEq, Eq)]
pub struct AppProxy {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub file: PathBuf,
    pub line: usize,
}

fn config_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/nginx/nginx.conf")];
    for dir in ["/etc/nginx/conf.d", "/etc/nginx/sites-enabled"] {
        if let Ok(items) = fs::read_dir(dir) {
            let mut found: Vec<PathBuf> = items.flatten().map(|e| e.path()).collect();
            found.sort();
            files.extend(found);
        }
    }
    files.into_iter().filter(|p| p.is_file()).collect()
}

/// The app proxies in one config file.
pub fn app_proxies(file: &Path, text: &str) -> Vec<AppProxy> {
    let mut found = Vec::new();
    let mut current: Option<(String, i32)> = None; // (id, brace depth inside the block)
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if current.is_none() {
            if let Some(rest) = line.strip_prefix("location") {
                let path = rest.trim().trim_start_matches(['=', '^', '~']).trim();
                if let Some(id) = path.strip_prefix("/app/") {
                    let id = id.split(['/', ' ', '{']).next().unwrap_or("").to_string();
                    if !id.is_empty() {
                        current = Some((id, 0));
                    }
                }
            }
        }
        if let Some((id, depth)) = &mut current {
            // Anywhere on the line: `location /app/x/ { proxy_pass …; }` is one line.
            if let Some(at) = line.find("proxy_pass ") {
                let target = line[at + "proxy_pass ".len()..]
                    .split(';')
                    .next()
                    .unwrap_or("");
                if let Some((host, port)) = parse_target(target.trim()) {
                    found.push(AppProxy {
                        id: id.clone(),
                        host,
                        port,
                        file: file.to_path_buf(),
                        line: n + 1,
                    });
                }
            }
            *depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if *depth <= 0 && line.contains('}') {
                current = None;
            }
        }
    }
    found
}

/// `http://127.0.0.1:8081/` → ("127.0.0.1", 8081).
fn parse_target(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    Some((host.trim_matches(['[', ']']).to_string(), port))
}

fn is_local(host: &str) -> bool {
    crate::rpc::is_loopback(host) || host == "0.0.0.0" || host == "::"
}

/// Ports in LISTEN state, from /proc/net/tcp and /proc/net/tcp6.
pub fn listening_ports() -> HashSet<u16> {
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 3 && fields[3] == "0A" {
                if let Some(port) = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    ports.insert(port);
                }
            }
        }
    }
    ports
}

pub fn check() -> Check {
    let id = "nginx-app-proxies";
    let files = config_files();
    if files.is_empty() {
        return Check::new(id, Verdict::Skip, "no nginx config under /etc/nginx".into());
    }
    let proxies: Vec<AppProxy> = files
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok().map(|t| app_proxies(f, &t)))
        .flatten()
        .collect();
    if proxies.is_empty() {
        return Check::new(
            id,
            Verdict::Skip,
            "no `location /app/<id>/` proxies in the nginx config".into(),
        );
    }
    let listening = listening_ports();
    let mut evidence = Vec::new();
    let mut stale = Vec::new();
    for p in &proxies {
        let place = format!("{}:{}", p.file.display(), p.line);
        if !is_local(&p.host) {
            evidence.push(format!(
                "/app/{}/ -> {}:{} ({place}): not local, not checked",
                p.id, p.host, p.port
            ));
        } else if listening.contains(&p.port) {
            evidence.push(format!(
                "/app/{}/ -> port {} listening ({place})",
                p.id, p.port
            ));
        } else {
            evidence.push(format!(
                "/app/{}/ -> port {} NOT listening ({place})",
                p.id, p.port
            ));
            stale.push(format!("/app/{}/ -> port {} ({place})", p.id, p.port));
        }
    }
    if stale.is_empty() {
        Check::new(
            id,
            Verdict::Pass,
            format!("all {} app proxies reach a listening port", proxies.len()),
        )
        .evidence(evidence)
    } else {
        Check::new(
            id,
            Verdict::Fail,
            format!(
                "stale proxy target(s), nothing listens: {}",
                stale.join("; ")
            ),
        )
        .evidence(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_locations_and_their_ports() {
        let conf = "server {\n  listen 443 ssl;\n  location /app/lnd/ {\n    proxy_set_header Host $host;\n    proxy_pass http://127.0.0.1:8081/;\n  }\n  location /app/mempool/ { proxy_pass http://localhost:4080; }\n  location /rpc/v1 { proxy_pass http://127.0.0.1:5959; }\n}\n";
        let found = app_proxies(Path::new("x.conf"), conf);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].id.as_str(), found[0].port, found[0].line),
            ("lnd", 8081, 5)
        );
        assert_eq!(
            (found[1].id.as_str(), found[1].port, found[1].host.as_str()),
            ("mempool", 4080, "localhost")
        );
    }
}
