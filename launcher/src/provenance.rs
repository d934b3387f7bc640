//! SLSA Provenance v1 for the bundle (`provenance.json` beside it, when
//! `pack` is given `--build-info`): an in-toto Statement whose subject is
//! the built file's sha256 (the pin SHA256SUMS holds), whose build
//! definition names the builder, the command and every pinned input
//! (inputs.lock's, or flake.lock's nixpkgs revision and narHash), and whose
//! byproducts are the manifest and the SBOM by digest. Unsigned as written:
//! `launcher sign` wraps it in a DSSE envelope with the bundle's key
//! (`OUT.intoto.jsonl`). No time is written, so two builds of the same
//! inputs give the same bytes.

use serde_json::json;

use crate::build_info::BuildInfo;
use crate::intoto::{ResourceDescriptor, Statement, PROVENANCE_TYPE};
use crate::manifest::Manifest;

pub const PROVENANCE_FILE: &str = "provenance.json";
/// Beside a signed bundle: `OUT.intoto.jsonl`, the signed provenance (the
/// file name slsa-framework's generators use).
pub const SIGNED_SUFFIX: &str = ".intoto.jsonl";

/// What identifies how this build is run: SLSA's `buildType`.
pub const BUILD_TYPE: &str =
    "https://github.com/archipelago-labs/archy-gate/blob/main/docs/ARCHITECTURE.md#evidence-beside-a-bundle";

/// The byproducts, named and digested.
pub struct Byproducts<'a> {
    pub manifest_sha256: &'a str,
    pub sbom_sha256: &'a str,
    pub launcher_sha256: &'a str,
}

pub fn statement(
    manifest: &Manifest,
    bundle_sha256: &str,
    info: &BuildInfo,
    made: Byproducts,
) -> Statement<serde_json::Value> {
    let mut resolved = info.resolved_dependencies.clone();
    resolved.push(ResourceDescriptor::sha256("launcher", made.launcher_sha256));
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "builder": info.builder,
                "command": info.command,
                "name": manifest.name,
                "version": manifest.version,
                "entry": manifest.entry,
                "sourceDateEpoch": manifest.source_date_epoch,
            },
            "internalParameters": {"sources": manifest.sources},
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": {
                "id": format!("https://github.com/archipelago-labs/archy-gate/{}", info.builder),
                "version": {"launcher": env!("CARGO_PKG_VERSION")},
            },
            "byproducts": [
                ResourceDescriptor::sha256("manifest.json", made.manifest_sha256),
                ResourceDescriptor::sha256(crate::sbom::SBOM_FILE, made.sbom_sha256),
            ],
        },
    });
    Statement::new(
        vec![ResourceDescriptor::sha256("archy-gate", bundle_sha256)],
        PROVENANCE_TYPE,
        predicate,
    )
}

/// The statement as the file holds it (pretty, newline-terminated).
pub fn render(statement: &Statement<serde_json::Value>) -> String {
    let mut text = serde_json::to_string_pretty(statement).expect("json serialises");
    text.push('\n');
    text
}
