//! `launcher inspect [BUNDLE] [--json]`: the manifest in words.

use serde_json::json;

use crate::cli::InspectArgs;
use crate::commands::open;
use crate::digest::to_hex;
use crate::printable::printable as p;
use crate::trusted_keys::signature_of;
use crate::unpack;

pub fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let m = unpack::read_manifest_only(&bundle)?;
    let t = &bundle.trailer;
    // Shown, not checked: `verify --trust` checks it.
    let signature = match signature_of(&bundle) {
        None => json!(null),
        Some(Ok(sig)) => json!({
            "key_id": sig.key_id(),
            "trusted_comment": sig.trusted_comment,
        }),
        Some(Err(why)) => json!({ "unreadable": why }),
    };
    let evidence = evidence_beside(&bundle);
    if args.json {
        let doc = json!({
            "file": bundle.path,
            "size": bundle.len,
            "payload": {
                "offset": t.payload_offset,
                "length": t.payload_len,
                "sha256": to_hex(&t.payload_sha256),
            },
            "signature": signature,
            "evidence": evidence.iter().map(|(file, what)| json!({"file": file, "is": what})).collect::<Vec<_>>(),
            "manifest": m,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let files = m
        .files
        .iter()
        .filter(|e| matches!(e, crate::manifest::Entry::File { .. }))
        .count();
    // Every manifest string is the bundle's to choose: escaped before printing.
    println!(
        "{} {} (bundle format {})",
        p(&m.name),
        p(&m.version),
        m.format
    );
    println!(
        "  file     {} ({})",
        bundle.path,
        crate::human::size(bundle.len)
    );
    println!(
        "  payload  {} at offset {}, sha256 {}",
        crate::human::size(t.payload_len),
        t.payload_offset,
        to_hex(&t.payload_sha256)
    );
    match signature_of(&bundle) {
        None => println!("  signed   no"),
        Some(Ok(sig)) => println!(
            "  signed   by key {} (trusted comment: {})",
            sig.key_id(),
            p(&sig.trusted_comment)
        ),
        Some(Err(why)) => println!(
            "  signed   unreadable signature block ({})",
            p(&why.to_string())
        ),
    }
    for (file, what) in &evidence {
        println!("  beside   {} ({what})", p(file));
    }
    println!("  entry    {}", p(&m.entry));
    for suite in &m.cross {
        println!("  cross    {} ({})", p(&suite.name), p(&suite.entry));
        if let Some(scenario) = &suite.scenario {
            if !scenario.description.is_empty() {
                println!("           {}", p(&scenario.description));
            }
            for (i, step) in scenario.steps.iter().enumerate() {
                let on = if step.on.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", step.on.join(", "))
                };
                println!(
                    "           step {}: {}{on}: {}",
                    i + 1,
                    p(&step.name),
                    p(&step.describe())
                );
            }
        }
    }
    println!(
        "  files    {files} files in {} entries, {} unpacked",
        m.files.len(),
        crate::human::size(m.unpacked_bytes())
    );
    println!("  mtime    {} (SOURCE_DATE_EPOCH)", m.source_date_epoch);
    println!("tools");
    let width = |f: fn(&crate::manifest::Tool) -> usize| m.tools.iter().map(f).max().unwrap_or(0);
    let (wn, wv, wp) = (
        width(|t| p(&t.name).len()),
        width(|t| p(&t.version).len()),
        width(|t| p(&t.path).len()),
    );
    for tool in &m.tools {
        let line = format!(
            "  {:wn$}  {:wv$}  {:wp$}  {}",
            p(&tool.name),
            p(&tool.version),
            p(&tool.path),
            p(&tool.source)
        );
        println!("{}", line.trim_end());
    }
    println!("sources");
    let wk = m.sources.keys().map(|k| p(k).len()).max().unwrap_or(0);
    for (key, value) in &m.sources {
        println!("  {:wk$}  {}", p(key), p(value));
    }
    println!("(not verified: run `verify` to check digests and contents)");
    Ok(())
}

/// The evidence files beside the bundle, each with what it is: the SBOM,
/// the provenance (and whether its subject is this bundle's built bytes),
/// the signed provenance (and by which key). Said, not verified.
fn evidence_beside(bundle: &crate::bundle::Bundle) -> Vec<(String, String)> {
    use crate::intoto::Statement;
    let dir = bundle
        .path
        .parent()
        .filter(|d| !d.as_str().is_empty())
        .unwrap_or(camino::Utf8Path::new("."));
    let mut out = Vec::new();
    let read = |name: &str| std::fs::read(dir.join(name)).ok();
    if let Some(bytes) = read(crate::sbom::SBOM_FILE) {
        let what = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(doc) if doc["bomFormat"] == "CycloneDX" => format!(
                "CycloneDX {} SBOM, {} components",
                doc["specVersion"].as_str().unwrap_or("?"),
                doc["components"].as_array().map_or(0, Vec::len)
            ),
            _ => "not a CycloneDX SBOM".to_string(),
        };
        out.push((dir.join(crate::sbom::SBOM_FILE).to_string(), what));
    }
    let built = to_hex(&crate::digest::sha256(bundle.built()));
    if let Some(bytes) = read(crate::provenance::PROVENANCE_FILE) {
        let what = match serde_json::from_slice::<Statement<serde_json::Value>>(&bytes) {
            Ok(s)
                if s.subject
                    .iter()
                    .any(|d| d.digest.get("sha256") == Some(&built)) =>
            {
                "SLSA provenance of this bundle, unsigned".to_string()
            }
            Ok(_) => {
                "SLSA provenance of ANOTHER bundle: its subject is not this one's built sha256"
                    .to_string()
            }
            Err(_) => "not an in-toto statement".to_string(),
        };
        out.push((
            dir.join(crate::provenance::PROVENANCE_FILE).to_string(),
            what,
        ));
    }
    let signed = format!("{}{}", bundle.path, crate::provenance::SIGNED_SUFFIX);
    if let Ok(text) = std::fs::read_to_string(&signed) {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<crate::dsse::Envelope>(l).ok())
            .flat_map(|e| e.signatures.into_iter().map(|s| s.keyid))
            .collect();
        let what = if ids.is_empty() {
            "no DSSE envelope in it".to_string()
        } else {
            format!(
                "signed provenance, DSSE, key {} (not checked here)",
                p(&ids.join(", "))
            )
        };
        out.push((signed, what));
    }
    out
}
