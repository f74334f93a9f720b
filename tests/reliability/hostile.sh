#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Hostile configuration, inside the VM:
#   tests/vm/run -- tests/reliability/hostile.sh
# Each case has an expected outcome; the oracle for every table is
# `mhsim check` (the kernel's per-server slots against the model). Cases
# covered elsewhere: all servers at weight 0 (tests/module/stats.sh), more
# servers than slots (tests/traffic/lifecycle.sh), fwmark services
# (tests/traffic/model.sh), loading while the C ip_vs_mh is registered
# (tests/module/smoke.sh).
source "$(dirname "$0")/../lib/guest.sh"
export LC_ALL=C

modprobe ip_vs || exit 1
modprobe -r ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs || exit 1

# agree: every mh service of the root namespace matches the model.
agree() {
	local out
	out=$(ipvsadm -Sn | "$MHSIM" check 2>&1)
	local rc=$?
	echo "$out" | grep -v '^OK ' | head -n 5
	echo "$(echo "$out" | grep -c '^OK ') services agree"
	return $rc
}

extreme_weights() {
	ipvsadm -C
	ipvsadm -A -t 10.9.0.1:80 -s mh &&
		ipvsadm -a -t 10.9.0.1:80 -r 10.0.2.11:80 -m -w 2147483647 &&
		ipvsadm -a -t 10.9.0.1:80 -r 10.0.2.12:80 -m -w 1 &&
		ipvsadm -a -t 10.9.0.1:80 -r 10.0.2.13:80 -m -w 0 || return 1
	grep '^[SD] ' /proc/net/ip_vs_mh
	agree || return 1
	# The weight-0 server has no slot.
	[ "$(proc_get - tcp:10.9.0.1:80 '.dests[] | select(.address == "10.0.2.13:80") | .slots')" = 0 ]
}
check "weights INT_MAX, 1 and 0 in one service: table as the model says, weight 0 has no slot" extreme_weights

many_services() {
	local r start
	ipvsadm -C
	# (awk: a shell loop appending 11 000 lines to a string takes minutes
	# under TCG.)
	r=$(awk 'BEGIN {
		for (p = 1; p <= 1000; p++) {
			vip = sprintf("10.9.%d.%d:80", int(p / 250), p % 250 + 1)
			print "-A -t " vip " -s mh"
			for (i = 1; i <= 10; i++)
				printf "-a -t %s -r 10.0.%d.%d:80 -m -w %d\n", vip, 2 + i, p % 250 + 1, 1 + i % 3
		}
	}')
	# IPVS's rate estimators for 11 000 services and servers would keep a
	# CPU of the debug kernel busy; this case is about the tables.
	sysctl -qw net.ipv4.vs.run_estimation=0
	start=$SECONDS
	ipvsadm -R <<<"$r" || { sysctl -qw net.ipv4.vs.run_estimation=1; return 1; }
	sysctl -qw net.ipv4.vs.run_estimation=1
	echo "11000 commands in $((SECONDS - start)) s"
	[ "$(proc_json - | jq '.services | length')" = 1000 ] || { echo "not 1000 services listed"; return 1; }
	agree || return 1
	ipvsadm -C
	[ "$(proc_json - | jq '.services | length')" = 0 ]
}
check "1000 services x 10 real servers: all tables as the model says, all gone after ipvsadm -C" many_services

# mixed_family FIRST SECOND: an IPv4 service with IPv6 real servers (IPVS
# allows it with tunnelling), the two IPv6 ones added in the order given.
# An IPv4 service hashes the first four bytes of an address, which both
# IPv6 servers share: only their full addresses order them in sorted mode,
# whatever order they were added in.
mixed_family() {
	ipvsadm -C
	ipvsadm -A -t 10.9.0.2:80 -s mh &&
		ipvsadm -a -t 10.9.0.2:80 -r "[fd00:2::$1]:80" -i -w "$3" &&
		ipvsadm -a -t 10.9.0.2:80 -r "[fd00:2::$2]:80" -i -w "$4" &&
		ipvsadm -a -t 10.9.0.2:80 -r 10.0.2.13:80 -i || return 1
	grep '^[SD] ' /proc/net/ip_vs_mh
	agree
}
check "IPv4 service with IPv6 real servers (tunnel): table as the model says" mixed_family 11 12 1 2
check "the same, the IPv6 servers added the other way round" mixed_family 12 11 2 1

reload_loop() {
	local i
	ipvsadm -C
	dmesg -C
	for i in $(seq 1 20); do
		ipvsadm -A -t 10.9.0.3:80 -s mh &&
			ipvsadm -a -t 10.9.0.3:80 -r 10.0.2.11:80 -m &&
			ipvsadm -D -t 10.9.0.3:80 || return 1
		for _ in $(seq 20); do
			rmmod ip_vs_mh_rs 2>/dev/null && break
			sleep 0.1
		done
		lsmod | grep -q '^ip_vs_mh_rs ' && { echo "round $i: rmmod failed"; return 1; }
		modprobe ip_vs_mh_rs table_size=$(((i % 2) ? 251 : 65521)) || return 1
	done
	if dmesg | grep -E 'WARNING|BUG|Oops|leak'; then return 1; fi
	echo "20 rounds of service, delete, rmmod, modprobe with another table size"
}
check "rapid unload and reload between services" reload_loop

ipvsadm -C
finish
