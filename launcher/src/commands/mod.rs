//! One module per subcommand: each turns its arguments into a plan, carries
//! it out, and prints what it did. Shared formatting lives here.

mod extract;
mod fleet;
mod inspect;
mod pack;
mod preflight;
mod rpc;
mod run;
mod sign;
mod status;
mod verify;

use crate::bundle::{Bundle, Checked, PinSource};
use crate::cli::{BundleArg, Command};
use crate::digest::to_hex;

pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Pack(args) => pack::pack(args),
        Command::Sign(args) => sign::sign(args),
        Command::Keygen(args) => sign::keygen(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Verify(args) => verify::verify(args),
        Command::Extract(args) => extract::extract(args),
        Command::Run(args) => run::run(*args),
        Command::Preflight(args) => preflight::preflight(args),
        Command::Status(args) => status::status(args),
        Command::Logs(args) => status::logs(args),
        Command::Wait(args) => status::wait(args),
        Command::Fleet(args) => fleet::fleet(args),
        Command::Supervise(args) => run::supervise(args),
        Command::Rpc(args) => rpc::rpc(args),
    }
}

pub fn open(arg: &BundleArg) -> anyhow::Result<Bundle> {
    match &arg.bundle {
        Some(path) => Bundle::open(path),
        None => Bundle::open_self(),
    }
}

/// Sizes for people: 12.3 MiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The two lines every verifying command prints: which digests were checked.
pub fn digest_lines(bundle: &Bundle, checked: &Checked) -> Vec<String> {
    let mut lines = vec![format!(
        "payload  ok   sha256 {} matches the trailer: the payload is intact",
        to_hex(&bundle.trailer.payload_sha256)
    )];
    lines.push(match &checked.pin {
        Some(pin) => format!(
            "pin      ok   sha256 {} matches {}: this is the artifact that was built",
            to_hex(&checked.pinned_sha256),
            match &pin.source {
                PinSource::Flag => "--sha256".to_string(),
                PinSource::File(path) => path.to_string(),
            }
        ),
        None => format!(
            "pin      --   not checked: no --sha256, and no {}.sha256 or SHA256SUMS beside it; intact, but its origin is unproven",
            bundle.path.file_name().unwrap_or("archy-gate")
        ),
    });
    lines
}
