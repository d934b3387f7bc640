//! `launcher verify [BUNDLE] [--sha256 HEX] [--trust PUBKEY]`: signature,
//! digests, pin and contents.

use crate::cli::VerifyArgs;
use crate::commands::{digest_lines, open};
use crate::trusted_keys;
use crate::unpack;

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let pin = bundle.find_pin(args.pin.sha256.as_deref())?;
    let trust = trusted_keys::find_trust(args.trust.trust.as_deref())?;
    // The signature first: a bundle from elsewhere is refused as such.
    let signature = trusted_keys::check(&bundle, trust.as_ref())?;
    let (checked, contents) = unpack::check_and_unpack(&bundle, pin, None)?;
    println!("{}", bundle.path);
    for line in digest_lines(&bundle, &checked) {
        println!("  {line}");
    }
    println!("  {}", signature.line());
    println!(
        "  contents ok   {} entries, {} files ({}) match the manifest",
        contents.manifest.files.len(),
        contents.files,
        crate::human::size(contents.bytes)
    );
    Ok(())
}
