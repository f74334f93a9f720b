#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Compatibility with the in-tree C ip_vs_mh, in one boot
# (run inside the VM by tests/vm/run). The same configuration commands
# (`ipvsadm -R`, `-b mh-port`, weights > 0, servers not in sorted order) are
# applied three times, to the C module, to ip_vs_mh_rs with list_order=1 and
# to ip_vs_mh_rs in its default sorted order, and the same TR_COMPAT_FLOWS
# (2000) TCP flows plus 500 UDP flows are sent each time: list_order=1 must
# choose exactly the C module's server for every flow; the sorted order must
# match its model, and the number of flows it sends elsewhere than C is
# reported.
source "$(dirname "$0")/lib.sh"

N=${TR_COMPAT_FLOWS:-2000}
NU=${TR_COMPAT_UDP_FLOWS:-500}
VIP=10.0.1.1

traffic_up 4
serve_rs 80 4 || fail "$(basename "$0" .sh)-servers-start flows=0 matching=0"
# UDP connection entries expire after 1 s, so the next phase's flows (the
# same 4-tuples) meet no entry of the previous phase's (nor do TCP flows:
# wait_conns_gone).
ip netns exec d ipvsadm --set 0 0 1
flows "$TR/C" 4 30000 "$N"
flows "$TR/U" 4 40000 "$NU"
cat >"$TR/commands" <<EOF
-A -t $VIP:80 -s mh -b mh-port
-a -t $VIP:80 -r 10.0.2.13:80 -m -w 2
-a -t $VIP:80 -r 10.0.2.11:80 -m -w 1
-a -t $VIP:80 -r 10.0.2.14:80 -m -w 3
-a -t $VIP:80 -r 10.0.2.12:80 -m -w 1
-A -u $VIP:80 -s mh -b mh-port
-a -u $VIP:80 -r 10.0.2.12:80 -m -w 1
-a -u $VIP:80 -r 10.0.2.14:80 -m -w 1
-a -u $VIP:80 -r 10.0.2.11:80 -m -w 1
-a -u $VIP:80 -r 10.0.2.13:80 -m -w 1
EOF

# run_phase NAME: apply the commands, send both flow sets; results in
# $TR/NAME.tcp.got and $TR/NAME.udp.got.
run_phase() {
	local name=$1
	ip netns exec d ipvsadm -R <"$TR/commands" || return 1
	ip netns exec d ipvsadm -Ln
	lsmod | grep -E '^ip_vs_mh'
	conf "$TR/$name.conf"
	wait_conns_gone "$TR/C" && wait_conns_gone "$TR/U" || return 1
	probe "$TR/$name.tcp.got" tcp "$VIP:80" "$TR/C" &&
		probe "$TR/$name.udp.got" udp "$VIP:80" "$TR/U"
}

# next_module: the services go, the loaded mh scheduler is unloaded.
clear_all() {
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh 2>/dev/null
	rmmod ip_vs_mh_rs 2>/dev/null
	# Let the UDP entries of the previous phase expire.
	sleep 2
	! lsmod | grep -qE '^ip_vs_mh(_rs)? '
}

# The C module, checked against mhsim's model of it (list order, port
# hashed only with mh-port).
c_module() {
	local ko ok=0
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; return 1; }
	clear_all
	insmod "$ko" || return 1
	run_phase c || return 1
	model "$TR/c.tcp.want" "$TR/c.conf" "$TR/C" --service "tcp:$VIP:80" --order list --port-hash flag &&
		model "$TR/c.udp.want" "$TR/c.conf" "$TR/U" --service "udp:$VIP:80" --order list --port-hash flag || return 1
	compare "C ip_vs_mh, TCP, against mhsim --order list --port-hash flag" "$TR/c.tcp.got" "$TR/c.tcp.want" || ok=1
	compare "C ip_vs_mh, UDP" "$TR/c.udp.got" "$TR/c.udp.want" || ok=1
	need [ "$(grep -c ERROR "$TR/c.tcp.got")" = 0 ] "no failed flows" || ok=1
	return $ok
}
scenario compat-c-module-matches-model c_module

rust_list_order() {
	local ok=0
	clear_all || return 1
	modprobe ip_vs_mh_rs list_order=1 || return 1
	dmesg | grep "ip_vs_mh_rs: IPVS scheduler 'mh'" | tail -n 1
	run_phase rlist || return 1
	compare "ip_vs_mh_rs list_order=1 against C, TCP" "$TR/rlist.tcp.got" "$TR/c.tcp.got" || ok=1
	compare "ip_vs_mh_rs list_order=1 against C, UDP" "$TR/rlist.udp.got" "$TR/c.udp.got" || ok=1
	return $ok
}
scenario compat-rust-list-order-equals-c rust_list_order

rust_sorted() {
	local ok=0 dt du
	clear_all || return 1
	modprobe ip_vs_mh_rs || return 1
	run_phase rsorted || return 1
	model "$TR/rsorted.tcp.want" "$TR/rsorted.conf" "$TR/C" --service "tcp:$VIP:80" &&
		model "$TR/rsorted.udp.want" "$TR/rsorted.conf" "$TR/U" --service "udp:$VIP:80" || return 1
	compare "ip_vs_mh_rs sorted, TCP, against mhsim" "$TR/rsorted.tcp.got" "$TR/rsorted.tcp.want" || ok=1
	compare "ip_vs_mh_rs sorted, UDP, against mhsim" "$TR/rsorted.udp.got" "$TR/rsorted.udp.want" || ok=1
	dt=$(changed "$TR/c.tcp.got" "$TR/rsorted.tcp.got" | wc -l)
	du=$(changed "$TR/c.udp.got" "$TR/rsorted.udp.got" | wc -l)
	echo "NOTE default sorted order: $dt of $N TCP flows and $du of $NU UDP flows choose another server than the C module"
	return $ok
}
scenario compat-rust-sorted-vs-c rust_sorted

traffic_down
rmmod ip_vs_mh_rs 2>/dev/null
finish
