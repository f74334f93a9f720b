#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make KDIR=...` must stop early, with a message saying what to do, for
# kernel trees that cannot build the module. Runs on the host; no kernel
# build needed (the trees are made up, except the rustc mismatch case).
#   tests/build/kdir-checks.sh [REAL_KDIR_WITH_RUST]
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
real=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

expect_fail() {
	local name=$1 kdir=$2 pattern=$3
	shift 3
	local out
	if out=$(make -s -C "$repo" KDIR="$kdir" "$@" module 2>&1); then
		echo "FAIL $name: make succeeded"
		failed=$((failed + 1))
	elif ! grep -q -- "$pattern" <<<"$out"; then
		echo "FAIL $name: message does not say '$pattern':"
		sed 's/^/    /' <<<"$out" | head -n 5
		failed=$((failed + 1))
	else
		echo "PASS $name: $(grep -m1 -- "$pattern" <<<"$out")"
		passed=$((passed + 1))
	fi
}

mkdir -p "$tmp/none" "$tmp/norust" "$tmp/noipvs" "$tmp/noartifacts/rust" "$tmp/noartifacts/scripts"
expect_fail "no configured tree" "$tmp/none" "no .config there"
printf 'CONFIG_IP_VS=m\n# CONFIG_RUST is not set\n' >"$tmp/norust/.config"
expect_fail "kernel without Rust" "$tmp/norust" "without Rust support"
printf 'CONFIG_RUST=y\n' >"$tmp/noipvs/.config"
expect_fail "kernel without IPVS" "$tmp/noipvs" "without IPVS"
printf 'CONFIG_RUST=y\nCONFIG_IP_VS=m\n' >"$tmp/noartifacts/.config"
expect_fail "headers without rust/ artifacts" "$tmp/noartifacts" "no rust/ build artifacts"
if [ -n "$real" ]; then
	# A real Rust tree, but a rustc that is not the kernel's: a fake one.
	printf '#!/bin/sh\necho "rustc 1.99.0 (000000000 2099-01-01)"\n' >"$tmp/rustc"
	chmod +x "$tmp/rustc"
	expect_fail "rustc differs from the kernel's" "$real" "Rust modules must be built with exactly the kernel's rustc" RUSTC="$tmp/rustc"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
