#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Every test of the project (`make check`): the userspace workspace, then
# the suites of tests/run on the kernels they need (tests/README.md):
# Debian's stock kernel for everything an operator runs, the debug kernel
# for KUnit and the reliability suite. Prints PASS/FAIL per step and "check:
# N passed, M failed" at the end; exits non-zero if anything failed.
# MH_ONLY="step1 step2" runs some steps only.
source "$(dirname "$0")/lib.sh"
source "$MH_REPO/tests/lib/tally.sh"
set +e
cd "$MH_REPO"
start=$(date +%s)

wanted() { [ -z "${MH_ONLY:-}" ] || [[ " $MH_ONLY " == *" $1 "* ]]; }

# The debug kernel takes 20 to 25 minutes to build the first time on the
# 2-core machine when it has the machine to itself, and is built first, in
# the foreground. (Built in the background at the lowest CPU priority beside
# the VM tests, whose two-CPU guests keep both cores busy under TCG, it took
# 28 to 65 minutes and slowed every step beside it: a cold run came to 89
# minutes and more, at the edge of CI's 90.) Once built it is cached, and
# this takes a second. If it fails, the debug steps fail and say why.
if wanted kunit || wanted upstream-debug || wanted reliability; then
	scripts/toolchain.sh >/dev/null || echo "the toolchain environment failed (the steps will say)"
	mkdir -p "$MH_CACHE"
	debug_start=$(date +%s)
	if scripts/kernel-build.sh debug >"$MH_CACHE/debug-kernel-build.log" 2>&1; then
		echo "the debug kernel is ready ($(($(date +%s) - debug_start)) s)"
	else
		echo "building the debug kernel failed (its log, $MH_CACHE/debug-kernel-build.log, ends:)"
		tail -n 20 "$MH_CACHE/debug-kernel-build.log"
	fi
fi

# Userspace: the Maglev core, mhsim, mhnet.
cargo_checks() {
	cargo fmt --all -- --check &&
		cargo clippy --workspace --all-targets --quiet -- -D warnings &&
		cargo test --workspace &&
		cargo build --workspace --bins --quiet
}
step cargo cargo_checks

# Debian's stock kernel (kernel/kernels' first): builds, the runner, the
# module, namespace teardown, the demo, the traffic tests.
step build tests/run build
step vm-runner tests/run vm-runner
step module tests/run module
step netns tests/run netns
step demo tests/run demo
step traffic tests/run traffic
# The Debian package: built, linted, installed with apt on a fresh trixie
# system with Debian's stock kernel, booted, removed and purged.
step package tests/run package
# The debug kernel (clang, KASAN, lockdep with PROVE_RCU, kmemleak, fault
# injection, panic_on_warn): the module with its KUnit tests, then the
# reliability suite (hostile configurations, every module allocation failed
# in turn, namespace teardown, a long rebuild in one namespace, a short
# soak).
step kunit tests/run --kernel debug module
# Upstream mode against the C module at a second table size (the debug
# kernel's CONFIG_IP_VS_MH_TAB_INDEX is 11: 2039 slots): the configuration
# without mh-port, with unequal weights, drained and restored (3 x 10 000
# flows; about 2.5 minutes per 10 000 under KASAN).
upstream_debug() {
	MH_TRAFFIC_ONLY=upstream-drain-and-restore tests/run --kernel debug traffic:upstream
}
step upstream-debug upstream_debug
step reliability tests/run reliability

echo
[ "${#mh_failures[@]}" = 0 ] || echo "failed: ${mh_failures[*]}"
echo "check: $mh_passed passed, $mh_failed failed ($(($(date +%s) - start)) s)"
[ "$mh_failed" = 0 ]
