//! `launcher sign BUNDLE --key KEY [--out FILE]` and `launcher keygen`:
//! signing after the build, in minisign's format.
//!
//! Two signatures by the same key: one in the signature block, over the
//! built file (what a node checks, and what SHA256SUMS pins), and one in
//! `OUT.minisig`, over the signed file as it is on disk (what `minisign -V`
//! checks on a host without our launcher). When pack wrote `provenance.json`
//! beside the bundle, it is signed too, into `OUT.intoto.jsonl` (a DSSE
//! envelope, one line), by the same key.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;

use crate::bundle::Bundle;
use crate::cli::{KeygenArgs, SignArgs};
use crate::digest::{sha256, to_hex};
use crate::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
use crate::exit::{fail, ExitStatus};
use crate::intoto::{Statement, PROVENANCE_TYPE};
use crate::minisig::SecretKey;
use crate::provenance;
use crate::sigblock;
use crate::trusted_keys::signature_of;

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let bundle = Bundle::open(&args.bundle)?;
    // Only an intact bundle is worth a signature.
    bundle.check_digests(None)?;
    let key = read_secret_key(&args.key)?;
    let out = args.out.clone().unwrap_or_else(|| args.bundle.clone());
    let name = out.file_name().unwrap_or("archy-gate");
    if let Some(Ok(old)) = signature_of(&bundle) {
        eprintln!(
            "{}: replacing its signature by key {}",
            args.bundle,
            old.key_id()
        );
    }
    let built = bundle.built();
    let built_hex = to_hex(&sha256(built));
    let comment = args
        .trusted_comment
        .clone()
        .unwrap_or_else(|| format!("file:{name}\tbuilt-sha256:{built_hex}"));
    if comment.contains(['\n', '\r']) {
        return Err(fail(
            ExitStatus::Usage,
            "--trusted-comment must be one line",
        ));
    }
    let provenance = provenance_beside(&args.bundle, &built_hex)?;
    let id = key.public.id();
    let inner = key.sign(
        built,
        &comment,
        &format!("archy-gate bundle signature, key {id}, over the built file"),
    );
    let mut signed = built.to_vec();
    signed.extend(sigblock::encode(&inner.to_text()));
    let detached = key.sign(
        &signed,
        &comment,
        &format!("signature from archy-gate key {id}"),
    );
    crate::atomic_file::write(&out, &signed, 0o755)?;
    let minisig = Utf8Path::new(&format!("{out}.minisig")).to_owned();
    crate::atomic_file::write(&minisig, detached.to_text().as_bytes(), 0o644)?;
    let signed_provenance = match provenance {
        Some(bytes) => {
            let envelope = Envelope::sign(INTOTO_PAYLOAD_TYPE, &bytes, &key);
            let path = Utf8Path::new(&format!("{out}{}", provenance::SIGNED_SUFFIX)).to_owned();
            crate::atomic_file::write(
                &path,
                format!("{}\n", envelope.to_line()).as_bytes(),
                0o644,
            )?;
            Some(path)
        }
        None => None,
    };
    println!("signed {out} with key {id}");
    println!("  in the file: over the built bytes (sha256 {built_hex}, as SHA256SUMS pins them)");
    println!("  beside it:   {minisig}, over the signed file: minisign -Vm {out} -p KEY.pub");
    if let Some(path) = signed_provenance {
        println!("  provenance:  {path}, the SLSA provenance beside the bundle in a DSSE envelope");
    }
    println!("  on a node:   {name} verify --trust KEY.pub (or a root-owned /etc/archy-gate/trusted.pub)");
    Ok(())
}

/// The bytes of `provenance.json` beside the bundle, when there is one,
/// after checking it is this build's: signing another bundle's provenance
/// with this one would vouch for what was not built here.
fn provenance_beside(bundle: &Utf8Path, built_hex: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let dir = bundle
        .parent()
        .filter(|d| !d.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    let path = dir.join(provenance::PROVENANCE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(fail(
                ExitStatus::Environment,
                format!("cannot read {path}: {e}"),
            ))
        }
    };
    let statement: Statement<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            ExitStatus::Integrity,
            format!("{path} is not an in-toto statement: {e}"),
        )
    })?;
    let ours = statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256").is_some_and(|d| d == built_hex));
    if statement.predicate_type != PROVENANCE_TYPE || !ours {
        return Err(fail(
            ExitStatus::Integrity,
            format!("{path} is not the SLSA provenance of {bundle} (its subject is not sha256 {built_hex}): move it away, or rebuild so that the two belong together"),
        ));
    }
    Ok(Some(bytes))
}

fn read_secret_key(path: &Utf8Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            ExitStatus::Usage,
            format!("cannot read the secret key {path}: {e}"),
        )
    })?;
    SecretKey::parse_file(&text).map_err(|why| {
        fail(
            ExitStatus::Usage,
            format!("{path} is not a usable signing key: {why}"),
        )
    })
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let (key, secret_text) =
        SecretKey::generate().map_err(|why| fail(ExitStatus::Environment, why))?;
    let create = |path: &Utf8Path, text: &str, mode: u32| -> anyhow::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                fail(
                    ExitStatus::Usage,
                    format!(
                        "cannot create {path} ({e}): keygen never replaces a key; name a new file"
                    ),
                )
            })?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    };
    create(&args.secret, &secret_text, 0o600)?;
    create(&args.public, &key.public.file_text(), 0o644)?;
    println!("key {}", key.public.id());
    println!(
        "  secret: {} (unencrypted, mode 0600: keep it off any Nix store and out of git)",
        args.secret
    );
    println!(
        "  public: {} (give it to every node: /etc/archy-gate/trusted.pub, or --trust)",
        args.public
    );
    Ok(())
}
