//! `launcher verify [BUNDLE] [--sha256 HEX]`: digests, pin and contents.

use crate::cli::VerifyArgs;
use crate::commands::{digest_lines, human_size, open};
use crate::unpack;

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let pin = bundle.find_pin(args.sha256.as_deref())?;
    let (checked, contents) = unpack::check_and_unpack(&bundle, pin, None)?;
    println!("{}", bundle.path);
    for line in digest_lines(&bundle, &checked) {
        println!("  {line}");
    }
    println!(
        "  contents ok   {} entries, {} files ({}) match the manifest",
        contents.manifest.files.len(),
        contents.files,
        human_size(contents.bytes)
    );
    Ok(())
}
