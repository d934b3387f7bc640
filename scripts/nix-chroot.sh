#!/usr/bin/env bash
# A multi-user Nix, as the CI workflow's Nix is: Debian trixie's nix-bin in a debootstrap
# chroot, a nix-daemon running the builds as build users (build-users-group = nixbld, a
# builder that is not root) in the sandbox (sandbox = true: no __noChroot, `/` not writable by
# the builder). Sourced by scripts/test-nix.sh, not run.
#
# The chroot is made once and kept (with its Nix store) under the same cache dir as
# bundle/build.sh's downloads; a new package list or a failed setup makes it anew. debootstrap
# takes its mirror from this machine's own apt sources.
#
#   nix_chroot_ensure              prints the chroot's path; makes it when missing (~1 min)
#   nix_chroot_run DIR CMD...      runs CMD (a sh command line and its args) as root inside the
#                                  chroot with DIR at /share, a nix-daemon serving it, and
#                                  NIX_REMOTE=daemon; /proc and /dev are mounted, `/` is the
#                                  chroot's own root (pivot_root, so the daemon may make user
#                                  namespaces for the sandbox, which a plain chroot forbids)

readonly NIX_CHROOT_SUITE=trixie
readonly NIX_CHROOT_PACKAGES=nix-bin,libdbi-perl
readonly NIX_CHROOT_BUILD_USERS=4

nix_chroot_dir() {
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/archy-gate/nix-chroot-$NIX_CHROOT_SUITE"
}

# The Debian mirror this machine's apt uses for its own release.
nix_chroot_mirror() {
  local codename mirror
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  # shellcheck disable=SC2016 # apt's own $(SITE) field
  mirror=$(apt-get indextargets --format '$(SITE)' 'Identifier: Packages' "Codename: $codename" | head -n 1)
  [[ -n $mirror ]] || {
    echo "nix-chroot: no apt source for $codename to take a mirror from" >&2
    return 1
  }
  echo "$mirror"
}

nix_chroot_ensure() {
  local dir stamp want tmp
  dir=$(nix_chroot_dir)
  stamp=$dir/.archy-gate-chroot
  want="$NIX_CHROOT_SUITE $NIX_CHROOT_PACKAGES users=$NIX_CHROOT_BUILD_USERS"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "$dir"
    return 0
  fi
  ensure_debian_packages debootstrap
  step "making a $NIX_CHROOT_SUITE chroot with Debian's multi-user Nix (debootstrap, once)"
  tmp=$dir.new
  rm -rf -- "$tmp"
  mkdir -p "$(dirname "$dir")"
  debootstrap --variant=minbase --include="$NIX_CHROOT_PACKAGES" "$NIX_CHROOT_SUITE" "$tmp" \
    "$(nix_chroot_mirror)" >"$tmp.log" 2>&1 || {
    tail -n 20 "$tmp.log" >&2
    return 1
  }
  # Build users, as the multi-user installer makes them (nix-bin alone makes none).
  chroot "$tmp" groupadd --system nixbld
  local i
  for ((i = 1; i <= NIX_CHROOT_BUILD_USERS; i++)); do
    chroot "$tmp" useradd --system --no-create-home --home-dir /var/empty --gid nixbld \
      --groups nixbld --shell /usr/sbin/nologin --comment "Nix build user $i" "nixbld$i"
  done
  mkdir -p "$tmp/etc/nix" "$tmp/share"
  # No network: the one substituter is the binary cache test-nix.sh fills (unsigned, local).
  cat >"$tmp/etc/nix/nix.conf" <<'EOF'
build-users-group = nixbld
sandbox = true
experimental-features = nix-command flakes
substituters = file:///share/binary-cache
require-sigs = false
flake-registry =
warn-dirty = false
eval-cache = false
max-jobs = 1
EOF
  echo "$want" >"$tmp/.archy-gate-chroot"
  rm -rf -- "$dir" "$tmp.log"
  mv -- "$tmp" "$dir"
  echo "$dir"
}

nix_chroot_run() {
  local dir share=$1
  shift
  dir=$(nix_chroot_dir)
  # shellcheck disable=SC2016 # expanded by the inner shells
  CHROOT=$dir SHARE=$share unshare --mount --pid --fork --propagation private -- bash -c '
    set -euo pipefail
    mount --bind "$CHROOT" "$CHROOT"
    mount -t proc proc "$CHROOT/proc"
    mount --rbind /dev "$CHROOT/dev"
    mount -t tmpfs tmpfs "$CHROOT/tmp"
    mount --bind "$SHARE" "$CHROOT/share"
    cd "$CHROOT"
    mkdir -p .old-root
    pivot_root . .old-root
    umount -l /.old-root
    cd /
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp /bin/sh -c "
      nix-daemon >/tmp/nix-daemon.log 2>&1 &
      i=0
      while [ ! -S /nix/var/nix/daemon-socket/socket ]; do
        i=\$((i + 1)); [ \$i -lt 100 ] || { cat /tmp/nix-daemon.log >&2; exit 1; }
        sleep 0.1
      done
      export NIX_REMOTE=daemon
      \"\$@\"" sh "$@"' bash "$@"
}
