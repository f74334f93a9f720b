#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Fail early, with a message that says what to do, when a kernel tree cannot
# build this Rust module. Usage: check-kdir.sh KDIR [RUSTC]
kdir=$1
rustc=${2:-rustc}
fail() {
	echo "ip_vs_mh_rs: cannot build against $kdir: $*" >&2
	exit 1
}
[ -f "$kdir/.config" ] ||
	fail "no .config there; install the kernel's headers or pass KDIR=<configured kernel build tree>"
grep -q '^CONFIG_RUST=y' "$kdir/.config" ||
	fail "the kernel was built without Rust support (CONFIG_RUST is not set)"
grep -Eq '^CONFIG_IP_VS=(y|m)' "$kdir/.config" ||
	fail "the kernel was built without IPVS (CONFIG_IP_VS is not set)"
[ -f "$kdir/rust/libkernel.rmeta" ] && [ -f "$kdir/scripts/target.json" ] ||
	fail "the tree has no rust/ build artifacts (rust/libkernel.rmeta, scripts/target.json);" \
		"Debian's headers packages lack them: see README.md, 'Debian's stock kernel'"
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$kdir/.config")
have=$("$rustc" --version 2>/dev/null) || fail "'$rustc' is not installed"
[ "$want" = "$have" ] ||
	fail "the kernel was built with '$want' but '$rustc --version' is '$have';" \
		"Rust modules must be built with exactly the kernel's rustc"
exit 0
