#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build ip_vs_mh_rs.ko for a kernel build tree inside the toolchain
# environment, in a private copy of the sources (one per kernel tree, so
# builds for several kernels never share objects), and print the .ko path.
#
#   scripts/build-module.sh [--test-hooks] [--alt-name] KDIR [clippy]
#
# --test-hooks builds the test-only code in (MH_RS_TEST_HOOKS=1, see Kbuild);
# --alt-name registers the scheduler as "mhrs" (MH_RS_ALT_NAME=1), for tests
# that load it beside the in-tree C "mh".
source "$(dirname "$0")/lib.sh"

hooks=0 alt=0
while [ $# -gt 0 ]; do
	case "$1" in
	--test-hooks) hooks=1; shift ;;
	--alt-name) alt=1; shift ;;
	*) break ;;
	esac
done
kdir=$1
target=${2:-modules}
[ -d "$kdir" ] || die "no kernel tree $kdir"
key=$(mh_hash "$kdir" "test hooks $hooks")
[ "$alt" = 1 ] && key=$(mh_hash "$kdir" "test hooks $hooks" "alt name")
out="$MH_CACHE/module/$key"
mkdir -p "$out"
# The module's sources: what Kbuild and the crate need, nothing else. A
# file is copied only if its content differs from the copy's, and then gets
# the time of this copy: make rebuilds what it changes even when the
# checkout it comes from is older than the objects of another's build.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
(cd "$MH_REPO" && tar -cf - Kbuild Makefile ip_vs_mh_rs.rs bindings maglev/maglev.rs scripts/check-kdir.sh) |
	tar -C "$stage" -xf -
(cd "$stage" && find . -type f) | while read -r f; do
	cmp -s "$stage/$f" "$out/$f" && continue
	mkdir -p "$(dirname "$out/$f")"
	cp "$stage/$f" "$out/$f"
done
make_target=module
[ "$target" = clippy ] && make_target=clippy
what=$make_target
[ "$hooks" = 1 ] && what+=", test hooks"
[ "$alt" = 1 ] && what+=", named mhrs"
log "building ip_vs_mh_rs.ko ($what) for $kdir"
"$MH_REPO/scripts/in-toolchain" make -s -C "$out" KDIR="$kdir" MH_RS_TEST_HOOKS="$hooks" \
	MH_RS_ALT_NAME="$alt" "$make_target" >&2 ||
	die "module build failed"
echo "$out/ip_vs_mh_rs.ko"
