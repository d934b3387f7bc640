//! `launcher fleet plan|run|status|report --roster FILE`.

use crate::cli::{FleetArgs, FleetCommand};
use crate::exit::{fail, ExitStatus};
use crate::fleet::{self, report, state::FleetState, state::Phase, Plan};

pub fn fleet(args: FleetArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        FleetCommand::Plan(a) => {
            let plan = Plan::new(&a.roster, &bundle(&a.bundle)?, a.out.as_deref(), a.jobs)?;
            print!("{}", plan.describe());
            Ok(ExitStatus::Success)
        }
        FleetCommand::Run(a) => {
            let plan = Plan::new(&a.roster, &bundle(&a.bundle)?, a.out.as_deref(), a.jobs)?;
            eprint!("{}", plan.describe());
            let state = fleet::run(&plan)?;
            print!("{}", report::markdown(&state));
            println!(
                "\nreports: {0}/report.html, {0}/report.md, {0}/report.json, {0}/junit.xml",
                plan.dir
            );
            verdict(&state)
        }
        FleetCommand::Status(a) => {
            let dir = fleet::find_dir(&a.roster, a.out.as_deref())?;
            let state = FleetState::load(&dir)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                println!("fleet dir {dir}");
                print!("{}", report::markdown(&state));
            }
            Ok(ExitStatus::Success)
        }
        FleetCommand::Report(a) => {
            let dir = fleet::find_dir(&a.roster, a.out.as_deref())?;
            let state = FleetState::load(&dir)?;
            report::write(&dir, &state)?;
            print!("{}", report::markdown(&state));
            println!(
                "\nreports: {0}/report.html, {0}/report.md, {0}/report.json, {0}/junit.xml",
                dir
            );
            verdict(&state)
        }
    }
}

fn bundle(arg: &Option<camino::Utf8PathBuf>) -> anyhow::Result<camino::Utf8PathBuf> {
    match arg {
        Some(path) => Ok(path.clone()),
        None => {
            let exe = std::fs::read_link("/proc/self/exe")?;
            camino::Utf8PathBuf::from_path_buf(exe)
                .map_err(|_| fail(ExitStatus::Usage, "name the bundle with --bundle"))
        }
    }
}

/// 0 when every gate node passed; 1 otherwise (the report says why).
/// Green only when every gate target passed; what did not is said on stderr.
fn verdict(state: &FleetState) -> anyhow::Result<ExitStatus> {
    let not_passed: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.gate && n.phase != Phase::Passed)
        .map(|n| format!("{} {}", n.name, n.phase.word()))
        .collect();
    if not_passed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        eprintln!("not every node passed: {}", not_passed.join(", "));
        Ok(ExitStatus::Failed)
    }
}
