//! The command line: every subcommand, flag and help text. A contract
//! (docs/ARCHITECTURE.md): flags may be added, never change meaning.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "launcher",
    version,
    about = "Packs, verifies, unpacks and runs the archy-gate bundle: the lifecycle gate that runs on an Archy node",
    long_about = None,
    after_help = "A bundle is one file: this launcher with the gate appended. On a node, the file\n\
                  is both: `./archy-gate verify`, `./archy-gate run`.\n\n\
                  Exit status (every command):\n  \
                  0    ok (run, wait: the gate passed)\n  \
                  1    the gate ran and a test failed (rpc: the node answered an error)\n  \
                  2    usage or configuration: the command line, a roster, a trust file, a refused host\n  \
                  3    bundle integrity: corrupt, forged, unsigned or not the pinned artifact\n  \
                  4    preflight failed (fleet: nothing failed, but some nodes were not ready or not run)\n  \
                  5    environment: no usable work dir, lock held, unreachable, I/O\n  \
                  130  interrupted"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, parsed; `reports` names the fleet's report files
    /// in `fleet report`'s help (the list is the report writer's, and this
    /// module names no other of ours: main passes it).
    pub fn parse_naming_reports(reports: &str) -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let about = format!("Write {reports} again from the state");
        let command = Cli::command().mut_subcommand("fleet", |fleet| {
            let after = fleet.get_after_help().map(|h| h.to_string());
            let after = after.unwrap_or_default().replace("{reports}", reports);
            fleet
                .after_help(after)
                .mut_subcommand("report", |r| r.about(about))
        });
        Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
    }
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
    /// Sign a built bundle with a minisign key: in the file, and beside it.
    #[command(
        after_help = "Example:\n  launcher sign result/archy-gate --key ~/.config/archy-gate/signing.key --out dist/archy-gate\n\n\
        Signs after the build, outside Nix: the secret key never enters the store. The\n\
        built bytes are kept as they are (SHA256SUMS still pins them) and a signature\n\
        block over them is appended, so one scp carries both; OUT.minisig beside it signs\n\
        the signed file, for `minisign -Vm OUT -p KEY.pub` on a host without the launcher.\n\
        KEY is an unencrypted minisign secret key (`minisign -G -W`, or `launcher keygen`).\n\
        Nodes check it with `verify --trust KEY.pub` / `run --trust KEY.pub`, or a\n\
        root-owned /etc/archy-gate/trusted.pub."
    )]
    Sign(SignArgs),
    /// Make a signing key pair (minisign's format, unencrypted).
    #[command(
        after_help = "Example:\n  launcher keygen --secret ~/.config/archy-gate/signing.key --public archy-gate.pub\n\n\
        Writes the secret key (mode 0600; never over an existing file) and the public key.\n\
        The same as `minisign -G -W -s SECRET -p PUBLIC`. Keep the secret key off any Nix\n\
        store and out of the repository; give the public key to every node."
    )]
    Keygen(KeygenArgs),
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
    /// Run the gate on this node: verify, work dir, lock, unpack, preflight, record, gate.
    #[command(
        after_help = "Examples:\n  ARCHY_PASSWORD=… ./archy-gate run --iterations 5 --allow-destructive\n  ./archy-gate run --password-file /root/gate.pw --detach\n  ./archy-gate run -- --filter bitcoin\n  ./archy-gate run --rerun-failed\n\n\
        The work dir is the first of --workdir, $ARCHY_GATE_DIR, /tmp/archy-gate,\n\
        /var/tmp/archy-gate, $XDG_RUNTIME_DIR/archy-gate, ~/.cache/archy-gate where a file\n\
        really executes. The bundle is unpacked into WORKDIR/b/<digest>/ (reused after a\n\
        re-check); each run is recorded in WORKDIR/runs/<run-id>/ (gate.log, run.json).\n\
        The gate gets ARCHY_HOST, ARCHY_SCHEME, ARCHY_PASSWORD, ARCHY_ALLOW_DESTRUCTIVE,\n\
        ARCHY_ALLOW_CLEARTEXT, ARCHY_ITERATIONS, ARCHY_GATE_BUNDLE_DIR, ARCHY_GATE_RUN_DIR,\n\
        ARCHY_GATE_RUN_ID, ARCHY_GATE_LAUNCHER, BATS_LIB_PATH, and the bundle's bin/ first\n\
        on PATH.\n\
        A pass needs at least one test result counted (TAP or JUnit): a gate that exits 0\n\
        having reported none fails with \"no test ran\", unless --allow-no-tests.\n\
        --rerun-failed runs only the tests that failed in this node's latest run of the same\n\
        bundle (in this work dir; every iteration's failures, by exact name, as its run.json\n\
        names them), as one bats --filter (each name regex-escaped, the whole anchored). It\n\
        is a partial run: run.json's \"rerun\" says of which run and which tests, and it is\n\
        never a gate pass: its state is \"partial\" when every test it ran passed (exit 1),\n\
        \"failed\" when one still fails. With no such run, or one that named no failed\n\
        test, it refuses (exit 2) and runs nothing.\n\
        --cross SUITE --peers JSON runs a cross-node suite instead of the gate, the same way\n\
        (trust, work dir, lock, record, log), with ARCHY_PEERS (the peers JSON: name, host,\n\
        role, packages; never a password), ARCHY_CROSS_SUITE, ARCHY_CROSS_NODE and\n\
        ARCHY_CROSS_ROLE besides; `fleet run` starts them in its third phase. With --step\n\
        STEP it runs one step of the suite's scenario: its bats files through the suite's\n\
        run.sh, or its fault script (or, with --heal, the fault's heal) with the peer's name\n\
        and host; ARCHY_CROSS_STEP, ARCHY_CROSS_ATTEMPT, ARCHY_CROSS_VALUES (--values) and\n\
        ARCHY_CROSS_PUBLISH (the file its values go to, read back into run.json) besides.\n\
        The password comes from ARCHY_PASSWORD, --password-file, --password-stdin, or a\n\
        prompt on a terminal; never from the command line. It is redacted everywhere.\n\
        TLS: the RPC's certificate is verified (--ca, the node's CA, or the public roots)\n\
        except on a loopback --host; --scheme http to any other host is refused unless\n\
        --allow-cleartext (see `launcher rpc --help`).\n\
        \n\
        Exit status:\n  \
        0    the gate passed\n  \
        1    the gate failed, or ran partially (--rerun-failed), whatever its tests did\n  \
        2    usage: the command line, a refused host or scheme, a password with a line break\n  \
        3    bundle integrity: not intact, not the pinned artifact, not signed by a trusted key\n  \
        4    preflight failed (--force runs the gate anyway)\n  \
        5    environment: lock held, no usable work dir\n  \
        130  interrupted"
    )]
    Run(Box<RunArgs>),
    /// Check the node's preconditions for a meaningful gate.
    #[command(
        after_help = "Examples:\n  ARCHY_PASSWORD=… ./archy-gate preflight\n  ./archy-gate preflight --json --password-file /root/gate.pw\n\n\
        Checks: rpc-health (the RPC answers), bitcoin-synced (not in IBD, not pruned),\n\
        quadlet-orphans (every .container unit has its container), units-activating,\n\
        nginx-app-proxies (every /app/<id>/ proxy_pass port listens), adopted-containers\n\
        (every running container belongs to a package; needs the password), load, workdir.\n\
        Each gives pass, warn, fail or skip with its reason and evidence. Exit 4 when a\n\
        check fails."
    )]
    Preflight(PreflightArgs),
    /// Show a run's state and results (the latest run by default).
    #[command(
        after_help = "Examples:\n  launcher status\n  launcher status 20261128T043012Z-4242 --json"
    )]
    Status(StatusArgs),
    /// Print a run's log; --follow until the run ends.
    #[command(after_help = "Example:\n  launcher logs --follow")]
    Logs(LogsArgs),
    /// Wait for a run to end; exit with its result (0 passed, 1 failed, 130 interrupted).
    #[command(
        after_help = "Example:\n  launcher wait 20261128T043012Z-4242 && echo green\n\n\
        A partial run (run --rerun-failed) exits 1 even when every test it ran passed:\n\
        0 is only ever the whole gate's pass."
    )]
    Wait(WaitArgs),
    /// Run the gate on every node of a roster over SSH, primaries first.
    #[command(
        after_help = "Examples:\n  launcher fleet plan --roster fleet.toml --bundle result/archy-gate\n  launcher fleet run --roster fleet.toml --bundle result/archy-gate --jobs 4\n  launcher fleet status --roster fleet.toml\n\n\
        Per node: one multiplexed SSH connection (~/.ssh/config applies), one session at a\n\
        time; the bundle is uploaded only if the node's copy differs, resumed if the link\n\
        breaks, renamed into place; then `run --detach` with the password on stdin, whose\n\
        own preflight is the node's one preflight; followed by a `wait` on the node that\n\
        answers when the gate ends, asked again after a broken link; run.json and reports\n\
        fetched. Primary nodes must pass before the rest start. Then, once every gate\n\
        target passed, the roster's cross-node suites ([[cross]] suite, nodes, runs_on),\n\
        one at a time, each on the node it names (`run --cross`), told its peers in\n\
        ARCHY_PEERS (name, peer_host, role, the package versions the fleet read from each,\n\
        the certificate each serves, read over its own SSH and pinned; never a password); a\n\
        suite spanning a node that was not ready is skipped. A suite with a scenario\n\
        (scenario.toml) runs its steps instead, in order, each on the nodes holding its\n\
        role, as each node's own run (`run --cross SUITE --step STEP`), a stage only once\n\
        the last one passed, the values steps publish handed to later steps; after a\n\
        failure the rest are skipped and its cleanups and fault heals run. --cross-only\n\
        runs this phase alone, on the gates of the fleet dir's last run of the bundle.\n\
        Reports: {reports}, in the fleet dir\n\
        (default archy-gate-fleet/<roster>/<bundle sha>/, so a restarted run picks up where\n\
        it was).\n\n\
        Progress: one line per node (phase, upload bytes, iteration i/N, elapsed) and per\n\
        cross suite, redrawn in place when stdout is a terminal, else printed timestamped\n\
        when it changes; `fleet status` prints the same lines from the fleet dir's state."
    )]
    Fleet(FleetArgs),
    /// Check signed fleet results against a trusted key and a release policy.
    #[command(
        name = "verify-results",
        after_help = "Example:\n  launcher verify-results archy-gate-fleet/fleet/1a2b3c4d5e6f/attestations.jsonl \\\n    --trust archy-gate.pub --bundle dist/archy-gate --require role=primary:iterations=5\n\n\
        Reads attestations.jsonl as `fleet run --attest-key` writes it: one DSSE envelope a\n\
        line, each an in-toto Statement (test-result predicate) about one node's run, signed\n\
        by the operator's key. Every line must verify against --trust. Only statements whose\n\
        subject is the bundle's sha256 (--bundle FILE, the whole file as the fleet ran it, or\n\
        --sha256) count. --require role=ROLE or node=NAME, with :iterations=N, repeated: every\n\
        node it selects (a role selects every node of that role the fleet run had) must have a\n\
        run whose result is PASSED with at least N iterations passed (default: all it asked).\n\
        Exits 0 when every requirement holds; 1 when one does not, naming each node and\n\
        what it lacks; 3 when a line is changed, malformed, or signed by another key; 2 for\n\
        a wrong command line."
    )]
    VerifyResults(VerifyResultsArgs),
    /// (internal) carry out a recorded run, detached
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
    /// Call the node's JSON-RPC backend once; print the result as JSON.
    #[command(
        after_help = "Examples:\n  ARCHY_PASSWORD=… launcher rpc server.get-state | jq '.packages[].id'\n  launcher rpc package.stop '{\"id\": \"lnd\"}'\n\n\
        For gate suites on nodes without curl: the launcher carries the client. Logs in\n\
        with ARCHY_PASSWORD when it has no session; keeps the session cookie in\n\
        --session (default $ARCHY_GATE_RUN_DIR/.rpc-session).\n\n\
        TLS: the certificate is verified against --ca, else the node's CA when present,\n\
        else the public roots; only on a loopback host (127.0.0.0/8, ::1, localhost)\n\
        without a CA is it not verified. --host is host[:port], nothing more.\n\
        Cleartext: --scheme http sends the password unencrypted, so it is refused for\n\
        any host but loopback unless --allow-cleartext (ARCHY_ALLOW_CLEARTEXT=1).\n\
        -v says which of these applies.\n\n\
        Another node's RPC (a cross suite's peer): --anonymous, so this node's password and\n\
        session never go there: `launcher rpc --anonymous --host PEER health`. A peer's\n\
        self-signed certificate is trusted by --pin-sha256 (ARCHY_PEERS' cert_sha256):\n\
        any other certificate is refused, naming both fingerprints; the handshake is still\n\
        verified against the pinned certificate's key. The fleet learns each pin on the\n\
        peer itself, over its own SSH connection: `launcher rpc --host 127.0.0.1:PORT\n\
        --print-cert` there prints the PEM the node serves (refused for any host but\n\
        loopback: a certificate read over the network proves nothing).\n\n\
        Exit 0 with the result on stdout; 1 on a JSON-RPC error; 2 on a refused host or\n\
        scheme; 5 if unreachable."
    )]
    Rpc(RpcArgs),
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
    /// The build's description (JSON: builder, command, components, pinned
    /// inputs, Cargo.lock): also write sbom.cdx.json (CycloneDX) and
    /// provenance.json (SLSA v1) beside the bundle
    #[arg(long, value_name = "FILE")]
    pub build_info: Option<Utf8PathBuf>,
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
    #[command(flatten)]
    pub pin: PinArg,
    #[command(flatten)]
    pub trust: TrustArg,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The built bundle file
    #[arg(value_name = "BUNDLE")]
    pub bundle: Utf8PathBuf,
    /// The minisign secret key file (unencrypted)
    #[arg(long, value_name = "SECRET_KEY_FILE")]
    pub key: Utf8PathBuf,
    /// Where to write the signed bundle [default: BUNDLE itself]
    #[arg(long, value_name = "FILE")]
    pub out: Option<Utf8PathBuf>,
    /// The trusted comment (signed, shown by inspect and minisign) [default: file name and built sha256]
    #[arg(long, value_name = "TEXT")]
    pub trusted_comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyResultsArgs {
    /// Attestation files (JSON lines of DSSE envelopes), as the fleet writes them
    #[arg(value_name = "ATTESTATIONS", required = true)]
    pub files: Vec<Utf8PathBuf>,
    /// The operator's public key: a .pub file or its base64 line
    #[arg(long, value_name = "KEY")]
    pub trust: String,
    /// The bundle the results must be for (its whole file's sha256)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "sha256",
        conflicts_with = "sha256"
    )]
    pub bundle: Option<Utf8PathBuf>,
    /// The bundle's sha256, instead of --bundle
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// A requirement: role=ROLE or node=NAME, optionally :iterations=N; repeatable
    #[arg(long, value_name = "POLICY", required = true)]
    pub require: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (must not exist)
    #[arg(long, value_name = "FILE")]
    pub secret: Utf8PathBuf,
    /// Where to write the public key (must not exist)
    #[arg(long, value_name = "FILE")]
    pub public: Utf8PathBuf,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub bundle: BundleArg,
    /// The new directory to unpack into
    #[arg(long, value_name = "DIR")]
    pub to: Utf8PathBuf,
    #[command(flatten)]
    pub pin: PinArg,
}

#[derive(Debug, Args)]
pub struct RpcArgs {
    /// The JSON-RPC method, e.g. server.get-state
    #[arg(required_unless_present = "print_cert")]
    pub method: Option<String>,
    /// The params, as JSON
    pub params: Option<String>,
    /// The node's address, with an optional port
    #[arg(long, env = "ARCHY_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// http or https
    #[arg(long, env = "ARCHY_SCHEME", default_value = "https")]
    pub scheme: String,
    /// A CA certificate (PEM) to verify the node against
    #[arg(long, value_name = "FILE", env = "ARCHY_CA")]
    pub ca: Option<Utf8PathBuf>,
    /// Where to keep the session cookie between calls
    #[arg(long, value_name = "FILE")]
    pub session: Option<Utf8PathBuf>,
    /// Seconds to wait for an answer
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Say on stderr where the call goes and how TLS is checked
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Allow http to a host other than loopback: the password travels unencrypted
    #[arg(long, env = "ARCHY_ALLOW_CLEARTEXT", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_cleartext: bool,
    /// Read the password from standard input instead of ARCHY_PASSWORD
    #[arg(long, conflicts_with = "anonymous")]
    pub password_stdin: bool,
    /// Call without any password or session: never log in, ignore ARCHY_PASSWORD,
    /// send and keep no cookie (for another node's RPC, e.g. a peer's health)
    #[arg(long)]
    pub anonymous: bool,
    /// Trust the server by its certificate alone: connect only if the DER of the
    /// certificate it presents has this sha256 (hex), on loopback too
    #[arg(long, value_name = "HEX", requires = "anonymous")]
    pub pin_sha256: Option<String>,
    /// Print the certificate (PEM) the server at --host presents, and nothing else;
    /// loopback only: read a node's certificate on the node itself
    #[arg(long, conflicts_with_all = ["method", "pin_sha256", "anonymous", "password_stdin"])]
    pub print_cert: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub bundle: BundleArg,
    /// How many times the gate runs its suite (ARCHY_ITERATIONS)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: u32,
    /// Allow tests that stop and start packages (ARCHY_ALLOW_DESTRUCTIVE=1)
    #[arg(long)]
    pub allow_destructive: bool,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Where to unpack and record runs [default: the first usable candidate]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub pin: PinArg,
    #[command(flatten)]
    pub trust: TrustArg,
    /// Start the gate in the background and print its run id
    #[arg(long)]
    pub detach: bool,
    /// Name the run (letters, digits, '.', '_', '-'): lets a caller that lost
    /// its connection ask whether the run started
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub checks: CheckArgs,
    /// Let the gate pass though it reports no test result (no TAP or JUnit);
    /// recorded in run.json. Without it, a gate that exits 0 having counted
    /// no test fails: "no test ran"
    #[arg(long)]
    pub allow_no_tests: bool,
    /// Skip the preflight checks
    #[arg(long, conflicts_with = "force")]
    pub skip_preflight: bool,
    /// Run even when preflight checks fail (they are recorded)
    #[arg(long)]
    pub force: bool,
    /// Print the run record as JSON on stdout (the gate's output goes to stderr)
    #[arg(long)]
    pub json: bool,
    /// Run the bundle's cross-node suite SUITE (its lifecycle/cross/SUITE/run.sh)
    /// instead of the gate, told about its peers (`inspect` lists the suites)
    #[arg(long, value_name = "SUITE", requires = "peers")]
    pub cross: Option<String>,
    /// The suite's other nodes as JSON, passed on as ARCHY_PEERS:
    /// [{"name", "host" (their RPC as this node reaches it), "role", "packages"}]
    #[arg(long, value_name = "JSON", requires = "cross")]
    pub peers: Option<String>,
    /// This node's role in the cross suite (ARCHY_CROSS_ROLE)
    #[arg(long, value_name = "ROLE", requires = "cross")]
    pub role: Option<String>,
    /// This node's name in the fleet (ARCHY_CROSS_NODE)
    #[arg(long, value_name = "NAME", requires = "cross")]
    pub node_name: Option<String>,
    /// Run only step STEP of the suite's scenario (its scenario.toml;
    /// `inspect` lists the steps), as this node's part of it
    #[arg(long, value_name = "STEP", requires = "cross")]
    pub step: Option<String>,
    /// With --step naming a fault: run its heal instead
    #[arg(long, requires = "step")]
    pub heal: bool,
    /// Which attempt of the step this is (ARCHY_CROSS_ATTEMPT) [default: 1]
    #[arg(long, value_name = "N", requires = "step")]
    pub attempt: Option<u32>,
    /// The values earlier steps published, a JSON object of names to
    /// strings (ARCHY_CROSS_VALUES)
    #[arg(long, value_name = "JSON", requires = "step")]
    pub values: Option<String>,
    /// Run only the tests that failed in this node's latest run of this bundle
    /// (named exactly: a bats --filter after GATE_ARGS): a partial run, recorded
    /// as one, never a gate pass (exit 1, state "partial", even when they pass)
    #[arg(long, conflicts_with = "cross")]
    pub rerun_failed: bool,
    /// Arguments passed to the gate's entry script
    #[arg(last = true, value_name = "GATE_ARGS")]
    pub gate_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: RunSelector,
    /// Print the run record as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub select: RunSelector,
    /// Keep printing until the run ends
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub select: RunSelector,
    /// Give up after this many seconds (exit 5)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Also return once the gate is past iteration N (exit 5 while it runs)
    #[arg(long, value_name = "N")]
    pub past_iteration: Option<u32>,
    /// Print the run record as JSON on stdout when returning, however it returns
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub run_dir: Utf8PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub checks: CheckArgs,
    /// Print JSON for machines
    #[arg(long)]
    pub json: bool,
}

/// The node's RPC as `run` and `preflight` reach it (the gate gets the
/// same as ARCHY_HOST, ARCHY_SCHEME, ARCHY_ALLOW_CLEARTEXT).
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// The node's RPC address, with an optional port (run: the gate's ARCHY_HOST)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// http or https (run: the gate's ARCHY_SCHEME)
    #[arg(long, default_value = "https")]
    pub scheme: String,
    /// Allow --scheme http to a host other than loopback: the password travels
    /// unencrypted (run: the gate gets ARCHY_ALLOW_CLEARTEXT=1)
    #[arg(long)]
    pub allow_cleartext: bool,
    /// A CA certificate (PEM) to verify the node's RPC against [default: the node's own CA if found]
    #[arg(long, value_name = "FILE")]
    pub ca: Option<Utf8PathBuf>,
}

/// Where the node password comes from, besides ARCHY_PASSWORD and a prompt.
#[derive(Debug, Args, Clone)]
pub struct PasswordArgs {
    /// Read the node password from FILE (its first line)
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub password_file: Option<Utf8PathBuf>,
    /// Read the node password from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

/// How the preflight checks judge the node.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// The command that answers getblockchaininfo [default: bitcoin-cli, or through podman]
    #[arg(long, value_name = "CMD", env = "ARCHY_BITCOIN_CLI")]
    pub bitcoin_cli: Option<String>,
    /// Warn when the load per core is above this
    #[arg(long, value_name = "LOAD", default_value_t = 2.0)]
    pub max_load_per_core: f64,
    /// Seconds a node command (podman, systemctl, bitcoin-cli) may take
    /// before it and every process it started in its group are killed
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub command_timeout: u64,
}

/// The pin: proves a bundle is the artifact that was built.
#[derive(Debug, Args, Clone)]
pub struct PinArg {
    /// The whole file's expected sha256 (from SHA256SUMS)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
}

/// The key a bundle must be signed by.
#[derive(Debug, Args, Clone)]
pub struct TrustArg {
    /// Accept only a bundle signed by this key: a minisign public key (its
    /// base64 line) or .pub file [default: /etc/archy-gate/trusted.pub if present]
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Option<String>,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Print what `fleet run` would do; touches no node.
    #[command(
        after_help = "Examples:\n  launcher fleet plan --roster fleet.toml --bundle result/archy-gate\n  \
        launcher fleet plan --inventory hosts.yml --limit archy_primary --bundle result/archy-gate"
    )]
    Plan(FleetRunArgs),
    /// Run the gate across the roster.
    #[command(
        after_help = "Examples:\n  launcher fleet run --roster fleet.toml --bundle result/archy-gate --jobs 4\n  \
        launcher fleet run --roster fleet.toml --bundle result/archy-gate --only failed,not-ready\n  \
        launcher fleet run --roster fleet.toml --wait-ready 2h --events events.jsonl\n  \
        launcher fleet run --inventory hosts.yml --limit 'archy_primary:web*'\n\n\
        What happens on each node: `launcher fleet --help`. The events' schema: docs/EVENTS.md.\n\n\
        Exit status:\n  \
        0    every gate node passed, and no cross-node suite failed\n  \
        1    a gate or a cross-node suite failed, or a node was unreachable or misbehaved\n  \
        2    usage: the command line, the roster, a --limit that matches no node\n  \
        3    bundle integrity: not intact, not signed by the roster's trusted key\n  \
        4    nothing failed, but some nodes were not ready (or not run: --limit, --only)\n  \
        5    environment: the fleet dir, the --events file, ssh's control dir\n  \
        130  interrupted"
    )]
    Run(FleetRunArgs),
    /// Show the state of the current (or last) fleet run.
    #[command(after_help = "Example:\n  launcher fleet status --roster fleet.toml --json")]
    Status(FleetStatusArgs),
    /// Write the reports again from the state (or from fetched run dirs).
    #[command(
        after_help = "Examples:\n  launcher fleet report --roster fleet.toml\n  \
        launcher fleet report --from-runs fetched-runs/ --out fleet-report/"
    )]
    Report(FleetReportArgs),
}

#[derive(Debug, Args)]
pub struct FleetRunArgs {
    /// The roster (TOML)
    #[arg(long, value_name = "FILE", required_unless_present_any = ["inventory", "inventory_json"])]
    pub roster: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// The bundle to run [default: the one appended to this executable]
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<Utf8PathBuf>,
    /// How many nodes at a time (at least 1)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = at_least_one)]
    pub jobs: usize,
    /// The fleet dir [default: archy-gate-fleet/<roster>/<bundle sha>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<Utf8PathBuf>,
    /// Run only the cross-node suites, against the gates the fleet dir's
    /// last run of this bundle passed (for developing a scenario); no gate runs
    #[arg(long)]
    pub cross_only: bool,
    /// Run again only the nodes the fleet dir's last run left so, by kind:
    /// failed, not-ready, unreachable, not-run, not-passed (comma-separated);
    /// the other nodes keep their results
    #[arg(long, value_name = "KINDS", value_delimiter = ',', value_parser = only_kind)]
    pub only: Vec<String>,
    /// Touch only the nodes a pattern matches: a node name, a role
    /// (primary, fleet, tester, dev) or a glob over names (`web-*`);
    /// comma-separated or repeated. With --inventory: Ansible's host
    /// pattern, resolved by `ansible-inventory --limit`
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Start no new node once N nodes failed (failed, unreachable, error);
    /// the nodes already running finish
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_fail: Option<usize>,
    /// Wait up to DURATION (90s, 30m, 2h) for a node that is not ready
    /// (bitcoin in IBD, a package down): check it again every --ready-every
    /// and run its gate once it is; other nodes go on meanwhile
    #[arg(long, value_name = "DURATION", value_parser = duration_secs)]
    pub wait_ready: Option<u64>,
    /// How often a waiting node is checked again
    #[arg(long, value_name = "DURATION", value_parser = duration_secs, default_value = "30s", requires = "wait_ready")]
    pub ready_every: u64,
    /// Write every change as a JSON line to FILE (`-`: stdout, and the
    /// progress lines and report go to stderr); schema in docs/EVENTS.md
    #[arg(long, value_name = "FILE")]
    pub events: Option<Utf8PathBuf>,
    /// Sign each node run's result with this key (a `launcher keygen` secret
    /// key) into attestations.jsonl in the fleet dir [default: the roster's
    /// [defaults] attest_key; none: no attestations]
    #[arg(long, value_name = "SECRET_KEY_FILE")]
    pub attest_key: Option<Utf8PathBuf>,
}

/// The nodes from an Ansible inventory (fleet/inventory.rs).
#[derive(Debug, Args, Default)]
pub struct InventoryArgs {
    /// Take the nodes from an Ansible inventory, through `ansible-inventory
    /// -i INV --list` (ansible-core installed on this host); with --roster,
    /// the roster's [defaults] and [[cross]] apply on top
    #[arg(long, value_name = "INV", conflicts_with = "inventory_json")]
    pub inventory: Option<Utf8PathBuf>,
    /// As --inventory, from a saved `ansible-inventory -i INV --list > FILE`
    /// (no Ansible needed here; --limit then means what it means for a roster)
    #[arg(long, value_name = "FILE")]
    pub inventory_json: Option<Utf8PathBuf>,
}

/// Which fleet run `fleet status` and `fleet report` read.
#[derive(Debug, Args)]
pub struct FleetDirArgs {
    /// The roster (TOML), or the inventory, that names the default fleet dir
    #[arg(
        long,
        value_name = "FILE",
        alias = "inventory",
        required_unless_present = "out"
    )]
    pub roster: Option<Utf8PathBuf>,
    /// The bundle whose fleet run to read [default: the latest run for this roster]
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<Utf8PathBuf>,
    /// The fleet dir (over --bundle) [default: the one for --bundle, else the latest for this roster]
    #[arg(long, value_name = "DIR")]
    pub out: Option<Utf8PathBuf>,
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    #[command(flatten)]
    pub dir: FleetDirArgs,
    /// Print the state as JSON
    #[arg(long)]
    pub json: bool,
    /// Print the run's events as JSON lines, replayed from the state (the
    /// changes it still holds: steps, tests, each node's last phase, the verdict)
    #[arg(long, conflicts_with = "json")]
    pub events: bool,
}

#[derive(Debug, Args)]
pub struct FleetReportArgs {
    #[command(flatten)]
    pub dir: FleetDirArgs,
    /// Build the fleet's state from run dirs fetched by other means (the
    /// archy.gate Ansible collection): DIR/NODE/ each one node's run dir
    /// (run.json, gate.log, TAP), or its start.json when it was not ready;
    /// read as a node's answer is (capped, plain files only), into --out
    #[arg(long, value_name = "DIR", requires = "out")]
    pub from_runs: Option<Utf8PathBuf>,
    /// Sign the state's node runs into attestations.jsonl with this key
    /// [default: the roster's [defaults] attest_key]
    #[arg(long, value_name = "SECRET_KEY_FILE")]
    pub attest_key: Option<Utf8PathBuf>,
}

/// Which run `status`, `logs` and `wait` mean.
#[derive(Debug, Args)]
pub struct RunSelector {
    /// A run id (or its unique prefix) or run dir [default: the latest run]
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Look for runs only in this work dir
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<Utf8PathBuf>,
}

/// `--jobs`: 0 would run no node at all, so it is refused, not raised to 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 would run no node: give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: give a whole number, 1 or more")),
    }
}

/// `--only`'s kinds of node, as the fleet's state words them.
pub const ONLY_KINDS: [&str; 5] = [
    "failed",
    "not-ready",
    "unreachable",
    "not-run",
    "not-passed",
];

fn only_kind(text: &str) -> Result<String, String> {
    if ONLY_KINDS.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("give one or more of {}", ONLY_KINDS.join(", ")))
    }
}

/// A duration as a person writes it: `90`, `90s`, `30m`, `2h`, `1h30m`;
/// in seconds, at least 1.
fn duration_secs(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration: write it like 90s, 30m, 2h or 1h30m");
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.checked_add(n).ok_or_else(bad)?;
    }
    if total == 0 {
        return Err(format!("{text:?}: give a duration of at least 1s"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::duration_secs;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(duration_secs("90"), Ok(90));
        assert_eq!(duration_secs("90s"), Ok(90));
        assert_eq!(duration_secs("30m"), Ok(1800));
        assert_eq!(duration_secs("1h30m"), Ok(5400));
        for bad in ["", "0s", "m", "1x", "-5s", "1.5h", "99999999999999999999h"] {
            assert!(duration_secs(bad).is_err(), "{bad:?}");
        }
    }
}
