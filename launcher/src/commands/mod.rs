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
mod verify_results;

use crate::bundle::{Bundle, Checked, PinSource};
use crate::cli::{BundleArg, Command};
use crate::digest::to_hex;
use crate::exit::ExitStatus;

/// Runs one command. `Ok` is the command's verdict (uv's way): the commands
/// that judge something (run, preflight, wait, fleet, rpc) return one; the
/// others either did what was asked or return an error.
pub fn dispatch(command: Command) -> anyhow::Result<ExitStatus> {
    let done = |()| ExitStatus::Success;
    match command {
        Command::Pack(args) => pack::pack(args).map(done),
        Command::Sign(args) => sign::sign(args).map(done),
        Command::Keygen(args) => sign::keygen(args).map(done),
        Command::Inspect(args) => inspect::inspect(args).map(done),
        Command::Verify(args) => verify::verify(args).map(done),
        Command::Extract(args) => extract::extract(args).map(done),
        Command::Run(args) => run::run(*args),
        Command::Preflight(args) => preflight::preflight(args),
        Command::Status(args) => status::status(args).map(done),
        Command::Logs(args) => status::logs(args).map(done),
        Command::Wait(args) => status::wait(args),
        Command::Fleet(args) => fleet::fleet(args),
        Command::Supervise(args) => run::supervise(args),
        Command::Rpc(args) => rpc::rpc(args),
        Command::VerifyResults(args) => verify_results::verify_results(args),
    }
}

pub fn open(arg: &BundleArg) -> anyhow::Result<Bundle> {
    match &arg.bundle {
        Some(path) => Bundle::open(path),
        None => Bundle::open_self(),
    }
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
