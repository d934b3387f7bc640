//! readelf's opinion on static linking: a second judge, independent of
//! `launcher pack`'s own ELF check, of the binaries a bundle carries.

use std::path::Path;

use anyhow::{bail, Result};
use xshell::cmd;

use super::host::Host;

/// FILE is an ELF without PT_INTERP and without DT_NEEDED.
pub fn assert_static(host: &Host, file: &Path) -> Result<()> {
    host.need(&[("readelf", "binutils")])?;
    let sh = &host.sh;
    let headers = cmd!(sh, "readelf -lW {file}")
        .quiet()
        .ignore_status()
        .output()?;
    let said = |out: &std::process::Output| {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    };
    if !headers.status.success() {
        bail!(
            "{} is not an ELF file: {}",
            file.display(),
            said(&headers).trim()
        );
    }
    if said(&headers).contains("INTERP") {
        bail!("{} is dynamically linked (has PT_INTERP)", file.display());
    }
    let dynamic = cmd!(sh, "readelf -dW {file}")
        .quiet()
        .ignore_status()
        .output()?;
    if said(&dynamic).contains("(NEEDED)") {
        bail!("{} is dynamically linked (has DT_NEEDED)", file.display());
    }
    Ok(())
}
