//! `launcher fleet plan|run|status|report --roster FILE`.

use std::time::Duration;

use crate::cli::{FleetArgs, FleetCommand, FleetDirArgs, FleetRunArgs};
use crate::exit::{fail, ExitStatus};
use crate::fleet::events::Stream;
use crate::fleet::inventory;
use crate::fleet::roster::Roster;
use crate::fleet::select::Selection;
use crate::fleet::state::FleetState;
use crate::fleet::{self, progress, report, Plan, WaitReady};

pub fn fleet(args: FleetArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        FleetCommand::Plan(a) => {
            let plan = plan(&a)?;
            print!("{}", plan.describe());
            print!("{}", plan.describe_ssh()?);
            Ok(ExitStatus::Success)
        }
        FleetCommand::Run(a) => {
            let plan = plan(&a)?;
            // Opened before any node is touched: a path we cannot write is
            // said now, not after the run.
            let events = a.events.as_deref().map(Stream::open).transpose()?;
            let to_stderr = events.as_ref().is_some_and(Stream::is_stdout);
            // Read before any node is touched: a key that cannot sign is
            // said now, not after hours of gates.
            let attest_key = attest_key(a.attest_key.as_ref(), &plan.roster)?;
            eprint!("{}", plan.describe());
            let state = fleet::run(&plan, events)?;
            if let Some(key) = &attest_key {
                let n = fleet::attest::write(&plan.dir, &state, key)?;
                eprintln!(
                    "attested {n} node run(s), signed by key {}: {}/{}",
                    key.public.id(),
                    plan.dir,
                    fleet::attest::ATTESTATIONS_FILE
                );
            }
            // With the events on stdout, stdout carries nothing else.
            let closing = format!(
                "{}\nreports: {}\n",
                report::markdown(&state),
                report::paths(&plan.dir)
            );
            if to_stderr {
                eprint!("{closing}");
            } else {
                print!("{closing}");
            }
            verdict(&state)
        }
        FleetCommand::Status(a) => {
            let dir = find_dir(&a.dir)?;
            let state = FleetState::load(&dir)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else if a.events {
                for line in fleet::events::replay(&state) {
                    println!("{line}");
                }
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
            if let Some(runs) = &a.from_runs {
                let out = a
                    .dir
                    .out
                    .as_deref()
                    .expect("clap: --from-runs requires --out");
                let state = fleet::from_runs::build(runs, out, a.dir.bundle.as_deref())?;
                report::write(out, &state)?;
                print!("{}", report::markdown(&state));
                println!("\nreports: {}", report::paths(out));
                return verdict(&state);
            }
            let dir = find_dir(&a.dir)?;
            let state = FleetState::load(&dir)?;
            report::write(&dir, &state)?;
            let roster = match &a.attest_key {
                Some(_) => None,
                None => a
                    .dir
                    .roster
                    .as_deref()
                    .and_then(|r| fleet::roster::Roster::load(r).ok()),
            };
            let key = match (&a.attest_key, roster.as_ref()) {
                (Some(path), _) => Some(fleet::attest::read_key(path)?),
                (None, Some(r)) => attest_key(None, r)?,
                (None, None) => None,
            };
            if let Some(key) = key {
                let n = fleet::attest::write(&dir, &state, &key)?;
                eprintln!(
                    "attested {n} node run(s), signed by key {}: {dir}/{}",
                    key.public.id(),
                    fleet::attest::ATTESTATIONS_FILE
                );
            }
            print!("{}", report::markdown(&state));
            println!("\nreports: {}", report::paths(&dir));
            verdict(&state)
        }
    }
}

/// The plan `fleet plan` shows and `fleet run` carries out.
fn plan(a: &FleetRunArgs) -> anyhow::Result<Plan> {
    let source = match (&a.inventory.inventory, &a.inventory.inventory_json) {
        (Some(inv), _) => Some(inventory::Source::Inventory(inv.clone())),
        (None, Some(json)) => Some(inventory::Source::Dump(json.clone())),
        (None, None) => None,
    };
    let mut roster = Roster::load_with(a.roster.as_deref(), source)?;
    // With an inventory Ansible reads, --limit is Ansible's pattern: it
    // picks the nodes by name, and the roster's own --limit takes those.
    let mut limit = a.limit.clone();
    if let Some((source @ inventory::Source::Inventory(_), origins)) = &mut roster.inventory {
        if !limit.is_empty() {
            let names: Vec<String> = roster
                .nodes
                .iter()
                .filter(|n| n.gate)
                .map(|n| n.name.clone())
                .collect();
            let (pattern, picked) = inventory::limit(source, &limit, &names)?;
            origins.limit = Some((pattern, picked.clone()));
            limit = picked;
        }
    }
    let mut plan = Plan::new(roster, &bundle(&a.bundle)?, a.out.as_deref(), a.jobs)?;
    plan.cross_only = a.cross_only;
    if a.cross_only && !(a.only.is_empty() && a.limit.is_empty()) {
        return Err(fail(
            ExitStatus::Usage,
            "--cross-only runs no gate: --only and --limit choose gate nodes, and mean nothing with it",
        ));
    }
    plan.choose(Selection {
        limit,
        only: a.only.clone(),
    })?;
    plan.max_fail = a.max_fail;
    plan.wait_ready = a.wait_ready.map(|total| WaitReady {
        total: Duration::from_secs(total),
        every: Duration::from_secs(a.ready_every),
    });
    Ok(plan)
}

fn find_dir(a: &FleetDirArgs) -> anyhow::Result<camino::Utf8PathBuf> {
    // Without --roster, --out names the dir (clap requires one of them).
    let named = a.roster.clone().unwrap_or_else(|| "fleet".into());
    fleet::find_dir(&named, a.out.as_deref(), a.bundle.as_deref())
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

/// The verdict as an exit status: 0 every gate node passed (and no cross
/// suite failed), 1 something failed, 4 nothing failed but some nodes were
/// not ready or not run. What did not pass is said on stderr.
fn verdict(state: &FleetState) -> anyhow::Result<ExitStatus> {
    let (verdict, short) = fleet::view::judge(state);
    if !short.is_empty() {
        eprintln!("not everything passed: {}", short.join(", "));
    }
    Ok(verdict.status())
}

/// The key that signs the results: `--attest-key`, else the roster's
/// `[defaults] attest_key`, else none (a plain run attests nothing).
fn attest_key(
    flag: Option<&camino::Utf8PathBuf>,
    roster: &fleet::roster::Roster,
) -> anyhow::Result<Option<crate::minisig::SecretKey>> {
    flag.or(roster.attest_key.as_ref())
        .map(|path| fleet::attest::read_key(path))
        .transpose()
}
