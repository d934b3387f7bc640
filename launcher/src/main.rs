//! `launcher`: packs, signs, verifies, unpacks and runs the archy-gate bundle,
//! on one node or a fleet.
//! See docs/ARCHITECTURE.md for the map.

mod app_user;
mod atomic_file;
mod build_info;
mod bundle;
mod cli;
mod clock;
mod commands;
mod cross_suite;
mod cross_values;
mod digest;
mod dsse;
mod elf;
mod exit;
mod fleet;
mod gate;
mod host;
mod human;
mod intoto;
mod lock;
mod manifest;
mod minisig;
mod node_cmd;
mod outcome;
mod pack;
mod pinned_tls;
mod preflight;
mod printable;
mod private_fs;
mod provenance;
mod reports;
mod rerun;
mod result_policy;
mod rpc;
mod run_id;
mod runs;
mod sbom;
mod scenario;
mod secret;
mod sigblock;
mod signals;
mod tar_names;
mod test_result;
mod trailer;
mod trusted_keys;
mod unpack;
mod workdir;

fn main() {
    let cli = cli::Cli::parse_naming_reports(&fleet::report::files_in_words());
    let status = match commands::dispatch(cli.command) {
        // A verdict: the command printed it; only the status is left to give.
        Ok(verdict) => verdict,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            exit::status_of(&err)
        }
    };
    std::process::exit(status.code());
}
