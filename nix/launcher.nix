# The launcher, built by nixpkgs' rustPlatform from the workspace and its Cargo.lock. Called
# with pkgsStatic's rustPlatform it is a static musl executable (what a bundle needs); with a
# native rustPlatform and doCheck it runs the launcher's tests (the flake's checks).
{
  rustPlatform,
  doCheck ? false,
  # more buildRustPackage arguments (the checks: test environment, checkType)
  extraArgs ? { },
  cargoTestFlags ? [ ],
}:
let
  root = ../.;
  # Only what the crate build reads: a change to docs, nix/ or the suite rebuilds nothing.
  # xtask/ is never built here (-p launcher), but cargo loads every workspace member.
  keep = [
    "Cargo.toml"
    "Cargo.lock"
    "launcher"
    "xtask"
  ];
  src = builtins.path {
    name = "archy-gate-launcher-src";
    path = root;
    filter =
      path: _type:
      let
        rel = builtins.substring (builtins.stringLength (toString root) + 1) (-1) (toString path);
        top = builtins.head (builtins.split "/" rel);
      in
      builtins.elem top keep;
  };
  cargoToml = builtins.fromTOML (builtins.readFile ../launcher/Cargo.toml);
in
rustPlatform.buildRustPackage (
  extraArgs
  // {
    pname = "launcher";
    inherit (cargoToml.package) version;
    inherit src doCheck cargoTestFlags;
    cargoLock.lockFile = ../Cargo.lock;
    cargoBuildFlags = [
      "-p"
      "launcher"
    ];
    # Build paths must not reach the binary (panic locations name source files): the build
    # dir and the vendored crates are remapped, so the executable names no store path.
    # Through NIX_RUSTFLAGS, which nixpkgs' rustc wrapper appends: RUSTFLAGS would make cargo
    # drop the target rustflags cargoSetupHook writes (+crt-static for pkgsStatic).
    preBuild = ''
      export NIX_RUSTFLAGS="''${NIX_RUSTFLAGS:-} --remap-path-prefix=$NIX_BUILD_TOP=/build"
      if [ -n "''${cargoDeps:-}" ]; then
        NIX_RUSTFLAGS="$NIX_RUSTFLAGS --remap-path-prefix=$(readlink -f "$cargoDeps")=/cargo"
      fi
    '';
    meta = {
      description = "Packs, verifies, unpacks and runs the archy-gate test bundle on Archy nodes";
      mainProgram = "launcher";
    };
  }
)
