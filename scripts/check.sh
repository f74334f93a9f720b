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

# The debug kernel takes about 10 minutes to build the first time (22 on a
# slower machine). It is built in the background from the start, at the
# lowest CPU priority, so that it takes only the CPU time the other steps
# leave idle (VM tests wait a lot); the steps that need it wait for it
# (kernel-build.sh locks each kernel), or build it themselves if the
# background build failed. The toolchain comes first: both need it.
debug_bg=
if wanted kunit || wanted upstream-debug || wanted reliability; then
	scripts/toolchain.sh >/dev/null || echo "the toolchain environment failed (the steps will say)"
	mkdir -p "$MH_CACHE"
	nice -n 19 scripts/kernel-build.sh debug >"$MH_CACHE/debug-kernel-build.log" 2>&1 &
	debug_bg=$!
fi
debug_kernel() {
	[ -n "$debug_bg" ] || return 0
	wait "$debug_bg" || {
		echo "the background build of the debug kernel failed (its log, $MH_CACHE/debug-kernel-build.log, ends:)"
		tail -n 20 "$MH_CACHE/debug-kernel-build.log"
	}
	debug_bg=
}

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
wanted kunit && debug_kernel
step kunit tests/run --kernel debug module
# Upstream mode against the C module at a second table size (the debug
# kernel's CONFIG_IP_VS_MH_TAB_INDEX is 11: 2039 slots): the configuration
# without mh-port, with unequal weights, drained and restored (3 x 10 000
# flows; about 2.5 minutes per 10 000 under KASAN).
wanted upstream-debug && debug_kernel
upstream_debug() {
	MH_TRAFFIC_ONLY=upstream-drain-and-restore tests/run --kernel debug traffic:upstream
}
step upstream-debug upstream_debug
wanted reliability && debug_kernel
step reliability tests/run reliability

[ -z "$debug_bg" ] || wait "$debug_bg"
echo
[ "${#mh_failures[@]}" = 0 ] || echo "failed: ${mh_failures[*]}"
echo "check: $mh_passed passed, $mh_failed failed ($(($(date +%s) - start)) s)"
[ "$mh_failed" = 0 ]
