#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Create (once) the Debian environment (trixie, or $MH_SUITE) that holds the
# kernel's exact Rust toolchain, qemu and the guest's user space, and print
# its path.
#
# The host only needs mmdebstrap. The result is a directory under $MH_CACHE
# keyed by the package list and this script; it is rebuilt when either changes.
source "$(dirname "$0")/lib.sh"

root=$(mh_toolchain_root)
mh_ready_root "$root" toolchain

mirror=$(mh_debian_mirror)
pkgs=$(mh_toolchain_pkgs)
# A stable suite's backports (the kernels); sid has none.
sources=("deb $mirror $MH_SUITE main")
[ "$MH_SUITE" = sid ] || sources+=("deb $mirror $MH_SUITE-backports main")
tmp="$root.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
log "creating the $MH_SUITE toolchain in $root (about two minutes)"
# sid's Release file carries a Valid-Until date, which the registry's copy
# can be past (seen: 25 days); the stable suites' have none. The check is
# off in the environment (mmdebstrap keeps the option in its apt.conf.d).
mmdebstrap --mode=root --variant=apt --quiet \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--include="$pkgs" \
	"$MH_SUITE" "$tmp" "${sources[@]}" >&2 ||
	die "mmdebstrap failed"

# The kernel's Rust symbols are tied to one exact rustc: refuse anything else.
have=$(chroot "$tmp" rustc --version)
if [ -n "$MH_RUSTC_WANT" ] && [[ "$have" != "rustc $MH_RUSTC_WANT "* ]]; then
	rm -rf "$tmp"
	die "the $MH_SUITE rustc is '$have', the kernel needs $MH_RUSTC_WANT"
fi
chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' >"$tmp/.mh-versions"
rm -rf "$root"
mv "$tmp" "$root"
touch "$root/.mh-ready"
log "toolchain ready: $have"
echo "$root"
