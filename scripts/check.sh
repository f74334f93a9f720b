#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Every test of the project (`make check`): the userspace workspace, the
# module's build and lints for both kernels, the tests in booted kernels
# (smoke, statistics, demo, traffic), the Debian package's, and the
# reliability suite in the debug kernel.
# Prints PASS/FAIL per step and "N passed, M failed" at the end; exits
# non-zero if anything failed. MH_CHECK_ONLY="step1 step2" runs a subset.
source "$(dirname "$0")/lib.sh"
set +e
cd "$MH_REPO"

passed=0 failed=0 failures=()
step() {
	local name=$1
	shift
	if [ -n "${MH_CHECK_ONLY:-}" ] && ! [[ " $MH_CHECK_ONLY " == *" $name "* ]]; then
		return 0
	fi
	local start=$(date +%s)
	echo "=== $name"
	"$@"
	local rc=$?
	local secs=$(($(date +%s) - start))
	if [ "$rc" = 0 ]; then
		echo "PASS $name (${secs}s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name (${secs}s, exit $rc)"
		failed=$((failed + 1))
		failures+=("$name")
	fi
	return "$rc"
}

# The debug kernel takes about 20 minutes to build the first time. It is
# built in the background from the start, at the lowest CPU priority, so it
# takes only the CPU time the other steps leave idle (VM tests wait a lot);
# the debug-kernel step then waits for it (kernel-build.sh locks each
# kernel), and builds it itself if the background build failed.
debug_bg=
if [ -z "${MH_CHECK_ONLY:-}" ] || [[ " $MH_CHECK_ONLY " == *" debug-kernel "* ]] ||
	[[ " $MH_CHECK_ONLY " == *" reliability "* ]]; then
	mkdir -p "$MH_CACHE"
	nice -n 19 scripts/kernel-build.sh debug >"$MH_CACHE/debug-kernel-build.log" 2>&1 &
	debug_bg=$!
fi

# Userspace: the Maglev core, mhsim, mhnet.
cargo_checks() {
	cargo fmt --all -- --check &&
		cargo clippy --workspace --all-targets --quiet -- -D warnings &&
		cargo test --workspace &&
		cargo build --workspace --bins --quiet
}
step cargo cargo_checks

# The kernel side.
test_kdir=
build_test_kernel() { test_kdir=$(scripts/kernel-build.sh test); }
step test-kernel build_test_kernel

module_test_kernel() { scripts/build-module.sh "$test_kdir" >/dev/null; }
module_lints() {
	scripts/build-module.sh "$test_kdir" clippy >/dev/null &&
		scripts/in-toolchain rustfmt --check --config-path .rustfmt.toml ip_vs_mh_rs.rs &&
		scripts/in-toolchain perl "$(scripts/kernel-source.sh)/scripts/checkpatch.pl" \
			--no-tree --quiet --show-types -f bindings/helpers.c bindings/helpers.h bindings/layout.c
}
if [ -n "$test_kdir" ]; then
	step module-build-test module_test_kernel
	step kdir-checks tests/build/kdir-checks.sh "$test_kdir"
	step module-lints module_lints
	vm_self_test() {
		local rel out
		rel=$(cat "$test_kdir/include/config/kernel.release")
		out=$(tests/vm/run --no-module -- uname -r) || return 1
		echo "$out"
		echo "$out" | grep -qx "$rel" || { echo "expected $rel"; return 1; }
		tests/vm/run --no-module -- sh -c 'exit 3'
		[ $? = 3 ] || { echo "the runner did not pass on the guest's exit status"; return 1; }
	}
	step vm-runner vm_self_test
	step module-smoke tests/vm/run -- tests/module/smoke.sh
	step module-stats tests/vm/run -- tests/module/stats.sh
	step demo tests/demo/run
	step traffic tests/traffic/run
fi

# Debian's stock kernel.
deb_dir=
prepare_debian() { deb_dir=$(scripts/debian-kernel.sh); }
step debian-kernel prepare_debian
if [ -n "$deb_dir" ]; then
	step module-build-debian scripts/build-module.sh "$deb_dir/build"
	debian_boot() {
		local out
		out=$(tests/vm/run --kernel debian -- uname -r) || return 1
		echo "$out"
		echo "$out" | grep -qx "$MH_KVER_DEBIAN"
	}
	step debian-boot debian_boot
	step debian-module-smoke tests/vm/run --kernel debian -- tests/module/smoke.sh
	# Namespaces deleted with mh services configured, in Debian's kernel
	# (PREEMPT_RCU, RCU_LAZY); the module's RCU callbacks delayed by its
	# test hooks, so that a late reference drop cannot hide in a race.
	step debian-netns tests/vm/run --kernel debian --test-hooks -- tests/reliability/netns.sh 30
fi

# The DKMS package: built, linted, installed with apt on a fresh trixie
# system with Debian's stock kernel, booted, removed and purged.
step package tests/package/run
# The debug kernel (clang, KASAN, lockdep with PROVE_RCU, kmemleak, fault
# injection, panic_on_warn) and the reliability suite in it: hostile
# configurations, every module allocation failed in turn, a short soak.
debug_kdir=
build_debug_kernel() {
	if [ -n "$debug_bg" ]; then
		wait "$debug_bg" || {
			echo "the background build failed (its log, $MH_CACHE/debug-kernel-build.log, ends:)"
			tail -n 20 "$MH_CACHE/debug-kernel-build.log"
		}
		debug_bg=
	fi
	debug_kdir=$(scripts/kernel-build.sh debug)
}
step debug-kernel build_debug_kernel
# (With MH_CHECK_ONLY the debug-kernel step may be left out: the suite
# builds or finds the kernel itself.)
if [ -n "$debug_kdir" ] || [ -n "${MH_CHECK_ONLY:-}" ]; then
	step reliability tests/reliability/run
fi

[ -z "$debug_bg" ] || wait "$debug_bg"
echo
[ "${#failures[@]}" = 0 ] || echo "failed: ${failures[*]}"
echo "check: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "${#failures[@]}" = 0 ]
