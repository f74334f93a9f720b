#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds of the module that make check does not otherwise make, inside the
# toolchain environment, against a kernel tree KDIR:
#   - with a separate output directory (kbuild's MO=): the crate finds the
#     files bindgen generated in the output directory, not beside its
#     sources;
#   - the package's build has none of the test-only code (Kbuild's
#     MH_RS_TEST_HOOKS, MH_RS_ALT_NAME), the tests' build has it;
#   - against a kernel without /proc (CONFIG_PROC_FS=n), the module builds
#     and calls none of the kernel's /proc functions.
#   tests/build/module-builds.sh KDIR
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/tests/lib/tally.sh"
kdir=$1
cache=${MH_CACHE:-/var/cache/ip-vs-mh-rs}
mkdir -p "$cache/run"
tmp=$(mktemp -d "$cache/run/module-builds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A read-only copy of the sources, and an output directory elsewhere.
mkdir -p "$tmp/src" "$tmp/out"
(cd "$repo" && tar -cf - Kbuild Makefile ip_vs_mh_rs.rs bindings maglev/maglev.rs scripts/check-kdir.sh) |
	tar -C "$tmp/src" -xf -
chmod -R a-w "$tmp/src"
separate_output() {
	"$repo/scripts/in-toolchain" make -s -C "$kdir" M="$tmp/src" MO="$tmp/out" modules &&
		[ -f "$tmp/out/ip_vs_mh_rs.ko" ] && [ -f "$tmp/out/bindings/generated.rs" ] &&
		[ ! -e "$tmp/src/bindings/generated.rs" ]
}
check "the module builds with a separate, read-only-source output directory (MO=)" separate_output

# Symbols only the test hooks define (the RCU callback delay; the per-CPU
# fault point exists only in kernels with fault injection).
hook_symbols() { "$repo/scripts/in-toolchain" nm "$1" | grep -cE 'test_hooks|mh_rs_fail_percpu'; }
package_build() {
	local ko n alt
	ko=$("$repo/scripts/build-module.sh" "$kdir") || return 1
	n=$(hook_symbols "$ko")
	# The test build named "mhrs" (Kbuild's MH_RS_ALT_NAME) is not it either.
	alt=$("$repo/scripts/in-toolchain" strings "$ko" | grep -cx mhrs)
	echo "$n test-hook symbols, scheduler name mhrs $alt times in $ko"
	[ "$n" = 0 ] && [ "$alt" = 0 ]
}
check "the package's build has no test hooks (no fault point, no delayed RCU callbacks, not named mhrs)" package_build
hooks_build() {
	local ko n
	ko=$("$repo/scripts/build-module.sh" --test-hooks "$kdir") || return 1
	n=$(hook_symbols "$ko")
	echo "$n test-hook symbols in $ko"
	[ "$n" -gt 0 ]
}
check "the tests' build has them" hooks_build
alt_build() {
	local ko n
	ko=$("$repo/scripts/build-module.sh" --alt-name "$kdir") || return 1
	n=$("$repo/scripts/in-toolchain" strings "$ko" | grep -cx mhrs)
	echo "scheduler name mhrs $n times in $ko"
	[ "$n" -gt 0 ]
}
check "the test build named mhrs is (the check above can see the name)" alt_build

# Without CONFIG_PROC_FS the kernel's /proc functions are inline stubs and
# the module makes no file (bindings/helpers.c): its build for such a tree
# (the test kernel's configuration without /proc, prepared for module
# builds only, kernel/noproc.config) references none of them, where the
# build for Debian's kernel references both. (The tree has no
# Module.symvers: modpost only warns about the kernel's symbols.)
proc_calls() { "$repo/scripts/in-toolchain" nm -u "$1" | grep -cE ' (proc_create_net_single|remove_proc_entry)$' || true; }
noproc_build() {
	local tree with without
	tree=$("$repo/scripts/kernel-build.sh" noproc) || return 1
	grep -qx '# CONFIG_PROC_FS is not set' "$tree/.config" || { echo "$tree has CONFIG_PROC_FS"; return 1; }
	mkdir -p "$tmp/noproc"
	"$repo/scripts/in-toolchain" make -s -C "$tree" M="$tmp/src" MO="$tmp/noproc" \
		KBUILD_MODPOST_WARN=1 modules 2>&1 | grep -v 'undefined!$' || true
	[ -f "$tmp/noproc/ip_vs_mh_rs.ko" ] || { echo "no module built"; return 1; }
	without=$(proc_calls "$tmp/noproc/ip_vs_mh_rs.ko")
	with=$(proc_calls "$("$repo/scripts/build-module.sh" "$kdir")") || return 1
	echo "/proc functions called: $without without CONFIG_PROC_FS, $with with it (Debian's kernel)"
	[ "$without" = 0 ] && [ "$with" = 2 ]
}
check "the module builds for a kernel without /proc and calls no /proc function there" noproc_build
finish
