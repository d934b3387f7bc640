# The archy-gate bundle from nixpkgs: `launcher pack` over a stage that bundle/stage.sh lays out
# (the same script `cargo xtask bundle` uses), from
#   pkgsStatic.jq (its bin output), its compiled-in build configuration scrubbed;
#   pkgsStatic.bash with forFHSEnv, non-interactive (bin/bash only: its loadables are not
#   reproducible);
#   bats-core's source tree, bats.unresholved.src, laid out by its own install.sh (nixpkgs'
#   `bats` is resholved: its scripts name the store, and its .src is the installed tree);
#   bats.libraries' bats-support, bats-assert and bats-file; and the lifecycle suite.
# Every input is a nixpkgs attribute. Store paths in staged binaries follow the policy in
# docs/ARCHITECTURE.md ("Store paths in staged binaries"); `launcher pack` enforces it.
{
  pkgs,
  lifecycle,
  launcher ? import ./launcher.nix { inherit (pkgs.pkgsStatic) rustPlatform; },
  name ? "archy-gate",
  version ? launcher.version,
  entry ? "lifecycle/run-gate.sh",
  # pack's own default; the flake passes its last-modified time (the commit time)
  sourceDateEpoch ? 315532800,
  # The locked nixpkgs ({ rev, narHash }, flake.lock's) for the provenance; the flake passes its
  # own input's. Without it, only the revision pkgs reports is named.
  nixpkgsLock ? null,
}:
let
  jq = pkgs.pkgsStatic.jq;
  # Without forFHSEnv, pkgs/shells/bash/5.nix compiles $out/lib/bash into BASH_LOADABLES_PATH's
  # default and /no-such-path into the default PATH and `command -p`'s. A node is FHS: bash's
  # own defaults are the right ones there. Since nixpkgs 25.11 (PR #379368) bash is also
  # interactive by default: it links readline and a static ncurses, whose compiled-in terminfo
  # default is ncurses' own $out/share/terminfo, a store path forFHSEnv does not touch, and
  # `launcher pack` refuses the binary. The gate runs scripts, never a prompt: readline and
  # terminfo are of no use on a node, so the bundle asks for the non-interactive build, and no
  # store path is left in the binary.
  bash = pkgs.pkgsStatic.bash.override {
    forFHSEnv = true;
    interactive = false;
  };
  bats = pkgs.bats;
  # The resholved bats' src is `unresholved`, the installed tree; this is the source.
  batsSrc = bats.unresholved.src;
  # jq 1.8 compiles its configure flags into `jq --build-configuration`, naming its outputs
  # (the package scrubs dev, man and doc itself, not bin or out). Text it prints, never a path
  # it opens: scrubbed here as nixpkgs does, every output named, so pack sees only eeee...
  jqScrub = builtins.concatStringsSep " " (map (o: "-t ${jq.${o}}") jq.outputs);
  libraries = [
    "bats-support"
    "bats-assert"
    "bats-file"
  ];
  rev = pkgs.lib.trivial.revisionWithDefault "unknown";

  # Test hook: the offline stand-in for nixpkgs (nix/standin/, test infrastructure only)
  # carries the source strings `cargo xtask bundle` writes for the same inputs, so that the two
  # builds can be compared byte for byte. Real nixpkgs has no such attribute.
  standin = pkgs.archyGateStandin or { };
  describe = tool: default: standin.tools.${tool}.source or default;

  # stage.sh's --libs: one JSON array, so no string passes through shell quoting.
  libsJson = builtins.toJSON (
    map (
      lib:
      let
        drv = bats.libraries.${lib};
      in
      {
        name = lib;
        inherit (drv) version;
        dir = "${drv}/share/bats/${lib}";
        license = "${drv.src}";
        source = describe lib "nixpkgs ${rev} bats.libraries.${lib} ${drv.version}";
      }
    ) libraries
  );

  # pack --build-info: what sbom.cdx.json and provenance.json say of the inputs (licences and
  # homepages from each package's meta, where it has them), the pinned nixpkgs, and the
  # Cargo.lock the launcher was built from.
  meta = drv: {
    license = drv.meta.license.spdxId or null;
    url = drv.meta.homepage or null;
  };
  lockRev = if nixpkgsLock != null then nixpkgsLock.rev or rev else rev;
  buildInfoJson = builtins.toJSON {
    builder = "nix/bundle.nix";
    command = [
      "nix"
      "build"
      ".#bundle"
    ];
    components = {
      jq = meta jq;
      bash = meta bash;
      bats-core = meta bats;
    }
    // builtins.listToAttrs (
      map (lib: {
        name = lib;
        value = meta bats.libraries.${lib};
      }) libraries
    );
    resolvedDependencies = [
      (
        {
          name = "nixpkgs";
          uri = "github:NixOS/nixpkgs/${lockRev}";
          annotations = {
            narHash = if nixpkgsLock != null then nixpkgsLock.narHash or null else null;
            lockedBy = "flake.lock";
          };
        }
        // (if lockRev != "unknown" then { digest.gitCommit = lockRev; } else { })
      )
      {
        name = "Cargo.lock";
        digest.sha256 = builtins.hashFile "sha256" ../Cargo.lock;
      }
    ];
    cargoLock = "${../Cargo.lock}";
  };
in
pkgs.stdenvNoCC.mkDerivation {
  name = "${name}-bundle-${version}";

  bundleName = name;
  bundleVersion = version;
  bundleEntry = entry;
  lifecycleDir = "${lifecycle}";
  jqBin = "${jq}/bin/jq";
  inherit jqScrub;
  jqSource = describe "jq" "nixpkgs ${rev} pkgsStatic.jq ${jq.version}, build configuration scrubbed";
  bashBin = "${bash}/bin/bash";
  bashSource = describe "bash" "nixpkgs ${rev} pkgsStatic.bash ${bash.version} forFHSEnv, non-interactive, bin/bash only";
  batsSrc = "${batsSrc}";
  batsSource = describe "bats-core" "nixpkgs ${rev} bats.unresholved.src ${bats.version}, laid out by its install.sh";
  inherit libsJson buildInfoJson;
  sourcesJson = builtins.toJSON (
    standin.sources or {
      builder = "nix/bundle.nix";
      nixpkgs = rev;
    }
  );
  stageScript = ../bundle/stage.sh;
  launcherBin = "${launcher}/bin/launcher";
  SOURCE_DATE_EPOCH = toString sourceDateEpoch;

  nativeBuildInputs = [ pkgs.removeReferencesTo ];

  # POSIX sh: stdenv runs it with bash, the stand-in with busybox sh.
  buildCommand = ''
    set -eu
    cp "$jqBin" "$NIX_BUILD_TOP/jq"
    chmod u+w "$NIX_BUILD_TOP/jq"
    remove-references-to $jqScrub "$NIX_BUILD_TOP/jq"
    "$bashBin" "$stageScript" --out "$NIX_BUILD_TOP/stage" \
      --name "$bundleName" --version "$bundleVersion" --entry "$bundleEntry" \
      --lifecycle "$lifecycleDir" \
      --jq "$NIX_BUILD_TOP/jq" --jq-source "$jqSource" \
      --bash "$bashBin" --bash-source "$bashSource" \
      --bats-core "$batsSrc" --bats-core-source "$batsSource" \
      --libs "$libsJson" --sources "$sourcesJson"
    mkdir -p "$out"
    printf '%s' "$buildInfoJson" >"$NIX_BUILD_TOP/build-info.json"
    "$launcherBin" pack "$NIX_BUILD_TOP/stage" --launcher "$launcherBin" --out "$out" \
      --build-info "$NIX_BUILD_TOP/build-info.json"
  '';

  # The outputs refer to no store path: Nix checks that, but only in what it can read.
  # It cannot see into the gzip'd payload, so a store path inside a staged file would pass
  # here; `launcher pack` above is the guard for those (it reads every staged file).
  allowedReferences = [ ];

  passthru = { inherit launcher; };
  meta.description = "archy-gate: the launcher with the static tools and the lifecycle suite appended";
}
