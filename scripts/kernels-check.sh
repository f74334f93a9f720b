#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix (`make kernels`): the suites of tests/run on every
# Debian kernel of kernel/kernels besides the default one, which `make
# check` covers. Too long for `make check`'s budget (about an hour cold); its
# last result is in docs/kernels.md.
#
#   each trixie kernel   the package end to end (apt, DKMS, boot, autoload,
#                        TCP and UDP over IPv4 and IPv6 as the model, a
#                        weight change, remove, purge) and the module suites
#   PREEMPT_RT kernels   also namespace teardown, the traffic suites and a
#                        short churn soak (found by their configuration,
#                        CONFIG_PREEMPT_RT, not by name)
#   other suites (sid)   the module built with that suite's toolchain,
#                        loaded, its smoke and statistics tests
#   then                 a kernel upgrade, 7.2 to 7.3, with the package
#                        installed (tests/package/upgrade)
#
# MH_KERNELS="name..." runs only those. Prints PASS/FAIL per step and
# "check: N passed, M failed" at the end; exits non-zero if anything failed.
source "$(dirname "$0")/lib.sh"
source "$MH_REPO/tests/lib/tally.sh"
set +e
cd "$MH_REPO"
start=$(date +%s)

default=$(scripts/kernel.sh --names | head -n 1)
names=${MH_KERNELS:-$(scripts/kernel.sh --names | tail -n +2)}
for k in $names; do
	kind= suite=
	read -r kind _ _ suite < <(scripts/kernel.sh --entry "$k")
	if [ -z "$kind" ]; then
		fail "$k: no such kernel in kernel/kernels"
		continue
	fi
	[ "$kind" = debian ] && [ "$k" != "$default" ] || continue
	step "$k:module" tests/run --kernel "$k" module
	# The package installs on trixie: not on another suite's kernel.
	[ "${suite:-trixie}" = "$MH_SUITE" ] || continue
	step "$k:package" tests/run --kernel "$k" package
	kdir=$(eval "$(scripts/kernel.sh "$k")" && echo "$MH_K_KDIR")
	if grep -q '^CONFIG_PREEMPT_RT=y' "$kdir/.config" 2>/dev/null; then
		step "$k:netns" tests/run --kernel "$k" netns
		step "$k:traffic" tests/run --kernel "$k" traffic
		step "$k:soak" tests/run --kernel "$k" reliability:soak
	fi
done
# The upgrade from 7.2 to 7.3 with the package installed.
[ -n "${MH_KERNELS:-}" ] || step upgrade tests/run upgrade

echo
[ "${#mh_failures[@]}" = 0 ] || echo "failed: ${mh_failures[*]}"
echo "kernels: took $(($(date +%s) - start)) s"
echo "check: $mh_passed passed, $mh_failed failed"
[ "$mh_failed" = 0 ]
