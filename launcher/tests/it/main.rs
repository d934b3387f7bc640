//! The launcher's black-box tests, one test binary (`cargo test --test it`):
//! one module per concern, `support` shared by all. One binary links once
//! and runs every test on one pool of threads, where a binary per file
//! linked each file's copy of `support` and ran the files one after another.
//!
//! Two tiers. The default tier is everything `cargo test` runs. The slow
//! tier is the tests marked `#[ignore = "slow tier: ..."]` (rebuilds from
//! scratch, the mutation runs, and the labs that drive whole fleets under
//! strace, through a proxy or against the hostile stand-in, each 20-70 s):
//! cargo reports them ignored,
//! never passed, and `scripts/test.sh` (CI) runs them with
//! `cargo test -- --include-ignored`.
//!
//! The `host-tests` feature (on by default) holds the modules that need root,
//! the host's tools (a bare node, sshd, python3, minisign, the real bundle)
//! or the whole checkout (tidy: docs/); the flake's sandboxed check, which
//! has none of them, turns it off and runs the rest.

mod support;

mod bad_bundles;
mod pack;
mod verify;

#[cfg(feature = "host-tests")]
mod ansible;
#[cfg(feature = "host-tests")]
mod bare_node;
#[cfg(feature = "host-tests")]
mod bundle_build;
#[cfg(feature = "host-tests")]
mod evidence;
#[cfg(feature = "host-tests")]
mod fleet;
#[cfg(feature = "host-tests")]
mod fleet_cross;
#[cfg(feature = "host-tests")]
mod fleet_flaky;
#[cfg(feature = "host-tests")]
mod fleet_report_html;
#[cfg(feature = "host-tests")]
mod fleet_scenario;
#[cfg(feature = "host-tests")]
mod fleet_select;
#[cfg(feature = "host-tests")]
mod gate_on_node;
#[cfg(feature = "host-tests")]
mod hostile_input;
#[cfg(feature = "host-tests")]
mod lifecycle_suite;
#[cfg(feature = "host-tests")]
mod mutations;
#[cfg(feature = "host-tests")]
mod node_to_operator;
#[cfg(feature = "host-tests")]
mod peer_tls;
#[cfg(feature = "host-tests")]
mod preflight;
#[cfg(feature = "host-tests")]
mod rerun_failed;
#[cfg(feature = "host-tests")]
mod run;
#[cfg(feature = "host-tests")]
mod signed;
#[cfg(feature = "host-tests")]
mod ssh_as_configured;
#[cfg(feature = "host-tests")]
mod ssh_nodes;
#[cfg(feature = "host-tests")]
mod standin_node;
#[cfg(feature = "host-tests")]
mod tidy;
#[cfg(feature = "host-tests")]
mod trust_on_node;
#[cfg(feature = "host-tests")]
mod what_runs_is_what_was_verified;
