#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch Debian's linux-source-7.3 (trixie-backports) once, unpack it pristine
# under $MH_CACHE and print the tree's path. Builds always use O=, so the tree
# is never written to after unpacking (it is made read-only to make sure).
source "$(dirname "$0")/lib.sh"

# apt-get download of a package from the toolchain's suites into $MH_CACHE/dl;
# prints the .deb's path. Used for the kernel source, image and headers.
fetch_deb() {
	local pkg=$1 deb
	deb=$(ls "$MH_CACHE/dl/${pkg}_"*.deb 2>/dev/null | tail -n 1 || true)
	if [ -z "$deb" ]; then
		mkdir -p "$MH_CACHE/dl"
		log "downloading $pkg"
		(cd "$MH_CACHE/dl" && "$MH_REPO/scripts/in-toolchain" sh -c \
			'apt-get update -qq && apt-get download -qq "$1"' _ "$pkg") >&2 ||
			die "cannot download $pkg"
		deb=$(ls "$MH_CACHE/dl/${pkg}_"*.deb | tail -n 1)
	fi
	echo "$deb"
}

if [ "${1:-}" = "--fetch" ]; then
	shift
	for p in "$@"; do fetch_deb "$p"; done
	exit 0
fi

mh_lock kernel-source
deb=$(fetch_deb "$MH_KSRC_PKG")
ver=$(dpkg-deb -f "$deb" Version)
dir="$MH_CACHE/src/$MH_KSRC_PKG-$ver"
if [ ! -f "$dir/.mh-ready" ]; then
	log "unpacking $MH_KSRC_PKG $ver"
	rm -rf "$dir" "$dir.tmp"
	mkdir -p "$dir.tmp/deb"
	dpkg-deb -x "$deb" "$dir.tmp/deb"
	tar -C "$dir.tmp" -xaf "$dir.tmp/deb/usr/src/$MH_KSRC_PKG.tar.xz"
	rm -rf "$dir.tmp/deb"
	mv "$dir.tmp" "$dir"
	chmod -R a-w "$dir/$MH_KSRC_PKG"
	touch "$dir/.mh-ready"
fi
echo "$dir/$MH_KSRC_PKG"
