{
  description = "archy-gate: Archy's lifecycle gate, with everything it needs, as one static file";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f nixpkgs.legacyPackages.${system};
          }) systems
        );

      # The launcher: static (musl) from pkgsStatic, or native for running its tests.
      launcherFor = pkgs: import ./nix/launcher.nix { inherit (pkgs.pkgsStatic) rustPlatform; };

      # A bundle of any lifecycle suite, for Archy's own flake:
      #   archy-gate.lib.mkBundle { pkgs = nixpkgs.legacyPackages.${system};
      #                             lifecycle = ./tests/lifecycle; }
      # Optional: launcher, name, version, entry, sourceDateEpoch (see nix/bundle.nix).
      mkBundle =
        args@{ pkgs, lifecycle, ... }: import ./nix/bundle.nix ({ launcher = launcherFor pkgs; } // args);

      bundleFor =
        pkgs:
        mkBundle {
          inherit pkgs;
          lifecycle = ./bundle/lifecycle;
          # the commit time, as bundle/build.sh takes it
          sourceDateEpoch = self.lastModified or 315532800;
          # flake.lock's nixpkgs, named in the bundle's provenance
          nixpkgsLock = {
            rev = nixpkgs.rev or "unknown";
            narHash = nixpkgs.narHash or null;
          };
        };
      # A bundle's name from the suite a bundler is given: a derivation's pname or name.
      suiteName =
        suite:
        suite.pname or (
          if builtins.isAttrs suite && suite ? name then
            (builtins.parseDrvName suite.name).name
          else
            "archy-gate"
        );
    in
    {
      lib = { inherit mkBundle; };

      # `nix bundle --bundler github:archipelago-labs/archy-gate .#my-suite`: a flake output that
      # is a lifecycle dir (a derivation or a path, its entry lifecycle/run-gate.sh) becomes a
      # gate bundle through lib.mkBundle, as NixOS/bundlers' toArx turns a closure into one file.
      bundlers = forAllSystems (pkgs: rec {
        toGateBundle =
          suite:
          mkBundle {
            inherit pkgs;
            lifecycle = suite;
            name = suiteName suite;
          };
        default = toGateBundle;
      });

      # `nix flake init -t github:archipelago-labs/archy-gate`: a lifecycle suite wired to
      # lib.mkBundle.
      templates.default = {
        path = ./nix/template;
        description = "A lifecycle suite, bundled into one static file by archy-gate's lib.mkBundle";
        welcomeText = ''
          A lifecycle suite: lifecycle/run-gate.sh runs lifecycle/tests/*.bats.
          `nix build` bundles it into result/archy-gate (its manifest names it my-suite).
        '';
      };

      # Adds the static launcher to a package set: `nixpkgs.legacyPackages.${system}.extend
      # archy-gate.overlays.default`, or `overlays = [ archy-gate.overlays.default ]`.
      overlays.default = final: prev: { archy-gate-launcher = launcherFor final; };

      packages = forAllSystems (pkgs: rec {
        launcher = launcherFor pkgs;
        bundle = bundleFor pkgs;
        default = bundle;
      });

      apps = forAllSystems (pkgs: rec {
        # `nix run . -- inspect`: the single file is itself the launcher.
        archy-gate = {
          type = "app";
          program = "${bundleFor pkgs}/archy-gate";
          meta.description = "The bundle: the launcher with the gate appended";
        };
        launcher = {
          type = "app";
          program = "${launcherFor pkgs}/bin/launcher";
          meta.description = "The launcher alone (pack, fleet, ...)";
        };
        default = archy-gate;
      });

      checks = forAllSystems (
        pkgs:
        let
          launcher = launcherFor pkgs;
          bundle = bundleFor pkgs;
        in
        {
          # Builds only if pack accepts every staged file (static, no live store path) and the
          # three outputs refer to no store path (allowedReferences = [ ]).
          inherit bundle;

          # The bundle verifies against its own SHA256SUMS and unpacks with its own launcher.
          # Signed here with a key made for the check, and verified with --trust: without a
          # --trust, verify reads the node's trust file, walking from /, and on a multi-user Nix
          # the sandbox's / and /etc belong to host root, a uid the sandbox does not map (seen
          # as 65534), which the trust rule refuses (scripts/test-nix.sh pins that).
          bundle-verify = pkgs.runCommand "archy-gate-bundle-verify" { } ''
            set -eu
            pin=$(sed -n 's/ .*archy-gate$//p' ${bundle}/SHA256SUMS)
            ${bundle}/archy-gate keygen --secret "$TMPDIR/check.key" --public "$TMPDIR/check.pub"
            ${bundle}/archy-gate sign ${bundle}/archy-gate --key "$TMPDIR/check.key" --out "$TMPDIR/signed"
            ${bundle}/archy-gate verify "$TMPDIR/signed" --sha256 "$pin" --trust "$TMPDIR/check.pub"
            ${bundle}/archy-gate extract ${bundle}/archy-gate --to "$TMPDIR/x"
            test -x "$TMPDIR/x/bin/bash" && test -x "$TMPDIR/x/bin/jq"
            touch "$out"
          '';

          # The launcher's black-box tests that need no root, network or bare node, run by
          # cargo against a native build in the build sandbox (no /usr, not root), with the
          # static launcher to head bundles and nixpkgs' (dynamically linked) jq to refuse.
          launcher-tests = import ./nix/launcher.nix {
            inherit (pkgs) rustPlatform;
            doCheck = true;
            extraArgs = {
              ARCHY_GATE_STATIC_LAUNCHER = "${launcher}/bin/launcher";
              ARCHY_GATE_DYNAMIC_ELF = "${pkgs.jq}/bin/jq";
              checkType = "debug";
              # Plays the node's other user (chown to uid 65534), which a non-root builder
              # cannot: scripts/test.sh runs it, as root.
              checkFlags = [
                "--skip"
                "fleet::remote_dir::tests"
              ];
            };
            # The unit tests, and the test binary without its host-tests modules: what is
            # left (pack, verify, bad_bundles) needs no root, network or bare node.
            cargoTestFlags = [
              "-p"
              "launcher"
              "--no-default-features"
              "--bins"
              "--test"
              "it"
            ];
          };
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.shellcheck
            pkgs.nixfmt
            pkgs.jq
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
