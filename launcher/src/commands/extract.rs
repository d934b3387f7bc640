//! `launcher extract [BUNDLE] --to DIR`.

use std::fs;

use anyhow::Context;
use camino::Utf8Path;

use crate::cli::ExtractArgs;
use crate::commands::{digest_lines, open};
use crate::exit::{fail, ExitStatus};
use crate::unpack;

pub fn extract(args: ExtractArgs) -> anyhow::Result<()> {
    let bundle = open(&args.bundle)?;
    let target = &args.to;
    check_target(target)?;
    let pin = bundle.find_pin(args.pin.sha256.as_deref())?;
    let (checked, unpacked) = unpack::unpack_to(&bundle, pin, target)?;

    for line in digest_lines(&bundle, &checked) {
        println!("{line}");
    }
    println!(
        "extracted {} files ({}) into {target}",
        unpacked.files,
        crate::human::size(unpacked.bytes)
    );
    Ok(())
}

fn check_target(target: &Utf8Path) -> anyhow::Result<()> {
    match fs::read_dir(target) {
        Ok(mut items) => {
            if items.next().is_some() {
                return Err(fail(
                    ExitStatus::Usage,
                    format!("{target} exists and is not empty: extract into a new directory"),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(fail(
            ExitStatus::Usage,
            format!("{target} exists and is not a directory: extract into a new directory"),
        )),
        Err(e) => Err(e).with_context(|| format!("cannot read {target}")),
    }
}
