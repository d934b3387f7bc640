# The archy-gate bundle from nixpkgs: `launcher pack` over a stage that bundle/stage.sh lays out
# (the same script bundle/build.sh uses), from
#   pkgsStatic.jq (its bin output) and pkgsStatic.bash (bin/bash only: its loadables are not
#   reproducible), bats-core's source tree laid out by its own install.sh (nixpkgs' `bats` is
#   resholved: its scripts name the store), bats.libraries' bats-support, bats-assert and
#   bats-file, and the lifecycle suite.
# Every input is a nixpkgs attribute; the result is three files (archy-gate, manifest.json,
# SHA256SUMS) that reference no store path, which Nix itself enforces (allowedReferences).
{
  pkgs,
  lifecycle,
  launcher ? import ./launcher.nix { inherit (pkgs.pkgsStatic) rustPlatform; },
  name ? "archy-gate",
  version ? launcher.version,
  entry ? "lifecycle/run-gate.sh",
  # pack's own default; the flake passes its last-modified time (the commit time)
  sourceDateEpoch ? 315532800,
}:
let
  jq = pkgs.pkgsStatic.jq;
  bash = pkgs.pkgsStatic.bash;
  bats = pkgs.bats;
  libraries = [
    "bats-support"
    "bats-assert"
    "bats-file"
  ];
  rev = pkgs.lib.trivial.revisionWithDefault "unknown";

  # Test hook: the offline stand-in for nixpkgs (nix/standin/, test infrastructure only)
  # carries the source strings bundle/build.sh writes for the same inputs, so that the two
  # builds can be compared byte for byte. Real nixpkgs has no such attribute.
  standin = pkgs.archyGateStandin or { };
  describe = tool: default: standin.tools.${tool}.source or default;

  # One variable per value (no shell quoting of the strings), for each library too.
  libVars = builtins.listToAttrs (
    builtins.concatLists (
      builtins.genList (
        i:
        let
          lib = builtins.elemAt libraries i;
          drv = bats.libraries.${lib};
          var = suffix: value: {
            name = "lib${toString i}${suffix}";
            inherit value;
          };
        in
        [
          (var "Name" lib)
          (var "Version" drv.version)
          (var "Dir" "${drv}/share/bats/${lib}")
          (var "License" "${drv.src}")
          (var "Source" (describe lib "nixpkgs ${rev} bats.libraries.${lib} ${drv.version}"))
        ]
      ) (builtins.length libraries)
    )
  );
  libArgs = builtins.concatStringsSep " " (
    builtins.genList (
      i:
      let
        v = suffix: "\"$lib${toString i}${suffix}\"";
      in
      "--lib ${v "Name"} ${v "Version"} ${v "Dir"} ${v "License"} ${v "Source"}"
    ) (builtins.length libraries)
  );
in
pkgs.stdenvNoCC.mkDerivation (
  libVars
  // {
    name = "${name}-bundle-${version}";

    bundleName = name;
    bundleVersion = version;
    bundleEntry = entry;
    lifecycleDir = "${lifecycle}";
    jqBin = "${jq}/bin/jq";
    jqSource = describe "jq" "nixpkgs ${rev} pkgsStatic.jq ${jq.version}";
    bashBin = "${bash}/bin/bash";
    bashSource = describe "bash" "nixpkgs ${rev} pkgsStatic.bash ${bash.version}, bin/bash only";
    batsSrc = "${bats.src}";
    batsSource = describe "bats-core" "nixpkgs ${rev} bats.src ${bats.version}, laid out by its install.sh";
    sourcesJson = builtins.toJSON (
      standin.sources or {
        builder = "nix/bundle.nix";
        nixpkgs = rev;
      }
    );
    stageScript = ../bundle/stage.sh;
    launcherBin = "${launcher}/bin/launcher";
    SOURCE_DATE_EPOCH = toString sourceDateEpoch;

    # POSIX sh: stdenv runs it with bash, the stand-in with /bin/sh.
    buildCommand = ''
      set -eu
      "$bashBin" "$stageScript" --out "$NIX_BUILD_TOP/stage" \
        --name "$bundleName" --version "$bundleVersion" --entry "$bundleEntry" \
        --lifecycle "$lifecycleDir" \
        --jq "$jqBin" --jq-source "$jqSource" \
        --bash "$bashBin" --bash-source "$bashSource" \
        --bats-core "$batsSrc" --bats-core-source "$batsSource" \
        ${libArgs} \
        --sources "$sourcesJson"
      mkdir -p "$out"
      "$launcherBin" pack "$NIX_BUILD_TOP/stage" --launcher "$launcherBin" --out "$out"
    '';

    # The bundle runs on nodes without Nix: not one store path may be named in it.
    allowedReferences = [ ];

    passthru = { inherit launcher; };
    meta.description = "archy-gate: the launcher with the static tools and the lifecycle suite appended";
  }
)
