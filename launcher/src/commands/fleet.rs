//! `launcher fleet plan|run|status|report --roster FILE`.

use crate::cli::{FleetArgs, FleetCommand, FleetDirArgs};
use crate::exit::{fail, ExitStatus};
use crate::fleet::state::{CrossOutcome, FleetState, Phase};
use crate::fleet::{self, progress, report, Plan};

pub fn fleet(args: FleetArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        FleetCommand::Plan(a) => {
            let mut plan = Plan::new(&a.roster, &bundle(&a.bundle)?, a.out.as_deref(), a.jobs)?;
            plan.cross_only = a.cross_only;
            print!("{}", plan.describe());
            print!("{}", plan.describe_ssh()?);
            Ok(ExitStatus::Success)
        }
        FleetCommand::Run(a) => {
            let mut plan = Plan::new(&a.roster, &bundle(&a.bundle)?, a.out.as_deref(), a.jobs)?;
            plan.cross_only = a.cross_only;
            eprint!("{}", plan.describe());
            let state = fleet::run(&plan)?;
            print!("{}", report::markdown(&state));
            println!("\nreports: {}", report::paths(&plan.dir));
            verdict(&state)
        }
        FleetCommand::Status(a) => {
            let dir = find_dir(&a.dir)?;
            let state = FleetState::load(&dir)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                println!("fleet dir {dir} (updated {})", state.updated);
                // The lines `fleet run` draws, as of the state's last save.
                for line in progress::lines(&state, crate::clock::now_unix()) {
                    println!("  {line}");
                }
                println!();
                print!("{}", report::markdown(&state));
            }
            Ok(ExitStatus::Success)
        }
        FleetCommand::Report(a) => {
            let dir = find_dir(&a.dir)?;
            let state = FleetState::load(&dir)?;
            report::write(&dir, &state)?;
            print!("{}", report::markdown(&state));
            println!("\nreports: {}", report::paths(&dir));
            verdict(&state)
        }
    }
}

fn find_dir(a: &FleetDirArgs) -> anyhow::Result<camino::Utf8PathBuf> {
    fleet::find_dir(&a.roster, a.out.as_deref(), a.bundle.as_deref())
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

/// Green only when every gate node and every cross suite that ran passed;
/// what did not is said on stderr. A skipped suite fails nothing by itself:
/// the node that made it skip already did.
fn verdict(state: &FleetState) -> anyhow::Result<ExitStatus> {
    let mut not_passed: Vec<String> = state
        .nodes
        .iter()
        .filter(|n| n.gate && n.phase != Phase::Passed)
        .map(|n| format!("{} {}", n.name, n.phase.word()))
        .collect();
    not_passed.extend(
        state
            .cross
            .iter()
            .filter(|c| {
                matches!(
                    c.outcome,
                    CrossOutcome::Failed | CrossOutcome::Running | CrossOutcome::Pending
                )
            })
            .map(|c| format!("cross suite {} {}", c.suite, c.outcome.word())),
    );
    if not_passed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        eprintln!("not everything passed: {}", not_passed.join(", "));
        Ok(ExitStatus::Failed)
    }
}
