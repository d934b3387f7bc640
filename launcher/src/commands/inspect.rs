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
