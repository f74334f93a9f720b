#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Overloaded servers (run inside the VM by tests/vm/run).
# r1 has an upper connection threshold of 1 (`-x 1`) and one long-lived
# connection, so it is overloaded. With `-b mh-fallback` the flows whose
# slot names r1 go where the C module's table walk sends them (mhsim
# --fallback --unavailable r1), and ip_vs_mh_rs with list_order=1 sends
# them exactly where the C ip_vs_mh does; without the flag those flows are
# refused and the kernel logs "no destination available".
source "$(dirname "$0")/lib.sh"

N=${TR_FALLBACK_FLOWS:-500}
VIP=10.0.1.1
R1=10.0.2.11:80

traffic_up 4
# Refusals are ICMP port unreachable from the director: not rate-limited,
# so every refused flow reads as "refused" at once.
ip netns exec d sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000
serve_rs 80 4 || fail "$(basename "$0" .sh)-servers-start flows=0 matching=0"

# service PORT FLAGS: an mh service with r1 (threshold 1) and r2..r4.
service() {
	local port=$1 flags=$2
	ip netns exec d ipvsadm -A -t "$VIP:$port" -s mh $flags || return 1
	ip netns exec d ipvsadm -a -t "$VIP:$port" -r 10.0.2.11:80 -m -w 1 -x 1 &&
		ip netns exec d ipvsadm -a -t "$VIP:$port" -r 10.0.2.14:80 -m -w 2 &&
		ip netns exec d ipvsadm -a -t "$VIP:$port" -r 10.0.2.12:80 -m -w 1 &&
		ip netns exec d ipvsadm -a -t "$VIP:$port" -r 10.0.2.13:80 -m -w 1
}

dmesg_has() { dmesg | grep -qF "$1"; }
lsmod_has() { lsmod | grep -q "^$1 "; }
# counters SERVICE "DECISIONS FALLBACKS REFUSALS": /proc/net/ip_vs_mh agrees
# (every flow and the overloading stream is one decision).
counters() {
	local got
	got=$(proc_counts "$1")
	echo "/proc/net/ip_vs_mh, $1: decisions fallbacks refusals: ${got:-none}, expected $2"
	[ "$got" = "$2" ]
}

# overload NAME PORT FIRST_PORT [MHSIM ARGS]: one long-lived connection
# to r1 through the service on PORT (from a source the model maps to r1).
overload() {
	local name=$1 port=$2 first=$3
	shift 3
	conf "$TR/$name.conf"
	pick_clients "$TR/$name.hold" 1 "$R1" "$TR/$name.conf" "tcp:$VIP:$port" 4 "$first" "$@" || return 1
	streams_start "$name" "$VIP:$port" "$TR/$name.hold" || return 1
	ip netns exec d ipvsadm -Ln -t "$VIP:$port"
}

# fallback_run NAME PORT CLIENTS STREAM_PORT [MHSIM ARGS]: r1 overloaded by
# a connection from STREAM_PORT up, the flows of CLIENTS against the model.
fallback_run() {
	local name=$1 port=$2 clients=$3 sport=$4 ok=0 hits
	shift 4
	overload "$name" "$port" "$sport" "$@" || return 1
	conf "$TR/now.conf"
	probe "$TR/$name.got" tcp "$VIP:$port" "$clients"
	model "$TR/$name.want" "$TR/now.conf" "$clients" --service "tcp:$VIP:$port" \
		--fallback --unavailable "$R1" "$@" || return 1
	compare "$name: fallback flows against mhsim --fallback --unavailable $R1" "$TR/$name.got" "$TR/$name.want" || ok=1
	hits=$(model "$TR/primary" "$TR/now.conf" "$clients" --service "tcp:$VIP:$port" "$@" &&
		awk -v s="$R1" '$2 == s' "$TR/primary" | wc -l)
	echo "$hits" >"$TR/$name.hits"
	echo "NOTE $hits of $(wc -l <"$clients") flows hit the overloaded $R1's slots and fell back"
	need [ "$hits" -gt 0 ] "some flows exercise the fallback" || ok=1
	# ip_vs_mh_rs counts the same (the C module has no such file).
	if lsmod_has ip_vs_mh_rs; then
		counters "tcp:$VIP:$port" "$(($(wc -l <"$clients") + 1)) $hits 0" || ok=1
	fi
	need [ "$(awk -v s="$R1" '$2 == s' "$TR/$name.got" | wc -l)" = 0 ] "no new flow reached $R1" || ok=1
	streams_stop "$name" || return 1
	streams_ok "$name" "$R1" || ok=1
	return $ok
}

with_fallback() {
	service 80 "-b mh-fallback" || return 1
	flows "$TR/F1" 4 30000 "$N"
	fallback_run fb 80 "$TR/F1" 52000
}
scenario fallback-overloaded-server-skipped with_fallback

without_fallback() {
	local ok=0 refused
	service 81 "" || return 1
	overload nofb 81 53000 || return 1
	flows "$TR/F2" 4 31000 "$N"
	dmesg -C
	conf "$TR/now.conf"
	probe "$TR/nofb.got" tcp "$VIP:81" "$TR/F2"
	model "$TR/nofb.model" "$TR/now.conf" "$TR/F2" --service "tcp:$VIP:81" || return 1
	# The flows that the table maps to the overloaded r1 are refused.
	awk -v s="$R1" '{ print $1, ($2 == s ? "ERROR" : $2) }' "$TR/nofb.model" >"$TR/nofb.want"
	compare "nofb: flows against mhsim, those of $R1 refused" "$TR/nofb.got" "$TR/nofb.want" || ok=1
	refused=$(grep -c ERROR "$TR/nofb.want")
	echo "NOTE $refused of $N flows were refused (slot of the overloaded $R1)"
	need [ "$refused" -gt 0 ] "some flows hit the overloaded server" || ok=1
	counters "tcp:$VIP:81" "$((N - refused + 1)) 0 $refused" || ok=1
	grep 'ERROR' "$TR/nofb.got.raw" | awk '{ print $3 }' | sort | uniq -c
	dmesg | grep -m 3 'no destination available'
	need dmesg_has 'mh: TCP 10.0.1.1:81 - no destination available' "the kernel says 'no destination available'" || ok=1
	streams_stop nofb || return 1
	streams_ok nofb "$R1" || ok=1
	return $ok
}
scenario fallback-off-overloaded-refused without_fallback

# The C module's walk, in the kernel: C ip_vs_mh and ip_vs_mh_rs
# list_order=1 with -b mh-port,mh-fallback choose the same servers.
c_walk() {
	local ko ok=0
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; return 1; }
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh_rs || return 1
	insmod "$ko" || return 1
	service 82 "-b mh-port,mh-fallback" || return 1
	flows "$TR/F3" 4 32000 "$N"
	fallback_run cfb 82 "$TR/F3" 55000 --order list --port-hash flag || ok=1
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh || return 1
	modprobe ip_vs_mh_rs list_order=1 || return 1
	# Another port: re-adding 10.0.1.1:82's servers would bring back the
	# same server objects from IPVS's trash, r1 still counting the closing
	# connection that overloaded it. (The port is not hashed.)
	service 83 "-b mh-port,mh-fallback" || return 1
	overload rfb 83 54000 --order list --port-hash flag || return 1
	# The same clients reach the same servers: the C phase's entries must be
	# gone (see wait_conns_gone).
	wait_conns_gone "$TR/F3" || return 1
	probe "$TR/rfb.got" tcp "$VIP:83" "$TR/F3"
	compare "ip_vs_mh_rs list_order=1 against C ip_vs_mh, fallback flows" "$TR/rfb.got" "$TR/cfb.got" || ok=1
	counters "tcp:$VIP:83" "$((N + 1)) $(cat "$TR/cfb.hits") 0" || ok=1
	streams_stop rfb || return 1
	streams_ok rfb "$R1" || ok=1
	return $ok
}
scenario fallback-rust-list-order-equals-c c_walk

traffic_down
rmmod ip_vs_mh 2>/dev/null
rmmod ip_vs_mh_rs 2>/dev/null
finish
