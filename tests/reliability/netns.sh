#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Network namespaces deleted while their mh services still have real
# servers, inside the VM:
#
#   tests/vm/run [--kernel debug|debian] -- tests/reliability/netns.sh [ROUNDS]
#
# Each round makes two namespaces, each with an mh TCP and an mh UDP service
# of six NAT real servers (a dummy interface routes them), edits a weight,
# deletes a server and adds it again (so a rebuild happens just before the
# end), then deletes both namespaces at once, racing on the two vCPUs,
# without `ipvsadm -C`. IPVS then unbinds the scheduler from every service
# and frees the real servers itself (ip_vs_trash_cleanup, through its own
# call_rcu); the scheduler must have given back its references on them by
# then, as the C schedulers do in done_service. A reference dropped later
# takes a freed server's count below zero: "refcount_t: decrement hit 0",
# a WARN that panics the debug kernel (panic_on_warn) and fails the run
# through the VM runner on any kernel. The module's tests build (the debug
# kernel's) delays its RCU callbacks by several grace periods, which makes
# such a late drop certain rather than a race.
source "$(dirname "$0")/../lib/guest.sh"
export LC_ALL=C

rounds=${1:-20}

modprobe ip_vs || exit 1
modprobe -r ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs || exit 1
dmesg -C

# users: how many services use the module (its reference count).
users() { awk '$1 == "ip_vs_mh_rs" { print $3 }' /proc/modules; }

# setup NS: the namespace with its two services, a weight edit, a server
# deleted and re-added.
setup() {
	local ns=$1 i
	bare_ns "$ns" || return 1
	{
		echo "-A -t 10.9.0.1:80 -s mh"
		echo "-A -u 10.9.0.1:53 -s mh"
		for i in 11 12 13 14 15 16; do
			echo "-a -t 10.9.0.1:80 -r 10.0.2.$i:80 -m -w 1"
			echo "-a -u 10.9.0.1:53 -r 10.0.2.$i:53 -m -w 1"
		done
		echo "-e -t 10.9.0.1:80 -r 10.0.2.12:80 -m -w 3"
		echo "-d -u 10.9.0.1:53 -r 10.0.2.13:53"
		echo "-d -t 10.9.0.1:80 -r 10.0.2.14:80"
		echo "-a -u 10.9.0.1:53 -r 10.0.2.13:53 -m -w 2"
		echo "-a -t 10.9.0.1:80 -r 10.0.2.14:80 -m -w 1"
	} | ip netns exec "$ns" ipvsadm -R
}

round() {
	local n=$1 ns _
	for ns in "mh-a$n" "mh-b$n"; do
		setup "$ns" || { echo "round $n: cannot set up $ns"; return 1; }
		# The tables are really there, as the model says (a test that
		# deleted empty namespaces would prove nothing).
		ip netns exec "$ns" ipvsadm -Sn |
			ip netns exec "$ns" "$MHSIM" check >/dev/null ||
			{ echo "round $n: $ns does not agree with the model"; return 1; }
	done
	ip netns del "mh-a$n" &
	ip netns del "mh-b$n" &
	wait
	# Namespaces are cleaned up by a kernel worker, later: wait until no
	# service uses the module any more (bounded).
	for _ in $(seq 300); do
		[ "$(users)" = 0 ] && return 0
		sleep 0.1
	done
	echo "round $n: $(users) services still use the module 30 s after their namespaces were deleted"
	return 1
}

teardown_rounds() {
	local n start=$SECONDS
	for n in $(seq "$rounds"); do
		round "$n" || return 1
	done
	# Unloading waits for every RCU callback the module queued.
	rmmod ip_vs_mh_rs || return 1
	echo "$rounds rounds, 4 services and 24 real servers each, in $((SECONDS - start)) s"
	! dmesg | grep -E 'refcount_t|WARNING|BUG'
}
check "namespaces deleted with mh services configured: no refcount warning, no splat" teardown_rounds

finish
