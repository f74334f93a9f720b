#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Configuration changes under traffic (run inside
# the VM by tests/vm/run). One TCP service (NAT) in front of r1..r4 (r5
# joins later); the same TR_CHANGE_FLOWS (500) client flows are sent before
# and after every change: after each change every flow must reach the
# model's server, and the set of flows whose server changed must be exactly
# the set the model says changes. Long-lived connections opened before a
# change must keep exchanging data after it.
source "$(dirname "$0")/lib.sh"

N=${TR_CHANGE_FLOWS:-500}
VIP=10.0.1.1
SVC=tcp:$VIP:80
rs() { echo "10.0.2.$((10 + $1)):80"; }

traffic_up 5
serve_rs 80 5 || fail "$(basename "$0" .sh)-servers-start flows=0 matching=0"
flows "$TR/C" 4 20000 "$N"

# step WHAT: probe the flow set C on the service and compare with the model
# (once the director has forgotten C's previous flows: see wait_conns_gone).
step() {
	wait_conns_gone "$TR/C" || return 1
	probe_model "$1" tcp "$VIP:80" "$TR/C" "$SVC"
}

baseline() {
	ip netns exec d ipvsadm -A -t "$VIP:80" -s mh || return 1
	for i in 1 2 3 4; do
		ip netns exec d ipvsadm -a -t "$VIP:80" -r "$(rs "$i")" -m -w 1 || return 1
	done
	ip netns exec d ipvsadm -Ln
	step p0
}
scenario changes-baseline baseline

weight_changed() {
	ip netns exec d ipvsadm -e -t "$VIP:80" -r "$(rs 2)" -m -w 3 || return 1
	step p1 && moved_as_model weight p0 p1
}
scenario changes-weight-changed weight_changed

drained() {
	local ok=0
	# Connections to r3 opened before the drain.
	conf "$TR/drain.conf"
	pick_clients "$TR/drain.streams" 4 "$(rs 3)" "$TR/drain.conf" "$SVC" 4 50000 || return 1
	streams_start drain "$VIP:80" "$TR/drain.streams" || return 1
	ip netns exec d ipvsadm -e -t "$VIP:80" -r "$(rs 3)" -m -w 0 || return 1
	step p2 || ok=1
	moved_as_model drain p1 p2 || ok=1
	local to_r3
	to_r3=$(awk -v s="$(rs 3)" '$2 == s' "$TR/p2.got" | wc -l)
	echo "new flows that reached the drained $(rs 3): $to_r3"
	[ "$to_r3" = 0 ] || ok=1
	ip netns exec d ipvsadm -Ln
	# The established connections keep working, then close normally.
	sleep 3
	streams_stop drain || return 1
	streams_ok drain "$(rs 3)" || ok=1
	return $ok
}
scenario changes-weight-zero-drain drained

undrained() {
	ip netns exec d ipvsadm -e -t "$VIP:80" -r "$(rs 3)" -m -w 1 || return 1
	step p3 && moved_as_model undrain p2 p3 &&
		need cmp -s "$TR/p1.got" "$TR/p3.got" "back to the choices before the drain"
}
scenario changes-weight-restored undrained

deleted() {
	ip netns exec d ipvsadm -d -t "$VIP:80" -r "$(rs 4)" || return 1
	local to_r4
	step p4 && moved_as_model delete p3 p4 || return 1
	to_r4=$(awk -v s="$(rs 4)" '$2 == s' "$TR/p4.got" | wc -l)
	echo "flows that reached the deleted $(rs 4): $to_r4"
	[ "$to_r4" = 0 ]
}
scenario changes-server-deleted deleted

readded() {
	ip netns exec d ipvsadm -a -t "$VIP:80" -r "$(rs 4)" -m -w 1 || return 1
	# r4 is now first in IPVS's list; the sorted table does not care.
	ip netns exec d ipvsadm -Ln --nosort -t "$VIP:80"
	step p5 && moved_as_model readd p4 p5 &&
		need cmp -s "$TR/p3.got" "$TR/p5.got" "the same choices as before the delete"
}
scenario changes-server-readded readded

# The same servers and weights added in different orders, to two services:
# identical choices. mhsim's list order shows the check has teeth.
orders() {
	local order w i ok=0
	declare -A weight=([1]=1 [2]=2 [3]=1 [4]=3)
	for order in "81:1 2 3 4" "82:3 1 4 2"; do
		ip netns exec d ipvsadm -A -t "$VIP:${order%%:*}" -s mh || return 1
		for i in ${order#*:}; do
			ip netns exec d ipvsadm -a -t "$VIP:${order%%:*}" -r "$(rs "$i")" -m -w "${weight[$i]}" || return 1
		done
	done
	ip netns exec d ipvsadm -Ln --nosort | grep -A4 -E ":8[12] "
	# The same clients on another service reach the same real servers: the
	# server side of the flow (client, server) would be that of the previous
	# flow, whose entry must be gone first (see wait_conns_gone).
	wait_conns_gone "$TR/C" || return 1
	probe_model order81 tcp "$VIP:81" "$TR/C" "tcp:$VIP:81" || ok=1
	wait_conns_gone "$TR/C" || return 1
	probe_model order82 tcp "$VIP:82" "$TR/C" "tcp:$VIP:82" || ok=1
	if cmp -s "$TR/order81.got" "$TR/order82.got"; then
		echo "the two services chose the same server for all $N flows"
	else
		echo "the two services chose differently for $(changed "$TR/order81.got" "$TR/order82.got" | wc -l) flows"
		ok=1
	fi
	model "$TR/list81" "$TR/order82.conf" "$TR/C" --service "tcp:$VIP:81" --order list &&
		model "$TR/list82" "$TR/order82.conf" "$TR/C" --service "tcp:$VIP:82" --order list || return 1
	echo "(in IPVS list order, as the C module fills, $(changed "$TR/list81" "$TR/list82" | wc -l) flows would differ)"
	ip netns exec d ipvsadm -D -t "$VIP:81"
	ip netns exec d ipvsadm -D -t "$VIP:82"
	return $ok
}
scenario changes-add-order-independent orders

# Part 7: long-lived connections opened before a table change (a server
# added, a weight changed) keep exchanging data after it.
survive() {
	local ok=0
	flows "$TR/live" 4 51000 12
	conf "$TR/live.conf"
	streams_start live "$VIP:80" "$TR/live" || return 1
	awk '{ print "  connected:", $1 }' "$TR/live"
	ip netns exec d ipvsadm -a -t "$VIP:80" -r "$(rs 5)" -m -w 2 || return 1
	step p6 || ok=1
	moved_as_model add p5 p6 || ok=1
	ip netns exec d ipvsadm -e -t "$VIP:80" -r "$(rs 1)" -m -w 4 || return 1
	step p7 || ok=1
	moved_as_model weight2 p6 p7 || ok=1
	ip netns exec d ipvsadm -Ln
	sleep 2
	streams_stop live || return 1
	streams_ok live || ok=1
	# Each stream stayed on the server the table of its time chose.
	model "$TR/live.want" "$TR/live.conf" "$TR/live" --service "$SVC" || return 1
	awk '{ print $1, $2 }' "$TR/live.out" | sort -k1,1 >"$TR/live.got"
	compare "streams before the change" "$TR/live.got" "$TR/live.want" || ok=1
	return $ok
}
scenario established-survive-changes survive

traffic_down
finish
