//! `cargo xtask`: the project's build tasks, in Rust rather than shell (the
//! alias is in `.cargo/config.toml`). Never shipped and never a dependency of
//! the launcher, which goes to every node: what a build needs stays here.

mod bundle;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
enum Task {
    Bundle(bundle::Args),
}

fn main() -> ExitCode {
    let result = match Task::parse() {
        Task::Bundle(args) => bundle::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask bundle: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
