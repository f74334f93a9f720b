#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# keepalived configures the in-tree C ip_vs_mh and ip_vs_mh_rs from one
# configuration file (inside the VM): two virtual servers with `lb_algo mh`
# and `flag-3` (upstream mode here; C ignores the flag), one with `mh-port`
# and one without (unequal weights), real servers with TCP health checks.
# For each module in turn, keepalived's checker, in the director's
# namespace, sets the services up; TCP flows are probed and must land where
# mhsim's upstream model says (the C module's decisions), and, for
# ip_vs_mh_rs, /proc/net/ip_vs_mh must show upstream mode and `mhsim check`
# agree. Then a real server fails its health check (it refuses the
# director's checks, not the clients), keepalived removes it, and new flows
# again land where the model says, none on it.
source "$(dirname "$0")/lib.sh"

N=${TR_KEEPALIVED_FLOWS:-200}
VIP=10.0.1.1
CONF=$TR/keepalived.conf

traffic_up 4
serve_rs 80 4 || fail "keepalived-real-servers flows=0 matching=0"
serve_rs 81 4 || fail "keepalived-real-servers flows=0 matching=0"

# The configuration a fleet would share between its C and Rust directors.
real_servers() {
	local port=$1 i
	shift
	for i in 1 2 3 4; do
		cat <<EOF
	real_server 10.0.2.$((10 + i)) $port {
		weight $1
		TCP_CHECK {
			connect_timeout 1
			retry 1
			delay_before_retry 1
		}
	}
EOF
		shift
	done
}
{
	cat <<EOF
global_defs {
	router_id mh-keepalived-test
}
virtual_server $VIP 80 {
	delay_loop 1
	lb_algo mh
	mh-port
	flag-3
	lb_kind NAT
	protocol TCP
EOF
	real_servers 80 1 1 1 1
	cat <<EOF
}
virtual_server $VIP 81 {
	delay_loop 1
	lb_algo mh
	flag-3
	lb_kind NAT
	protocol TCP
EOF
	real_servers 81 3 1 2 1
	echo "}"
} >"$CONF"

# servers_of PORT: the real servers IPVS has for VIP:PORT.
servers_of() {
	ip netns exec d ipvsadm -Ln -t "$VIP:$1" 2>/dev/null | awk '$1 == "->" && $2 ~ /^10\./ { print $2 }' | sort
}

# wait_servers PORT COUNT: until VIP:PORT has COUNT real servers (30 s).
wait_servers() {
	local _
	for _ in $(seq 60); do
		[ "$(servers_of "$1" | wc -l)" = "$2" ] && return 0
		sleep 0.5
	done
	echo "VIP:$1 has $(servers_of "$1" | wc -l) real servers after 30 s, not $2: $(servers_of "$1" | xargs)"
	return 1
}

keepalived_start() {
	ip netns exec d keepalived --check --dont-fork --log-console --log-detail \
		--use-file "$CONF" --pid "$TR/keepalived.pid" --checkers_pid "$TR/checkers.pid" \
		>"$TR/keepalived.$1.log" 2>&1 &
	echo $! >"$TR/keepalived.main"
}

keepalived_stop() {
	local pid
	pid=$(cat "$TR/keepalived.main" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -9 "$pid" 2>/dev/null
	rm -f "$TR/keepalived.main"
}

# r2 refuses the director's health checks (from 10.0.2.1), not the clients.
r2_checks() {
	case $1 in
	fail) ip netns exec r2 nft -f - <<EOF ;;
table inet checks {
	chain input {
		type filter hook input priority filter;
		ip saddr 10.0.2.1 tcp dport { 80, 81 } reject with tcp reset
	}
}
EOF
	pass) ip netns exec r2 nft delete table inet checks 2>/dev/null || true ;;
	esac
}

# flows_as_model WHO STEP PORT FIRST: N TCP flows to VIP:PORT from client
# ports FIRST upwards, against mhsim's upstream model of the configuration
# keepalived made.
flows_as_model() {
	local who=$1 step=$2 port=$3 first=$4
	flows "$TR/k.$who.$step.$port.clients" 4 "$first" "$N"
	probe_model "k.$who.$step.$port" tcp "$VIP:$port" "$TR/k.$who.$step.$port.clients" \
		"tcp:$VIP:$port" --mode upstream
}

# run WHO BASE: the C module (c) or ip_vs_mh_rs (rs), configured by
# keepalived from $CONF; client ports from BASE (each run and step its own,
# so that no flow meets a connection entry of another).
run() {
	local who=$1 base=$2 ko p rc=0
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh 2>/dev/null
	rmmod ip_vs_mh_rs 2>/dev/null
	if [ "$who" = c ]; then
		ko=$(c_mh_ko)
		[ -n "$ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; return 1; }
		insmod "$ko" || return 1
	else
		modprobe ip_vs_mh_rs || return 1
	fi
	r2_checks pass
	keepalived_start "$who"
	if ! wait_servers 80 4 || ! wait_servers 81 4; then
		tail -n 20 "$TR/keepalived.$who.log"
		keepalived_stop
		return 1
	fi
	local mod=ip_vs_mh_rs
	[ "$who" = c ] && mod=ip_vs_mh
	grep -q "^$mod " /proc/modules || { echo "$mod is not loaded"; rc=1; }
	for p in 80 81; do
		flows_as_model "$who" 1 "$p" "$base" || rc=1
	done
	if [ "$who" = rs ]; then
		for p in 80 81; do
			[ "$(proc_get d "tcp:$VIP:$p" .mode)" = upstream ] ||
				{ echo "tcp:$VIP:$p is not in upstream mode"; rc=1; }
		done
		ip netns exec d sh -c "ipvsadm -Ln --nosort | '$MHSIM' check" || rc=1
	fi
	echo "-- 10.0.2.12 fails its health checks"
	r2_checks fail
	if wait_servers 80 3 && wait_servers 81 3; then
		for p in 80 81; do
			flows_as_model "$who" 2 "$p" $((base + N)) || rc=1
			if awk '$2 ~ /^10\.0\.2\.12:/' "$TR/k.$who.2.$p.got" | grep -q .; then
				echo "flows reached 10.0.2.12 after keepalived removed it"
				rc=1
			fi
		done
		[ "$who" = rs ] && { ip netns exec d sh -c "ipvsadm -Ln --nosort | '$MHSIM' check" || rc=1; }
	else
		rc=1
	fi
	keepalived_stop
	r2_checks pass
	ip netns exec d ipvsadm -C
	return $rc
}

scenario keepalived-c-module run c 20000
scenario keepalived-rust-upstream run rs 30000

traffic_down
rmmod ip_vs_mh 2>/dev/null
rmmod ip_vs_mh_rs 2>/dev/null
finish
