# TEST INFRASTRUCTURE ONLY: an offline stand-in for nixpkgs, never a way to build a release.
# nix/standin/README.md says, attribute by attribute, which nixpkgs expression each one mirrors
# and which of its awkward properties it reproduces.
#
# scripts/test-nix.sh copies this file into a scratch dir beside
#   inputs/    what `bundle/build.sh --inputs-only` gathers (static jq and bash, bats-core's
#              source tree, the helper libraries, inputs.json), and a static busybox
#   launcher   the static launcher scripts/lib.sh builds
#   host.json  the host's PATH, CARGO_HOME and RUSTUP_HOME (for the one step that compiles)
# and passes the dir as `--override-input nixpkgs path:DIR`.
#
# Two kinds of derivation, as with real nixpkgs:
#   * the packages the flake takes from nixpkgs (bash, jq, bats, ...) stand for what a binary
#     cache would hand over: made here from prebuilt files with the host's tools, outside the
#     sandbox (`__noChroot`, so Nix needs `sandbox = relaxed`), with the properties the real
#     builds have, store paths inside the binaries included (the multi-user Nix of
#     scripts/nix-chroot.sh, with `sandbox = true`, gets them from a binary cache instead);
#   * what the flake itself builds (stdenvNoCC.mkDerivation, runCommand, the check phase of
#     buildRustPackage) runs in the Nix sandbox as nixpkgs' stdenv would: no /usr, the builder
#     uid 1000 (not root), HOME=/homeless-shelter, and only store paths on PATH (a static
#     busybox standing in for stdenv's coreutils, sed, grep, ...).
# aarch64-linux is offered for evaluation only; its derivations cannot be built here.
{
  outputs =
    { self }:
    let
      info = builtins.fromJSON (builtins.readFile ./inputs/inputs.json);
      host = builtins.fromJSON (builtins.readFile ./host.json);
      batsVersion = (builtins.fromJSON (builtins.readFile ./inputs/bats-core/package.json)).version;
      jqVersion = builtins.head (builtins.match "upstream jq ([0-9.]+) .*" info.tools.jq.source);
      scrubbedHash = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

      # Rewrites one NUL-terminated string inside a binary, padding with NULs (the length stays).
      patchString = ''
        patch_string() { # FILE OLD NEW
          OLD=$2 NEW=$3 perl -0777 -pi -e '
            my ($o, $n) = ($ENV{OLD}, $ENV{NEW});
            length($n) <= length($o) or die "stand-in: \"$n\" does not fit in place of \"$o\"\n";
            my $c = s/\Q$o\E\0/$n . ("\0" x (length($o) - length($n) + 1))/ge;
            $c == 1 or die "stand-in: expected \"$o\" once, found it $c times\n";' "$1"
        }
      '';

      forSystem =
        system:
        let
          # A package as a binary cache would hand it over: made with the host's tools, unsandboxed.
          prebuilt =
            attrs:
            builtins.derivation (
              builtins.removeAttrs attrs [ "buildCommand" ]
              // {
                inherit system;
                builder = "/bin/sh";
                args = [
                  "-c"
                  ("PATH=${host.path}; export PATH; set -eu\n" + patchString + attrs.buildCommand)
                ];
                __noChroot = true;
              }
            );

          busybox = prebuilt {
            name = "busybox-standin";
            buildCommand = ''
              mkdir -p $out/bin
              cp ${./inputs/busybox} $out/bin/busybox
              for a in $($out/bin/busybox --list); do
                [ "$a" = busybox ] || ln -s busybox "$out/bin/$a"
              done
              # Debian's busybox has no `install`: coreutils' -d and -m forms, in sh.
              printf '#!%s\n' "$out/bin/sh" >$out/bin/install
              cat >>$out/bin/install <<'EOF'
              set -eu
              mode=0755 dirs=0
              while getopts dm: opt; do
                case $opt in
                  d) dirs=1 ;;
                  m) mode=$OPTARG ;;
                  *) echo "install (stand-in): only -d and -m" >&2; exit 1 ;;
                esac
              done
              shift $((OPTIND - 1))
              if [ "$dirs" = 1 ]; then
                for d in "$@"; do mkdir -p "$d" && chmod "$mode" "$d"; done
                exit 0
              fi
              [ $# -ge 2 ] || { echo "install (stand-in): SOURCE... DEST" >&2; exit 1; }
              eval "dest=\''${$#}"
              while [ $# -gt 1 ]; do
                to=$dest
                [ -d "$dest" ] && to=$dest/''${1##*/}
                rm -f "$to" && cp "$1" "$to" && chmod "$mode" "$to"
                shift
              done
              EOF
              chmod 0555 $out/bin/install
            '';
          };

          # What stdenv builds: in the sandbox, the inputs' bin dirs and busybox on PATH.
          sandboxed =
            attrs:
            let
              inputs = (attrs.nativeBuildInputs or [ ]) ++ (attrs.buildInputs or [ ]);
            in
            builtins.derivation (
              builtins.removeAttrs attrs [
                "buildCommand"
                "passthru"
                "meta"
                "nativeBuildInputs"
                "buildInputs"
              ]
              // {
                inherit system;
                builder = "${busybox}/bin/sh";
                args = [
                  "-c"
                  ("set -eu\n" + attrs.buildCommand)
                ];
                PATH = builtins.concatStringsSep ":" (map (p: "${p}/bin") inputs ++ [ "${busybox}/bin" ]);
              }
            )
            // (attrs.passthru or { });

          # nixpkgs' remove-references-to (pkgs/build-support/remove-references-to): every -t
          # store path's hash becomes 32 'e's in the files named; our own script, same contract.
          removeReferencesTo = prebuilt {
            name = "remove-references-to-standin";
            buildCommand = ''
              mkdir -p $out/bin
              f=$out/bin/remove-references-to
              printf '#!%s\n' "${busybox}/bin/sh" >$f
              cat >>$f <<'EOF'
              set -eu
              hashes=
              while getopts t: opt; do
                [ "$opt" = t ] || exit 1
                h=$(printf '%s\n' "$OPTARG" | sed -n 's|^/nix/store/\([0-9a-z]\{32\}\)-.*|\1|p')
                [ -n "$h" ] || { echo "-t argument must be a Nix store path" >&2; exit 1; }
                hashes="$hashes $h"
              done
              shift $((OPTIND - 1))
              for f in "$@"; do
                [ -f "$f" ] && [ ! -L "$f" ] || continue
                for h in $hashes; do sed -i "s|$h|${scrubbedHash}|g" "$f"; done
              done
              EOF
              chmod 0555 $f
            '';
          };

          # ncurses (pkgs/development/libraries/ncurses/default.nix): its configure never gets
          # --with-default-terminfo-dir or --with-terminfo-dirs, so both default to
          # $out/share/terminfo, a store path compiled into libtinfo, and so into every static
          # binary that links it. readline (pkgs/development/libraries/readline/) links ncurses.
          ncurses =
            prebuilt {
              name = "ncurses-standin";
              buildCommand = "mkdir -p $out/share/terminfo $out/lib";
            }
            // {
              pname = "ncurses";
              version = "standin";
            };
          readline =
            prebuilt {
              name = "readline-standin";
              inherit ncurses;
              buildCommand = "mkdir -p $out/lib && echo $ncurses >$out/lib/.ncurses";
            }
            // {
              pname = "readline";
              version = "standin";
            };

          # pkgsStatic.bash (pkgs/shells/bash/5.nix, 25.11): bin/bash, bin/sh, five outputs.
          # Interactive by default since nixpkgs PR #379368 (`interactive ? true`,
          # --with-installed-readline, readline in buildInputs): a static bash then links
          # readline and ncurses, and carries ncurses' terminfo default, $out/share/terminfo of
          # ncurses, a store path. `interactive = false` is --disable-readline: no ncurses, no
          # terminfo default (bashNonInteractive is that). forFHSEnv only drops bash's own
          # defaults: unless it is set, 5.nix compiles in
          # DEFAULT_LOADABLE_BUILTINS_PATH="$out/lib/bash:." (a store path in the binary) and
          # DEFAULT_PATH_VALUE="/no-such-path". musl means --disable-nls: no locale default.
          # The bytes are Debian's bash-static (interactive, its own static tinfo with the FHS
          # terminfo dirs): the defaults above are patched in place; ncurses' terminfo dir does
          # not fit in place of Debian's, so the interactive stand-in has it appended after the
          # ELF's last byte, where the loader never reads but `launcher pack`'s byte scan does,
          # as it would find it in libtinfo's data in the real build.
          mkBash =
            args@{
              forFHSEnv ? false,
              interactive ? true,
              ...
            }:
            prebuilt (
              {
                name = if interactive then "bash-interactive-standin" else "bash-standin";
                outputs = [
                  "out"
                  "dev"
                  "man"
                  "doc"
                  "info"
                ];
                buildCommand = ''
                  mkdir -p $out/bin $dev $man $doc $info
                  cp ${./inputs/bash} $out/bin/bash
                  chmod u+w $out/bin/bash
                  ln -s bash $out/bin/sh
                ''
                + (
                  if forFHSEnv then
                    ""
                  else
                    ''
                      patch_string $out/bin/bash \
                        /usr/local/lib/bash:/usr/lib/bash:/opt/local/lib/bash:/usr/pkg/lib/bash:/opt/pkg/lib/bash:. \
                        "$out/lib/bash:."
                      patch_string $out/bin/bash \
                        /usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:. /no-such-path
                    ''
                )
                + (
                  if interactive then
                    ''
                      printf '\0%s/share/terminfo\0' "$ncurses" >>$out/bin/bash
                    ''
                  else
                    ""
                );
              }
              // (if interactive then { inherit ncurses readline; } else { })
            )
            // {
              pname = if interactive then "bash-interactive" else "bash";
              version = "standin";
              override = more: mkBash (args // more);
            };
          bash = mkBash { };
          bashNonInteractive = mkBash { interactive = false; };
          bashInteractive = bash;

          # pkgsStatic.jq (pkgs/by-name/jq/jq/package.nix): outputs bin (the default), doc,
          # man, dev, out. jq 1.8 compiles `./config.status --config` into
          # `jq --build-configuration` (src/config_opts.inc); the configure flags name $out
          # (--prefix, from stdenv) and $bin (--bindir, from the package). Its postFixup scrubs
          # dev, man and doc, not bin or out, so bin/jq keeps those two store paths.
          jq =
            prebuilt {
              name = "jq-${jqVersion}";
              outputs = [
                "bin"
                "doc"
                "man"
                "dev"
                "out"
              ];
              buildCommand = ''
                mkdir -p $bin/bin $doc $man $dev $out
                cp ${./inputs/jq} $bin/bin/jq
                chmod u+w $bin/bin/jq
                patch_string $bin/bin/jq "$($bin/bin/jq --build-configuration)" \
                  "'--prefix=$out' '--bindir=$bin/bin'"
              '';
            }
            // {
              pname = "jq";
              version = jqVersion;
            };

          # jq (native, pkgs/by-name/jq/jq/package.nix): dynamically linked against libjq and
          # libonig, as Debian's is; here only ever read as bytes.
          jqDynamic =
            prebuilt {
              name = "jq-dynamic-standin";
              outputs = [
                "bin"
                "out"
              ];
              buildCommand = ''
                mkdir -p $bin/bin $out
                cp ${./inputs/jq-dynamic} $bin/bin/jq
              '';
            }
            // {
              pname = "jq";
              version = "standin";
            };

          # bats (pkgs/by-name/ba/bats/package.nix, resholve.mkDerivation from
          # pkgs/development/misc/resholve/resholve-utils.nix). The inner derivation,
          # `unresholved`, patches shebangs and runs install.sh $out; the outer one, `bats`, has
          # src = unresholved and copies it, then resholve pins every command to a store path.
          batsSrc = ./inputs/bats-core; # fetchFromGitHub's tree: install.sh, LICENSE.md, ...
          unresholved =
            prebuilt {
              name = "bats-unresholved-${batsVersion}";
              buildCommand = ''
                cp -R ${batsSrc} src
                chmod -R u+w src
                cd src
                for f in $(grep -rl '^#!/usr/bin/env bash' .); do
                  sed -i "1s|^#!/usr/bin/env bash|#!${bash}/bin/bash|" "$f"
                done
                ${bash}/bin/bash ./install.sh $out >/dev/null
              '';
            }
            // {
              pname = "bats-unresholved";
              version = batsVersion;
              src = batsSrc;
            };
          bats =
            prebuilt {
              name = "bats-${batsVersion}";
              buildCommand = ''
                # resholve then pins the commands the scripts run to store paths; the
                # shebangs unresholved already has name the store as well, which is enough.
                cp -R ${unresholved} $out
              '';
            }
            // {
              pname = "bats";
              version = batsVersion;
              src = unresholved;
              inherit unresholved;
              originalSrc = unresholved.src;
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

          # bats.libraries.NAME (pkgs/by-name/ba/bats/libraries.nix): share/bats/NAME with
          # load.bash; .src the library's source tree, whose license file stage.sh takes.
          library =
            name:
            prebuilt {
              name = "${name}-${info.tools.${name}.version}";
              buildCommand = ''
                mkdir -p $out/share/bats
                cp -R ${./inputs/lib}/${name} $out/share/bats/${name}
              '';
            }
            // {
              pname = name;
              inherit (info.tools.${name}) version;
              src = prebuilt {
                name = "${name}-src";
                buildCommand = "cp -R ${./inputs/license}/${name} $out";
              };
            };

          # rustPlatform.buildRustPackage (pkgs/build-support/rust/build-rust-package,
          # hooks/). cargoSetupHook writes the platform's target rustflags
          # (-C target-feature=+crt-static for a static host) into .cargo/config.toml; cargo
          # ignores target.<triple>.rustflags when RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS or
          # CARGO_BUILD_RUSTFLAGS is set, so nixpkgs takes extra flags through NIX_RUSTFLAGS,
          # which its rustc wrapper appends. The stand-in runs the caller's preBuild with those
          # rules and refuses a build whose target rustflags cargo would drop.
          target = "x86_64-unknown-linux-musl";
          rustEnv = args: ''
            export NIX_BUILD_CORES=''${NIX_BUILD_CORES:-1}
            [ "$NIX_BUILD_CORES" != 0 ] || NIX_BUILD_CORES=$(nproc)
            export NIX_RUSTFLAGS=
            export CARGO_HOME=${host.cargoHome} RUSTUP_HOME=${host.rustupHome}
            export CC_x86_64_unknown_linux_musl=musl-gcc
            cargoDeps=${host.cargoHome}/registry
            mkdir -p .cargo
            printf '[target.%s]\nrustflags = ["-C", "target-feature=+crt-static"]\n' ${target} \
              >.cargo/config.toml
            printf '#!/bin/sh\nexec rustc "$@" $NIX_RUSTFLAGS\n' >"$NIX_BUILD_TOP/rustc-wrapper"
            chmod +x "$NIX_BUILD_TOP/rustc-wrapper"
            export RUSTC="$NIX_BUILD_TOP/rustc-wrapper"
            runHook() { :; }
            ${args.preBuild or ""}
            for v in RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS; do
              if eval "[ -n \"\''${$v+set}\" ]"; then
                echo "stand-in: preBuild set $v, so cargo drops target.${target}.rustflags (cargoSetupHook's +crt-static); pass extra flags through NIX_RUSTFLAGS" >&2
                exit 1
              fi
            done
          '';
          knownRustArgs = [
            "pname"
            "version"
            "src"
            "doCheck"
            "cargoTestFlags"
            "cargoBuildFlags"
            "checkFlags"
            "cargoLock"
            "preBuild"
            "meta"
            "checkType"
            "buildType"
          ];
          buildRustPackage =
            args:
            let
              name = "${args.pname}-${args.version}";
              # The static launcher is the prebuilt one (scripts/lib.sh): the flake's
              # arguments are checked (preBuild run under cargo's rules), not compiled.
              package = prebuilt {
                inherit name;
                buildCommand = ''
                  test -f ${args.cargoLock.lockFile}
                  cp -R ${args.src} src && chmod -R u+w src && cd src
                  ${rustEnv args}
                  mkdir -p $out/bin
                  cp ${./launcher} $out/bin/launcher
                '';
              };
              # doCheck: the test executables are compiled here with the host's cargo (static,
              # for musl, so they run without /usr), from the flake's src, cargoTestFlags and
              # preBuild, in this output's own dir so that compile-time paths stay valid...
              tests = prebuilt {
                name = "${name}-test-build";
                buildCommand = ''
                  cp -R ${args.src} $out
                  chmod -R u+w $out
                  cd $out
                  ${rustEnv args}
                  export CARGO_TARGET_DIR=$out/target
                  cargo test --no-run --frozen -j "$NIX_BUILD_CORES" --target ${target} \
                    ${if (args.checkType or "release") == "debug" then "--profile dev" else "--release"} \
                    ${toString (args.cargoTestFlags or [ ])} --message-format=json >messages.json
                  ${./inputs/jq} -r 'select(.executable != null and .profile.test)
                    | "\(.executable)\t\(.manifest_path | sub("/Cargo.toml$"; ""))"' \
                    messages.json >tests.list
                  rm -rf messages.json target/debug target/release target/*/*/build \
                    target/*/*/incremental target/*/*/.fingerprint target/*/*/deps/*.rlib \
                    target/*/*/deps/*.rmeta target/*/*/deps/*.d
                  test -s tests.list
                '';
              };
              # ...and run in the sandbox, as cargoCheckHook runs `cargo test`: each in its
              # package dir, with --test-threads and checkFlags, the caller's env set.
              check = sandboxed (
                builtins.removeAttrs args knownRustArgs
                // {
                  inherit name;
                  checkFlags = toString (args.checkFlags or [ ]);
                  nativeBuildInputs = [ bash ];
                  buildCommand = ''
                    threads=''${NIX_BUILD_CORES:-1}
                    [ "$threads" != 0 ] || threads=$(nproc)
                    while IFS="$(printf '\t')" read -r exe dir; do
                      echo "running $exe"
                      (cd "$dir" && "$exe" --test-threads="$threads" $checkFlags)
                    done <${tests}/tests.list
                    mkdir -p $out
                  '';
                }
              );
            in
            (if args.doCheck or false then check else package)
            // {
              inherit (args) pname version;
            };
          rustPlatform = {
            inherit buildRustPackage;
          };

          pkgs = {
            inherit system;
            lib.trivial.revisionWithDefault = _: "standin";

            # legacyPackages.extend (pkgs/top-level/stage.nix): the set with one overlay applied,
            # the overlay seeing the result as final and this set as prev. (Real nixpkgs also
            # applies it inside pkgsStatic and the other package sets; this one does not.)
            extend =
              overlay:
              let
                final = pkgs // overlay final pkgs;
              in
              final;

            # nix/bundle.nix's test hook: the source strings bundle/build.sh writes.
            archyGateStandin = info;

            stdenvNoCC.mkDerivation = sandboxed;
            runCommand =
              name: env: buildCommand:
              sandboxed (env // { inherit name buildCommand; });
            mkShell =
              _:
              sandboxed {
                name = "standin-shell";
                buildCommand = "echo 'the stand-in has no dev shell' >&2; exit 1";
              };

            inherit removeReferencesTo bats rustPlatform;
            jq = jqDynamic;
            pkgsStatic = {
              inherit
                jq
                bash
                bashNonInteractive
                bashInteractive
                ncurses
                readline
                rustPlatform
                ;
            };

            # The flake's dev shell and formatter are evaluated, never built, here.
            cargo = bash;
            rustc = bash;
            clippy = bash;
            rustfmt = bash;
            shellcheck = bash;
            nixfmt = bash;
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
