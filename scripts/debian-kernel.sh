#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# One of Debian's stock kernels made usable for this project, once:
#
#   scripts/debian-kernel.sh [KVER [SOURCE_PACKAGE]]
#       (default: lib.sh's 7.3.4+deb13-amd64 and linux-source-7.3)
#
#   image/  the kernel and its modules (linux-binary-unsigned-KVER,
#           linux-modules-KVER), vmlinuz a link to the kernel image
#   build   a link to the kernel build tree a module is built against: the
#           one the package's DKMS build makes from linux-headers-KVER and
#           the matching linux-source (scripts/dkms-build.sh
#           --prepare-only, the same code), with the Rust artifacts
#           Debian's headers lack; it is accepted only if every Rust symbol
#           name it exports equals the one in Debian's Module.symvers
#
# Prints the directory holding image/ and build.
source "$(dirname "$0")/lib.sh"

kver=${1:-$MH_KVER_DEBIAN}
srcpkg=${2:-$MH_KSRC_PKG}
pkgs=("linux-binary-unsigned-$kver" "linux-modules-$kver" "linux-headers-$kver")
src=$("$MH_REPO/scripts/kernel-source.sh" --package "$srcpkg")
root=$(mh_toolchain_root)
versions=$(grep -E '^(rustc|rust-src|bindgen|gcc-[0-9]+|clang-[0-9]+) ' "$root/.mh-versions")
key=$(mh_hash "$src" "$kver" "recipe $MH_RECIPE_DEBIAN" "$versions" "$MH_REPO/scripts/dkms-build.sh")
out="$MH_CACHE/debian-$kver-$key"
mh_lock "debian-kernel-$kver"
if [ -f "$out/.mh-ready" ]; then
	echo "$out"
	exit 0
fi

debs=()
for p in "${pkgs[@]}"; do debs+=("$("$MH_REPO/scripts/kernel-source.sh" --fetch "$p")"); done
rm -rf "$out"
mkdir -p "$out/image" "$out/headers"
dpkg-deb -x "${debs[0]}" "$out/image"
dpkg-deb -x "${debs[1]}" "$out/image"
dpkg-deb -x "${debs[2]}" "$out/headers"
# Usr-merged packages put modules under usr/lib; the runner looks in lib/.
if [ -d "$out/image/usr/lib/modules" ] && [ ! -e "$out/image/lib/modules" ]; then
	mkdir -p "$out/image/lib"
	ln -s ../usr/lib/modules "$out/image/lib/modules"
fi
kimg=$(ls "$out/image/usr/lib/modules/$kver/vmlinuz"* "$out/image/boot/vmlinuz-$kver" 2>/dev/null | head -n 1 || true)
[ -n "$kimg" ] || die "no kernel image for $kver in ${debs[0]}"
ln -s "${kimg#"$out"/}" "$out/vmlinuz"
hdr="$out/headers/usr/src/linux-headers-$kver"
[ -f "$hdr/.config" ] && [ -f "$hdr/Module.symvers" ] ||
	die "linux-headers-$kver has no .config or Module.symvers"

log "preparing the build tree of $kver as the package's DKMS build does (about 2 minutes)"
kdir=$("$MH_REPO/scripts/in-toolchain" env IP_VS_MH_RS_STATE="$out/state" \
	IP_VS_MH_RS_SRCDIR="$(dirname "$src")" \
	"$MH_REPO/scripts/dkms-build.sh" --prepare-only -j"$(($(nproc) + 1))" "$kver" "$hdr") ||
	die "the DKMS build script could not prepare $kver's build tree"
[ -f "$kdir/rust/libkernel.rmeta" ] || die "no Rust artifacts in $kdir"
ln -s "$kdir" "$out/build"
touch "$out/.mh-ready"
echo "$out"
