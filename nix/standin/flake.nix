# TEST INFRASTRUCTURE ONLY: an offline stand-in for nixpkgs, never a way to build a release.
#
# scripts/test-nix.sh copies this file into a scratch dir beside
#   inputs/    what `bundle/build.sh --inputs-only` gathers (static jq and bash, bats-core's
#              source tree, the helper libraries, inputs.json with their versions and sources)
#   launcher   the static launcher scripts/lib.sh builds
# and passes the dir as `--override-input nixpkgs path:DIR`, so that flake.nix and
# nix/bundle.nix really run here, on machines that cannot have nixpkgs.
#
# It offers only the attributes the flake reads, with nixpkgs' shapes (pkgsStatic.jq with bin/,
# bats.src, bats.libraries.NAME with share/bats/NAME, stdenvNoCC.mkDerivation with
# buildCommand, ...), made from those prebuilt files. Its derivations use the HOST's /bin/sh and
# tools, so it needs `sandbox = false`; real nixpkgs takes everything from the store.
# The launcher is the prebuilt one: buildRustPackage here ignores its arguments (and so it
# cannot run the launcher's tests: the flake's checks are only evaluated against it).
# aarch64-linux is offered for evaluation only; its derivations cannot be built here.
{
  outputs =
    { self }:
    let
      info = builtins.fromJSON (builtins.readFile ./inputs/inputs.json);

      forSystem =
        system:
        let
          # A derivation run by the host's /bin/sh (sandbox off), with the host's tools.
          shDerivation =
            attrs:
            builtins.derivation (
              builtins.removeAttrs attrs [
                "buildCommand"
                "passthru"
                "meta"
              ]
              // {
                inherit system;
                builder = "/bin/sh";
                args = [
                  "-c"
                  ("PATH=/usr/local/bin:/usr/bin:/bin; export PATH\n" + attrs.buildCommand)
                ];
              }
            );
          # A package made by copying prebuilt files, with the attributes nixpkgs has.
          copied =
            name: version: buildCommand: extra:
            shDerivation {
              name = "${name}-${version}-standin";
              inherit buildCommand;
            }
            // {
              inherit version;
              pname = name;
            }
            // extra;

          jq = copied "jq" "standin" "set -eu; mkdir -p $out/bin; cp ${./inputs/jq} $out/bin/jq" { };
          bash = copied "bash" "standin" "set -eu; mkdir -p $out/bin; cp ${./inputs/bash} $out/bin/bash" { };
          library =
            name:
            copied name info.tools.${name}.version
              "set -eu; mkdir -p $out/share/bats; cp -R ${./inputs/lib}/${name} $out/share/bats/${name}"
              {
                # the library's source tree: here just its license file
                src = shDerivation {
                  name = "${name}-src-standin";
                  buildCommand = "set -eu; cp -R ${./inputs/license}/${name} $out";
                };
              };
          pkgs = {
            inherit system;
            lib.trivial.revisionWithDefault = _: "standin";

            # nix/bundle.nix's test hook: the source strings bundle/build.sh writes.
            archyGateStandin = info;

            stdenvNoCC.mkDerivation = shDerivation;
            runCommand =
              name: env: buildCommand:
              shDerivation (env // { inherit name buildCommand; });
            mkShell =
              _:
              shDerivation {
                name = "standin-shell";
                buildCommand = "echo 'the stand-in has no dev shell' >&2; exit 1";
              };

            pkgsStatic = {
              inherit jq bash;
              rustPlatform.buildRustPackage =
                args:
                copied args.pname args.version "set -eu; mkdir -p $out/bin; cp ${./launcher} $out/bin/launcher" { };
            };
            rustPlatform = pkgs.pkgsStatic.rustPlatform;

            bats = {
              version = "standin";
              src = ./inputs/bats-core;
              libraries = builtins.listToAttrs (
                map
                  (name: {
                    inherit name;
                    value = library name;
                  })
                  [
                    "bats-support"
                    "bats-assert"
                    "bats-file"
                  ]
              );
            };

            # The flake's dev shell and formatter are evaluated, never built, here.
            cargo = bash;
            rustc = bash;
            clippy = bash;
            rustfmt = bash;
            shellcheck = bash;
            nixfmt = bash;
            inherit jq;
          };
        in
        pkgs;
    in
    {
      legacyPackages = {
        x86_64-linux = forSystem "x86_64-linux";
        aarch64-linux = forSystem "aarch64-linux";
      };
    };
}
