#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The package test's "fresh trixie machine", made once per kernel and
# cached: a minimal Debian trixie root file system (no init system) with one
# of Debian's kernels (linux-image-KVER and its headers, from
# trixie-backports), the tools the VM test uses in it, and, in apt's archive
# cache, every package that `apt install ./ip-vs-mh-rs-dkms_*.deb
# SOURCE_PACKAGE` will pull (so the test installs offline, exactly what apt
# resolves). Prints the root's path.
#
#   tests/package/rootfs.sh [--download "PACKAGE..."] DEB KVER SOURCE_PACKAGE [PACKAGE...]
#   tests/package/rootfs.sh --fleet KVER [PACKAGE...]
#
# --fleet: a load balancer of a fleet, which gets the binary module package:
# the kernel's image and the test's tools only (no headers, no compiler, no
# DKMS). PACKAGEs: more to install, such as another kernel. --download:
# packages put in apt's archive cache beside the package's needs, for the
# test to install offline (a kernel upgrade).
#
# Keyed by this list, the package's debian/control and the recipe number;
# tests start from a copy-on-write view of it and never change it.
source "$(dirname "$0")/../../scripts/lib.sh"

fleet= download=
if [ "${1:-}" = --download ]; then
	download=$2
	shift 2
fi
if [ "${1:-}" = --fleet ]; then
	[ $# -ge 2 ] || die "usage: $0 --fleet KVER [PACKAGE...]"
	fleet=1 deb= kver=$2 srcpkg=
	shift 2
else
	[ $# -ge 3 ] || die "usage: $0 DEB KVER SOURCE_PACKAGE [PACKAGE...]"
	deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	kver=$2 srcpkg=$3
	shift 3
fi
recipe=1
# linux-base: the image needs the backported one (`apt install -t
# trixie-backports` picks it too). initramfs-tools: the image's initramfs
# generator (it brings udev, but no init system is installed: virtme-ng's
# init is the guest's PID 1). busybox-static: virtme-ng's boot initramfs for
# Debian's modular kernel. jq: the guest asks mhsim's JSON.
pkgs=(
	"linux-image-$kver" "linux-base/$MH_SUITE-backports" initramfs-tools
	kmod iproute2 ipvsadm socat procps mount busybox-static jq "$@"
)
[ -n "$fleet" ] || pkgs+=("linux-headers-$kver")
key=$(mh_hash "$MH_SUITE" "${pkgs[*]}" "$srcpkg" ${fleet:+fleet} "download $download" "$MH_REPO/debian/control" "recipe $recipe")
root="$MH_CACHE/pkgroot-$MH_SUITE-$key/root"
mh_ready_root "$root" "pkgroot-$key"

mirror=$(mh_debian_mirror)
tmp="$root.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
log "creating the package test's $MH_SUITE system with $kver in $root (about 3 minutes)"
mmdebstrap --mode=root --variant=apt --quiet \
	--include="$(IFS=,; echo "${pkgs[*]}")" \
	"$MH_SUITE" "$tmp" \
	"deb $mirror $MH_SUITE main" \
	"deb $mirror $MH_SUITE-backports main" >&2 ||
	die "mmdebstrap failed"

# What `apt install ./deb` will want, downloaded now (Recommends included, as
# apt does by default).
if [ -z "$fleet" ]; then
	cp "$deb" "$tmp/root/"
	if [ -f /etc/resolv.conf ]; then
		cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	fi
	"$MH_REPO/tests/package/in-root" "$tmp" sh -c '
		apt-get update -qq &&
		apt-get install -qq -y --download-only -o APT::Install-Recommends=true "/root/$1" $2' \
		_ "$(basename "$deb")" "$srcpkg $download" >&2 ||
		die "cannot download the dependencies of $(basename "$deb")"
	rm -f "$tmp/root/$(basename "$deb")" "$tmp/etc/resolv.conf"
fi
chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' >"$tmp/.mh-versions"
rm -rf "$root"
mv "$tmp" "$root"
touch "$root/.mh-ready"
log "package test system ready: $(du -sh "$root" | cut -f1)"
echo "$root"
