#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch a Debian linux-source-X.Y package once, keep its tarball and unpack
# it pristine under $MH_CACHE, and print the tree's path. Builds always use
# O=, so the tree is never written to after unpacking (it is made read-only
# to make sure). The tarball stays beside the tree, for the regeneration of
# Debian's kernels' Rust artifacts (scripts/debian-kernel.sh).
#
#   scripts/kernel-source.sh [--package linux-source-X.Y]   (default: lib.sh's)
#   scripts/kernel-source.sh --fetch PACKAGE...             download .debs, print their paths
source "$(dirname "$0")/lib.sh"

# apt-get download of a package from the toolchain's suites into $MH_DL;
# prints the .deb's path. Used for the kernel source, image and headers.
fetch_deb() {
	local pkg=$1 deb
	deb=$(ls "$MH_DL/${pkg}_"*.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		mkdir -p "$MH_DL"
		log "downloading $pkg"
		(cd "$MH_DL" && "$MH_REPO/scripts/in-toolchain" sh -c \
			'apt-get update -qq && apt-get download -qq "$1"' _ "$pkg") >&2 ||
			die "cannot download $pkg"
		deb=$(ls "$MH_DL/${pkg}_"*.deb | tail -n 1)
	fi
	echo "$deb"
}

pkg=$MH_KSRC_PKG
case "${1:-}" in
--fetch)
	shift
	for p in "$@"; do fetch_deb "$p"; done
	exit 0
	;;
--package) pkg=$2 ;;
esac

mh_lock "kernel-source-$pkg"
deb=$(fetch_deb "$pkg")
ver=$(dpkg-deb -f "$deb" Version)
dir="$MH_CACHE/src/$pkg-$ver"
if [ ! -f "$dir/.mh-ready" ]; then
	log "unpacking $pkg $ver"
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp/deb"
	dpkg-deb -x "$deb" "$dir.tmp/deb"
	mv "$dir.tmp/deb/usr/src/$pkg.tar.xz" "$dir.tmp/"
	tar -C "$dir.tmp" -xaf "$dir.tmp/$pkg.tar.xz"
	rm -rf "$dir.tmp/deb"
	mv "$dir.tmp" "$dir"
	chmod -R a-w "$dir/$pkg"
	touch "$dir/.mh-ready"
fi
if [ ! -f "$dir/$pkg.tar.xz" ]; then
	# A tree unpacked by an earlier version of this script, which did not
	# keep the tarball: add it, leaving the tree (and its builds) alone.
	dpkg-deb --fsys-tarfile "$deb" | tar -C "$dir" -xf - --strip-components=3 "./usr/src/$pkg.tar.xz"
fi
echo "$dir/$pkg"
