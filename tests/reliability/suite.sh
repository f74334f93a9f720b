#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The reliability suite inside the debug VM (started by `tests/run reliability`):
#
#   suite.sh [--soak-s S] [--segments K] [--seed N] [--min-rate R]
#            [--netns-rounds N] [PART...]
#
# PARTs, in this order by default: hostile, faults, netns, isolation (a
# long rebuild in one namespace holds up no other), soak. Then, after every
# part: the module is unloaded and kmemleak must find no leak from IPVS or
# the module (on kernels with kmemleak). Kernel reports (KASAN, lockdep,
# RCU, WARN with panic_on_warn) end or fail the run through the VM runner.
source "$(dirname "$0")/../lib/guest.sh"
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)

soak_s=60 segments=2 seed=1 min_rate=0 netns_rounds=20 parts=()
while [ $# -gt 0 ]; do
	case "$1" in
	--soak-s) soak_s=$2; shift 2 ;;
	--segments) segments=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--min-rate) min_rate=$2; shift 2 ;;
	--netns-rounds) netns_rounds=$2; shift 2 ;;
	hostile | faults | netns | isolation | soak) parts+=("$1"); shift ;;
	*) echo "suite.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ ${#parts[@]} -gt 0 ] || parts=(hostile faults netns isolation soak)

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
kmemleak=/sys/kernel/debug/kmemleak
# A kernel built with kmemleak (the debug kernel) must offer it; Debian's
# kernels have none, and run the parts without the leak checks.
if grep -qw kmemleak_alloc /proc/kallsyms; then
	[ -w "$kmemleak" ] || { echo "FAIL kmemleak is built in but not available"; exit 1; }
	# Leaks from before the suite (boot) are not ours: scan once and forget them.
	echo scan >"$kmemleak"
	echo clear >"$kmemleak"
else
	echo "SKIP leak checks: this kernel has no kmemleak"
	kmemleak=
fi
modprobe ip_vs || exit 1
modprobe -r ip_vs_mh_rs 2>/dev/null

# director_run SCRIPT ARGS...: a Python part in the director's namespace.
director_run() {
	ip netns exec d env PYTHONPATH="$here" MHNET="$MHNET" MHSIM="$MHSIM" \
		MH_SOAK_MIN_RATE="$min_rate" \
		python3 -u "$here/$1" "${@:2}"
}

# no_leaks PART: after the part, with the module unloaded and RCU callbacks
# run, kmemleak reports nothing allocated by IPVS or the module.
no_leaks() {
	local report leaks
	ipvsadm -C
	topo_down
	rmmod ip_vs_mh_rs 2>/dev/null
	[ -n "$kmemleak" ] || return 0
	# kmemleak reports objects unreferenced for 5 s, in two scans.
	sleep 6
	echo scan >"$kmemleak"
	sleep 1
	echo scan >"$kmemleak"
	report=$(cat "$kmemleak")
	leaks=$(printf '%s\n' "$report" | awk '/^unreferenced object/ { n++ } END { print n + 0 }')
	if printf '%s\n' "$report" | grep -q 'ip_vs\|mh_rs'; then
		fail "$1: no leak from IPVS or the module (kmemleak)"
		printf '%s\n' "$report" | head -n 40 | sed 's/^/    /'
	else
		pass "$1: no leak from IPVS or the module (kmemleak: $leaks other suspects)"
	fi
	[ "$leaks" = 0 ] || printf '%s\n' "$report" | head -n 20 | sed 's/^/    note: /'
	echo clear >"$kmemleak"
}

for part in "${parts[@]}"; do
	echo "== $part"
	start=$SECONDS
	case "$part" in
	hostile)
		counted "$part" "$here/hostile.sh"
		;;
	netns)
		counted "$part" "$here/netns.sh" "$netns_rounds"
		;;
	isolation)
		counted "$part" "$here/rebuild-isolation.sh"
		;;
	faults)
		topo_up 4
		serve_all 80 4
		counted "$part" director_run faults.py
		;;
	soak)
		topo_up 8
		serve_all 80 8
		# Short connections take ephemeral ports above the probes' and the
		# streams' fixed source ports.
		ip netns exec c sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
		counted "$part" director_run soak.py "$soak_s" "$segments" "$seed"
		;;
	esac
	no_leaks "$part"
	echo "== $part: $((SECONDS - start)) s"
done
finish
