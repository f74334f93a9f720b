#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The package test's "fresh trixie machine", made once and cached: a minimal
# Debian trixie root file system (no init system) with Debian's stock kernel
# linux-image-7.3.4+deb13-amd64 and its headers from trixie-backports, the
# tools the VM test uses in it, and, in apt's archive cache, every package
# that `apt install ./ip-vs-mh-rs-dkms_*.deb` will pull (so the test installs
# offline, exactly what apt resolves). Prints the root's path.
#
#   tests/package/rootfs.sh DEB
#
# Keyed by this list, the package's debian/control and the recipe number;
# tests start from a copy-on-write view of it and never change it.
source "$(dirname "$0")/../../scripts/lib.sh"

deb=${1:?usage: $0 DEB}
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
recipe=1
kver=$MH_KVER_DEBIAN
# linux-base: the image needs the backported one (`apt install -t
# trixie-backports` picks it too). initramfs-tools: the image's initramfs
# generator (it brings udev, but no init system is installed: virtme-ng's
# init is the guest's PID 1). busybox-static: virtme-ng's boot initramfs for
# Debian's modular kernel.
pkgs=(
	"linux-image-$kver" "linux-headers-$kver" "linux-base/$MH_SUITE-backports" initramfs-tools
	kmod iproute2 ipvsadm socat procps mount busybox-static
)
key=$(mh_hash "$MH_SUITE" "${pkgs[*]}" "$MH_REPO/debian/control" "recipe $recipe")
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
cp "$deb" "$tmp/root/"
if [ -f /etc/resolv.conf ]; then
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
fi
"$MH_REPO/tests/package/in-root" "$tmp" sh -c '
	apt-get update -qq &&
	apt-get install -qq -y --download-only -o APT::Install-Recommends=true "/root/$1"' _ "$(basename "$deb")" >&2 ||
	die "cannot download the dependencies of $(basename "$deb")"
rm -f "$tmp/root/$(basename "$deb")" "$tmp/etc/resolv.conf"
chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' >"$tmp/.mh-versions"
rm -rf "$root"
mv "$tmp" "$root"
touch "$root/.mh-ready"
log "package test system ready: $(du -sh "$root" | cut -f1)"
echo "$root"
