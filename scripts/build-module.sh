#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build ip_vs_mh_rs.ko for a kernel build tree inside the toolchain
# environment, in a private copy of the sources (one per kernel tree, so
# builds for several kernels never share objects), and print the .ko path.
#
#   scripts/build-module.sh [--test-hooks] KDIR [clippy]
#
# --test-hooks builds the test-only code in (MH_RS_TEST_HOOKS=1, see Kbuild).
source "$(dirname "$0")/lib.sh"

hooks=0
[ "${1:-}" = --test-hooks ] && { hooks=1; shift; }
kdir=$1
target=${2:-modules}
[ -d "$kdir" ] || die "no kernel tree $kdir"
out="$MH_CACHE/module/$(mh_hash "$kdir" "test hooks $hooks")"
mkdir -p "$out"
# The module's sources: what Kbuild and the crate need, nothing else.
(cd "$MH_REPO" && tar -cf - Kbuild Makefile ip_vs_mh_rs.rs bindings maglev/maglev.rs scripts/check-kdir.sh) |
	tar -C "$out" -xf -
make_target=module
[ "$target" = clippy ] && make_target=clippy
what=$make_target
[ "$hooks" = 1 ] && what+=", test hooks"
log "building ip_vs_mh_rs.ko ($what) for $kdir"
"$MH_REPO/scripts/in-toolchain" make -s -C "$out" KDIR="$kdir" MH_RS_TEST_HOOKS="$hooks" "$make_target" >&2 ||
	die "module build failed"
echo "$out/ip_vs_mh_rs.ko"
