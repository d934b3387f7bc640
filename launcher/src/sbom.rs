//! The bundle's SBOM: CycloneDX 1.6 JSON (`sbom.cdx.json`, beside the
//! bundle when `pack` is given `--build-info`). Components: every tool the
//! manifest lists (its version as the tool reports it, the sha256 of the
//! staged file, and what the build said of it: licence, source URL and the
//! fetched artifact's sha256), the launcher that heads the file, and the
//! crates Cargo.lock resolves for it. The bundle itself is the metadata's
//! component, named by the whole file's sha256.
//!
//! Reproducible: no time but SOURCE_DATE_EPOCH, a serial number derived
//! from the bundle's digest, every list in a fixed order.

use serde_json::{json, Value};

use crate::build_info::{BuildInfo, Crate};
use crate::manifest::{Entry, Manifest};

pub const SBOM_FILE: &str = "sbom.cdx.json";

/// The SBOM as JSON text (pretty, newline-terminated).
pub fn render(
    manifest: &Manifest,
    bundle_sha256: &str,
    launcher_sha256: &str,
    info: &BuildInfo,
    crates: &[Crate],
) -> String {
    // The launcher that heads the file is the one packing it in both builds.
    let launcher_version = env!("CARGO_PKG_VERSION");
    let mut components = Vec::new();
    let mut tool_refs = Vec::new();
    for tool in &manifest.tools {
        let r = format!("tool:{}", tool.name);
        tool_refs.push(json!(r));
        let staged = manifest.files.iter().find_map(|e| match e {
            Entry::File { path, sha256, .. } if *path == tool.path => Some(sha256.clone()),
            _ => None,
        });
        let facts = info.components.get(&tool.name).cloned().unwrap_or_default();
        let mut c = json!({
            "type": "application",
            "bom-ref": r,
            "name": tool.name,
            "version": tool.version,
            "properties": [
                {"name": "archy-gate:path", "value": tool.path},
                {"name": "archy-gate:source", "value": tool.source},
            ],
        });
        if tool.path.starts_with("lib/") {
            c["type"] = json!("library");
        }
        if let Some(sha) = staged {
            c["hashes"] = json!([{"alg": "SHA-256", "content": sha}]);
        }
        if let Some(l) = &facts.license {
            c["licenses"] = json!([{"expression": l}]);
        }
        if let Some(p) = &facts.purl {
            c["purl"] = json!(p);
        }
        // The upstream project, and the artifact the build fetched (named by
        // its purl, so no registry host is written) with its pinned sha256.
        let mut references = Vec::new();
        if let Some(url) = &facts.url {
            references.push(json!({"type": "vcs", "url": url}));
        }
        if let (Some(purl), Some(sha)) = (&facts.purl, &facts.sha256) {
            references.push(json!({
                "type": "distribution",
                "url": purl,
                "hashes": [{"alg": "SHA-256", "content": sha}],
            }));
        }
        if !references.is_empty() {
            c["externalReferences"] = json!(references);
        }
        components.push(c);
    }
    let crate_ref = |c: &Crate| format!("crate:{}@{}", c.name, c.version);
    components.push(json!({
        "type": "application",
        "bom-ref": "launcher",
        "name": "launcher",
        "version": launcher_version,
        "description": "the archy-gate launcher, the executable that heads the bundle file",
        "hashes": [{"alg": "SHA-256", "content": launcher_sha256}],
    }));
    for c in crates {
        let mut entry = json!({
            "type": "library",
            "bom-ref": crate_ref(c),
            "name": c.name,
            "version": c.version,
        });
        if let Some(sum) = &c.checksum {
            entry["hashes"] = json!([{"alg": "SHA-256", "content": sum}]);
        }
        // A crate from a registry is named by its purl, as the tools' inputs
        // are (no registry host is written); Cargo.lock's own source line
        // says which registry.
        if let Some(source) = c
            .source
            .as_deref()
            .filter(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
        {
            let purl = format!("pkg:cargo/{}@{}", c.name, c.version);
            entry["purl"] = json!(purl);
            entry["properties"] = json!([{"name": "cargo:source", "value": source}]);
            if let Some(sum) = &c.checksum {
                entry["externalReferences"] = json!([{
                    "type": "distribution",
                    "url": purl,
                    "hashes": [{"alg": "SHA-256", "content": sum}],
                }]);
            }
        }
        if let Some(l) = info
            .crate_licenses
            .get(&format!("{} {}", c.name, c.version))
        {
            entry["licenses"] = json!([{"expression": l}]);
        }
        components.push(entry);
    }
    let mut launcher_deps: Vec<Value> = crates.iter().map(|c| json!(crate_ref(c))).collect();
    launcher_deps.dedup();
    tool_refs.push(json!("launcher"));
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(bundle_sha256),
        "version": 1,
        "metadata": {
            "timestamp": crate::clock::rfc3339(manifest.source_date_epoch),
            "tools": {"components": [{
                "type": "application",
                "name": "archy-gate launcher (pack)",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "application",
                "bom-ref": "bundle",
                "name": manifest.name,
                "version": manifest.version,
                "hashes": [{"alg": "SHA-256", "content": bundle_sha256}],
                "properties": [{"name": "archy-gate:builder", "value": info.builder}],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": "bundle", "dependsOn": tool_refs},
            {"ref": "launcher", "dependsOn": launcher_deps},
        ],
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("json serialises");
    text.push('\n');
    text
}

/// A UUID (version 5 layout) from the bundle's digest: one bundle, one
/// serial number, built twice or not.
fn serial_number(bundle_sha256: &str) -> String {
    let h = crate::digest::sha256(format!("archy-gate sbom {bundle_sha256}").as_bytes());
    let mut b: [u8; 16] = h[..16].try_into().unwrap();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::digest::to_hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
