# A lifecycle suite, bundled by archy-gate: `nix build` gives result/archy-gate (the launcher
# with the suite, static bash, jq and bats appended; `name` below is the one in its manifest),
# result/manifest.json and result/SHA256SUMS.
# Made by `nix flake init -t github:archipelago-labs/archy-gate`; rename the suite below.
{
  description = "A lifecycle suite, bundled into one static file by archy-gate";

  inputs.archy-gate.url = "github:archipelago-labs/archy-gate";
  # The nixpkgs archy-gate is tested against (its flake.lock pins nixos-25.11).
  inputs.nixpkgs.follows = "archy-gate/nixpkgs";

  outputs =
    {
      self,
      archy-gate,
      nixpkgs,
    }:
    let
      name = "my-suite";
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
    in
    {
      packages = forAllSystems (pkgs: {
        # The suite as a flake output of its own: also
        #   nix bundle --bundler github:archipelago-labs/archy-gate .#lifecycle
        lifecycle = pkgs.runCommand name { } "cp -R ${./lifecycle} $out";

        default = archy-gate.lib.mkBundle {
          inherit pkgs name;
          lifecycle = ./lifecycle; # its entry: lifecycle/run-gate.sh
          version = "0.1.0";
          sourceDateEpoch = self.lastModified or 315532800;
        };
      });
    };
}
