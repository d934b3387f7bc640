//! The command line: every subcommand, flag and help text. A contract
//! (docs/ARCHITECTURE.md): flags may be added, never change meaning.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "launcher",
    version,
    about = "Packs, verifies and unpacks the archy-gate bundle: the lifecycle gate that runs on an Archy node",
    long_about = None,
    after_help = "A bundle is one file: this launcher with the gate appended. On a node, the file\n\
                  is both: `./archy-gate verify`, `./archy-gate inspect`.\n\n\
                  Exit codes: 0 ok; 1 gate failed; 2 usage or configuration; 3 bundle integrity;\n\
                  4 preflight failed; 5 environment (work dir, lock, I/O); 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pack a stage tree into a single-file bundle, its manifest and SHA256SUMS.
    #[command(
        after_help = "Example:\n  launcher pack stage/ --launcher target/x86_64-unknown-linux-musl/release/launcher --out result/\n\n\
        STAGE holds bin/ (static tools), lib/ (bats-core and its libraries) and lifecycle/\n\
        (the suite; entry lifecycle/run-gate.sh). An optional STAGE/stage.json names the\n\
        bundle, its version, its entry, its tools and their sources; it is read, not packed.\n\
        Entries get SOURCE_DATE_EPOCH as mtime (default 315532800, 1980-01-01).\n\
        Refuses dynamically linked ELFs, files naming the Nix store, special files and\n\
        symlinks that leave the stage."
    )]
    Pack(PackArgs),
    /// Show what a bundle holds: tools and versions, entry, files, sizes, digests.
    #[command(
        after_help = "Examples:\n  ./archy-gate inspect\n  launcher inspect result/archy-gate --json"
    )]
    Inspect(InspectArgs),
    /// Check a bundle: its embedded payload digest, its contents, and its pin.
    #[command(
        after_help = "Examples:\n  ./archy-gate verify --sha256 $(awk '/archy-gate$/ {print $1}' SHA256SUMS)\n  launcher verify result/archy-gate\n\n\
        The embedded digest proves the payload is intact. The pin (the whole file's\n\
        sha256: --sha256, or FILE.sha256 or SHA256SUMS beside the file) proves it is\n\
        the artifact that was built. The report says which were checked."
    )]
    Verify(VerifyArgs),
    /// Unpack a bundle into a new directory, checking every file on the way.
    #[command(after_help = "Example:\n  ./archy-gate extract --to /var/tmp/gate\n\n\
        DIR must not exist or be empty. The bundle is unpacked into a staging directory\n\
        beside DIR and renamed into place only when every file matched its manifest.")]
    Extract(ExtractArgs),
}

#[derive(Debug, Args)]
pub struct BundleArg {
    /// The bundle file [default: the bundle appended to this executable]
    #[arg(value_name = "BUNDLE")]
    pub bundle: Option<Utf8PathBuf>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The tree that becomes the payload
    #[arg(value_name = "STAGE")]
    pub stage: Utf8PathBuf,
    /// The static launcher binary that heads the single file
    #[arg(long, value_name = "BIN")]
    pub launcher: Utf8PathBuf,
    /// Where to write archy-gate, manifest.json and SHA256SUMS
    #[arg(long, value_name = "DIR")]
    pub out: Utf8PathBuf,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub bundle: BundleArg,
    /// Print JSON for machines instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub bundle: BundleArg,
    /// The whole file's expected sha256 (from SHA256SUMS)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub bundle: BundleArg,
    /// The new directory to unpack into
    #[arg(long, value_name = "DIR")]
    pub to: Utf8PathBuf,
    /// The whole file's expected sha256 (from SHA256SUMS)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
}
