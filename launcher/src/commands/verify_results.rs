//! `launcher verify-results FILE… --trust KEY (--bundle FILE | --sha256 HEX)
//! --require POLICY…`: what a release pipeline runs after a fleet run. The
//! judgement is `result_policy.rs`'s; this prints it and gives the verdict.

use std::io::Read;

use crate::cli::VerifyResultsArgs;
use crate::digest::{parse_hex, sha256, to_hex};
use crate::exit::{fail, ExitStatus};
use crate::printable::printable as p;
use crate::result_policy::{self, CheckedLines, Requirement};

/// An attestation file is small (a few KiB a node): more is not ours.
const FILE_CAP: u64 = 64 << 20;

pub fn verify_results(args: VerifyResultsArgs) -> anyhow::Result<ExitStatus> {
    let usage = |m: String| fail(ExitStatus::Usage, m);
    let requirements = args
        .require
        .iter()
        .map(|r| {
            r.parse::<Requirement>()
                .map_err(|why| usage(format!("--require {r:?}: {why}")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let trust = crate::trusted_keys::find_trust(Some(&args.trust))?
        .expect("a --trust value gives keys or an error");
    let digest = match (&args.bundle, &args.sha256) {
        (_, Some(hex)) => to_hex(
            &parse_hex(hex)
                .ok_or_else(|| usage(format!("--sha256 {hex:?} is not 64 hex digits")))?,
        ),
        (Some(path), None) => {
            let bytes = std::fs::read(path)
                .map_err(|e| usage(format!("cannot read the bundle {path}: {e}")))?;
            to_hex(&sha256(&bytes))
        }
        (None, None) => unreachable!("clap requires --bundle or --sha256"),
    };
    let mut checked = CheckedLines::default();
    for file in &args.files {
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(FILE_CAP + 1).read_to_string(&mut text))
            .map_err(|e| usage(format!("cannot read {file}: {e}")))?;
        if text.len() as u64 > FILE_CAP {
            return Err(fail(
                ExitStatus::Integrity,
                format!(
                    "{file} is over {} : not an attestation file",
                    crate::human::size(FILE_CAP)
                ),
            ));
        }
        result_policy::check_lines(file.as_str(), &text, &trust.keys, &digest, &mut checked);
    }
    println!(
        "bundle sha256 {digest}; trusted key {}",
        trust
            .keys
            .iter()
            .map(|k| k.id())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let verdicts = result_policy::judge(&checked, &requirements);
    for v in &verdicts {
        let who = match (&v.node, &v.role) {
            (n, _) if n.is_empty() => String::from("(no node)"),
            (n, Some(r)) => format!("{} ({})", p(n), p(r)),
            (n, None) => p(n).into_owned(),
        };
        match &v.met {
            Ok(r) => println!(
                "ok       {who}: {}: PASSED, {} of {} iterations passed, run {}, finished {}, signed by key {}",
                v.requirement,
                r.run.iterations_passed,
                r.run.iterations_asked,
                p(r.run.run_id.as_deref().unwrap_or("?")),
                p(r.run.finished_on.as_deref().unwrap_or("?")),
                r.key_id
            ),
            Err(why) => println!("MISSING  {who}: {}: {why}", v.requirement),
        }
    }
    for line in &checked.set_aside {
        println!("ignored  {line}");
    }
    for line in &checked.refused {
        println!("REFUSED  {line}");
    }
    let missing = verdicts.iter().filter(|v| v.met.is_err()).count();
    if !checked.refused.is_empty() {
        eprintln!(
            "not verified: {} line(s) refused (changed after signing, or not signed by a trusted key)",
            checked.refused.len()
        );
        return Ok(ExitStatus::Integrity);
    }
    if missing > 0 {
        eprintln!(
            "not met: {missing} of {} required node(s) lack a passing attested run",
            verdicts.len()
        );
        return Ok(ExitStatus::Failed);
    }
    println!("verified: every requirement holds for this bundle");
    Ok(ExitStatus::Success)
}
