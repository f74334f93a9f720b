#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The demo, inside the VM (tests/demo/run boots it): three directors behind
# an ECMP router agree on every flow, and long-lived TCP streams survive the
# loss of the director carrying them.
#
#   client c --- router rt ==ECMP==> d1 d2 d3 (IPVS, mh, direct routing)
#                   |                 |  |  |
#                   +--- switch sw (a bridge): d1 d2 d3, r1 r2 r3 r4
#
# The router spreads client -> VIP flows over the three directors
# (fib_multipath_hash_policy=1: by ports too); each director forwards to a
# real server on the shared segment (direct routing: the VIP on the real
# servers' lo, arp_ignore=1/arp_announce=2), and the real servers answer
# straight to the client through their default route, the router. The
# directors have sloppy_tcp, so one that sees a mid-stream segment of an
# unknown connection schedules it: with identical tables, to the same server.
#
# Phase 1, the module's default (sorted order), then a real server leaves
# (removed from every director: only its streams are affected, new flows
# spread over the others as mhsim predicts), and phase 2, the contrast
# (upstream mode, -b flag-3,mh-port: the in-tree C module's table, built in
# IPVS list order): the same histories, streams of the
# same kind, the same failover. The directors' histories differ on purpose
# (servers added in other orders, one deleted and re-added); the streams
# come from client ports whose flows hash into the slots where the
# list-order tables disagree (mhsim lookup), the worst case for list order.
# Phase 3, a rolling upgrade from the in-tree C mh: the same history on
# every director; d1 and d2 run the C module, d3 this one in upstream mode
# (the test build named "mhrs" that tests/vm/run --alt-name-module leaves,
# since one kernel holds one "mh"); streams survive the loss of d2 (C),
# then of d3 (Rust); then d1 and d2 move to the Rust module, the fleet leaves upstream
# mode, and the UDP flows that change server are exactly mhsim diff's.
# The demo fails if phase 1 or 3 misbehaves, if the module's tables (per-server
# slots in /proc/net/ip_vs_mh) differ from mhsim's, or if phase 2
# unexpectedly shows identical tables; broken streams in phase 2 are
# expected and reported.
#
# Which director carried which stream: each director's IPVS connection
# table, before and after the failover (a stream taken over shows up in its
# new director's table: IPVS scheduled its first mid-stream segment).
#
# Knobs (environment, when running this script in a VM by hand):
# DEMO_STREAMS (60), DEMO_INTERVAL_MS (250), DEMO_HOLD_S (3: streams running
# before the failover), DEMO_AFTER_S (6: after it; keep it above mhnet's 5 s
# echo timeout, so that a stream stuck by the failover shows as failed).
# Every wait is bounded. Under TCG each process started costs a lot, so the
# setup goes through `ip -batch` and `ipvsadm -R`, and the connection tables
# are read with shell builtins.
source "$(dirname "$0")/../lib/guest.sh"
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=/tmp/demo
rm -rf "$OUT"
mkdir -p "$OUT"

VIP=203.0.113.15
PORT=80
N=${DEMO_STREAMS:-60}
INTERVAL_MS=${DEMO_INTERVAL_MS:-250}
HOLD_S=${DEMO_HOLD_S:-3}
AFTER_S=${DEMO_AFTER_S:-6}
DOWN=d2
DIRECTORS="d1 d2 d3"
failed=()

rs() { echo "10.0.2.$((10 + $1)):$PORT"; }
demo() { python3 "$HERE/demo.py" "$@"; }
bad() { failed+=("$*"); }
# wait_for FILE SECONDS
wait_for() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- topology ----------------------------------------------------------------

ECMP="route replace $VIP/32 nexthop via 10.0.11.2 nexthop via 10.0.12.2 nexthop via 10.0.13.2"

topology() {
	local -A B
	local ns k i
	topo_down
	modprobe ip_vs || return 1
	# Namespaces and links, from the root namespace.
	B[root]=""
	for ns in c rt sw $DIRECTORS r1 r2 r3 r4; do B[root]+="netns add $ns"$'\n'; done
	B[root]+="link add c-rt netns c type veth peer name rt-c netns rt"$'\n'
	B[root]+="link add rt-sw netns rt type veth peer name sw-rt netns sw"$'\n'
	for k in 1 2 3; do
		B[root]+="link add rt-d$k netns rt type veth peer name d$k-rt netns d$k"$'\n'
		B[root]+="link add d$k-sw netns d$k type veth peer name sw-d$k netns sw"$'\n'
	done
	for i in 1 2 3 4; do
		B[root]+="link add r$i-sw netns r$i type veth peer name sw-r$i netns sw"$'\n'
	done
	ip -batch - <<<"${B[root]}" || return 1

	# The client.
	B[c]="link set lo up
addr add 10.0.1.2/24 dev c-rt
link set c-rt up
route add default via 10.0.1.1"
	# The router: the client's gateway, the real servers' gateway 10.0.2.1
	# on the switch, a link to each director (10.0.1k.0/24), and the VIP
	# through the three directors.
	B[rt]="link set lo up
addr add 10.0.1.1/24 dev rt-c
link set rt-c up
addr add 10.0.2.1/24 dev rt-sw
link set rt-sw up"
	# The switch: a bridge.
	B[sw]="link set lo up
link add br0 type bridge
link set br0 up
link set sw-rt master br0 up"
	for k in 1 2 3; do
		B[rt]+=$'\n'"addr add 10.0.1$k.1/24 dev rt-d$k"$'\n'"link set rt-d$k up"
		B[sw]+=$'\n'"link set sw-d$k master br0 up"
		# A director: its link from the router, its leg on the switch
		# (10.0.2.2-4), the VIP on lo.
		B[d$k]="link set lo up
addr add $VIP/32 dev lo
addr add 10.0.1$k.2/24 dev d$k-rt
link set d$k-rt up
route add default via 10.0.1$k.1
addr add 10.0.2.$((1 + k))/24 dev d$k-sw
link set d$k-sw up"
	done
	B[rt]+=$'\n'"$ECMP"
	for i in 1 2 3 4; do
		B[sw]+=$'\n'"link set sw-r$i master br0 up"
		# A real server: 10.0.2.1i on the switch, the VIP on lo, its
		# default route via the router (not via a director).
		B[r$i]="link set lo up
addr add $VIP/32 dev lo
addr add 10.0.2.$((10 + i))/24 dev r$i-sw
link set r$i-sw up
route add default via 10.0.2.1"
	done
	for ns in c rt sw $DIRECTORS r1 r2 r3 r4; do
		ip -n "$ns" -batch - <<<"${B[$ns]}" || { echo "in $ns"; return 1; }
	done

	# No reverse-path filtering anywhere: replies from the VIP cross the
	# router, which routes the VIP elsewhere.
	local norp="net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0"
	# The VIP on lo, never answered for in ARP.
	local vip="net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
		net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2"
	# The client keeps its flows' hash on retransmission timeouts: over veth
	# the socket's hash reaches the router, which would take it as the flow's
	# L4 hash, and a re-randomised one would send the flow to another
	# director (a wire does not carry it).
	ip netns exec c sysctl -qw $norp || return 1
	ip netns exec c sysctl -qw net.core.txrehash=0 2>/dev/null
	ip netns exec rt sysctl -qw $norp net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 || return 1
	ip netns exec sw sysctl -qw $norp || return 1
	for ns in $DIRECTORS; do
		ip netns exec "$ns" sysctl -qw $norp $vip net.ipv4.vs.sloppy_tcp=1 net.ipv4.vs.conntrack=0 ||
			return 1
	done
	for i in 1 2 3 4; do
		ip netns exec "r$i" sysctl -qw $norp $vip || return 1
		ip netns exec "r$i" "$MHNET" serve --id "$(rs "$i")" --tcp "0.0.0.0:$PORT" \
			--udp "0.0.0.0:$PORT" >"$OUT/serve-r$i.log" 2>&1 &
	done
	for i in 1 2 3 4; do
		wait_ready "$OUT/serve-r$i.log" 100 || return 1
	done
}

# A process in each director's namespace, whose /proc/PID/net/ip_vs_conn is
# that director's connection table: read with builtins, no process started.
declare -A HOLDER
holders() {
	local d
	for d in $DIRECTORS; do
		ip netns exec "$d" sleep 900 &
		HOLDER[$d]=$!
	done
	for d in $DIRECTORS; do
		for _ in $(seq 50); do
			[ "$(ip netns identify "${HOLDER[$d]}")" = "$d" ] && break
			sleep 0.1
		done
		[ "$(ip netns identify "${HOLDER[$d]}")" = "$d" ] || return 1
	done
}

# ---- the directors -----------------------------------------------------------

HISTORY="d1 added r1 r2 r3 r4 | d2 added r4 r3 r2 r1 | d3 added r1 r2 r3 r4, deleted r2, re-added r2"
# configure: the three directors' services, from their histories.
# configure [FLAGS]: the directors' services (ipvsadm -A ... FLAGS) and
# their histories.
configure() {
	local d i r
	add() { echo "-a -t $VIP:$PORT -r $(rs "$1") -g -w 1"; }
	for d in $DIRECTORS; do
		r="-C"$'\n'"-A -t $VIP:$PORT -s mh ${1:-}"$'\n'
		case $d in
		d1) r+=$(for i in 1 2 3 4; do add "$i"; done) ;;
		d2) r+=$(for i in 4 3 2 1; do add "$i"; done) ;;
		d3) r+=$(for i in 1 2 3 4; do add "$i"; done; echo "-d -t $VIP:$PORT -r $(rs 2)"; add 2) ;;
		esac
		ip netns exec "$d" ipvsadm -R <<<"$r" || { echo "$d: ipvsadm -R failed"; return 1; }
	done
}

# tables MODE[:TAG] [FIRST LAST]: each director's table fingerprint
# (mhsim's for the module's MODE, sorted or upstream, checked against the
# module's /proc/net/ip_vs_mh; the files are named after TAG, by default
# MODE); with FIRST LAST, also picks the streams' client ports
# ($OUT/clients.1, .2). 0: the three are identical, 1: they differ, 2: the
# module and mhsim disagree.
tables() {
	local mode=${1%%:*} order=${1#*:} d rc
	shift
	for d in $DIRECTORS; do
		ip netns exec "$d" ipvsadm -Ln --nosort >"$OUT/$order.$d.list"
		mapfile -t lines <"/proc/${HOLDER[$d]}/net/ip_vs_mh"
		printf '%s\n' "${lines[@]}" >"$OUT/$order.$d.proc"
	done
	demo tables "$MHSIM" "$mode" "tcp:$VIP:$PORT" "$OUT" "$order" ${1:+"$@" "$N"} >"$OUT/$order.tables"
	rc=$?
	sed 's/^/  /' "$OUT/$order.tables"
	return $rc
}

# ---- streams and the failover ------------------------------------------------

# snapshot NAME: the directors' IPVS connection tables, which tell which
# director handled which client port, and their IPVS packet counters.
snapshot() {
	local d lines
	for d in $DIRECTORS; do
		# Read twice: the file is read in pages, by position in a table all
		# namespaces share, so an entry can slip between two pages while
		# others expire.
		mapfile -t lines <"/proc/${HOLDER[$d]}/net/ip_vs_conn"
		printf '%s\n' "${lines[@]}" >"$OUT/$1.$d"
		mapfile -t lines <"/proc/${HOLDER[$d]}/net/ip_vs_conn"
		printf '%s\n' "${lines[@]}" >>"$OUT/$1.$d"
		mapfile -t lines <"/proc/${HOLDER[$d]}/net/ip_vs_stats"
		printf '%s\n' "${lines[@]}" >"$OUT/$1.stats.$d"
	done
}

# start_streams TAG: a long-lived stream from each client of $OUT/TAG.clients
# (mhnet streams in the background: its report in TAG.out, its exit status
# in TAG.rc), waiting until all are connected.
start_streams() {
	local tag=$1
	(
		ip netns exec c timeout 200 "$MHNET" streams --target "$VIP:$PORT" --clients "$OUT/$tag.clients" \
			--interval-ms "$INTERVAL_MS" --ready-file "$OUT/$tag.ready" --stop-file "$OUT/$tag.stop" \
			>"$OUT/$tag.out" 2>"$OUT/$tag.err"
		echo $? >"$OUT/$tag.rc"
	) &
	if ! wait_for "$OUT/$tag.ready" 60; then
		echo "  the streams did not connect within 60 s"
		: >"$OUT/$tag.stop"
		return 1
	fi
}

# stop_streams TAG: tells the streams of start_streams to close and waits
# for their report.
stop_streams() {
	: >"$OUT/$1.stop"
	wait_for "$OUT/$1.rc" 60 && return 0
	echo "  the streams did not stop within 60 s"
	return 1
}

# failover TAG CLIENTS MODE: a stream from each client, director $DOWN lost
# mid-way, then brought back.
failover() {
	local tag=$1 mode=$3 rc=0
	if [ -s "$2" ]; then
		cp "$2" "$OUT/$tag.clients"
	else
		seq 50001 $((50000 + N)) | sed 's/^/10.0.1.2:/' >"$OUT/$tag.clients"
	fi
	start_streams "$tag" || return 1
	echo "  $N streams connected, exchanging data every $INTERVAL_MS ms; in $HOLD_S s $DOWN goes down (its links to the router and to the switch: the router drops it as a next hop)"
	sleep "$HOLD_S"
	snapshot "$tag.before"
	ip -n rt link set "rt-$DOWN" down
	ip -n "$DOWN" link set "$DOWN-sw" down
	sleep "$AFTER_S"
	snapshot "$tag.after"
	stop_streams "$tag" || rc=1
	demo after "$OUT" "$tag" "$DOWN" "$mode" | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	[ "$rc" = 0 ] || [ "$mode" != expect-ok ] || {
		[ -s "$OUT/$tag.err" ] && sed 's/^/  mhnet: /' "$OUT/$tag.err" | tail -n 5
	}
	# Bring the director back for the next phase.
	ip -n "$DOWN" link set "$DOWN-sw" up
	ip -n rt link set "rt-$DOWN" up
	ip -n rt $ECMP
	return $rc
}

# leave TAG GONE: a stream from each of N client ports while real server GONE
# (1..4) is removed from every director; then new short flows, checked
# against mhsim.
leave() {
	local tag=$1 gone=$2 d rc=0
	seq 46001 $((46000 + N)) | sed 's/^/10.0.1.2:/' >"$OUT/$tag.clients"
	start_streams "$tag" || return 1
	echo "  $N new streams connected; in $HOLD_S s r$gone is removed from every director (ipvsadm -d; expire_nodest_conn=1 drops its connections)"
	sleep "$HOLD_S"
	snapshot "$tag.before"
	for d in $DIRECTORS; do
		ip netns exec "$d" sysctl -qw net.ipv4.vs.expire_nodest_conn=1 &&
			ip netns exec "$d" ipvsadm -d -t "$VIP:$PORT" -r "$(rs "$gone")" || rc=1
	done
	sleep "$AFTER_S"
	stop_streams "$tag" || rc=1
	demo leave "$OUT" "$tag" "$(rs "$gone")" | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1

	# New flows from 300 other client ports: the router spreads them over
	# the three directors; each must reach the server mhsim names for the
	# directors' configuration now.
	seq 47001 47300 | sed 's/^/10.0.1.2:/' >"$OUT/$tag.new"
	ip netns exec c "$MHNET" probe --proto tcp --target "$VIP:$PORT" --clients "$OUT/$tag.new" \
		--parallel 4 >"$OUT/$tag.got" 2>"$OUT/$tag.probe.err"
	ip netns exec d1 ipvsadm -Sn | "$MHSIM" lookup --json --clients-file "$OUT/$tag.new" - >"$OUT/$tag.want"
	demo spread "$OUT" "$tag" "$(rs "$gone")" | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	for d in $DIRECTORS; do ip netns exec "$d" sysctl -qw net.ipv4.vs.expire_nodest_conn=0; done
	return $rc
}

# ---- the rolling upgrade from the in-tree C mh ----------------------------------

# configure_fleet SCHED1 SCHED2 SCHED3: on every director a TCP service on
# VIP:PORT with mh-port (the streams) and a UDP one without (the port is
# not hashed in upstream mode: leaving it moves most flows), both with
# flag-3; director dK with scheduler SCHEDK, the real servers added in the
# same order everywhere (C directors agree only if their histories do).
# (ipvsadm knows mh-port by that name only for a scheduler named mh:
# flag-2 is the same bit.)
configure_fleet() {
	local d k=1 i r s p
	for d in $DIRECTORS; do
		s=${!k}
		r="-C"$'\n'
		for p in "t -b flag-2,flag-3" "u -b flag-3"; do
			r+="-A -${p%% *} $VIP:$PORT -s $s ${p#* }"$'\n'
			for i in 1 2 3 4; do r+="-a -${p%% *} $VIP:$PORT -r $(rs "$i") -g -w 1"$'\n'; done
		done
		ip netns exec "$d" ipvsadm -R <<<"$r" || { echo "$d: ipvsadm -R failed"; return 1; }
		k=$((k + 1))
	done
}

# edit_fleet t|u ARGS...: ipvsadm -E ARGS on the TCP or UDP service of
# every director.
edit_fleet() {
	local d p=$1
	shift
	for d in $DIRECTORS; do
		ip netns exec "$d" ipvsadm -E -"$p" "$VIP:$PORT" "$@" || return 1
	done
}

# wait_modes MODE: until both services of every director have a table in
# MODE (a flag-3 edit reaches the module with the next packet: probe flows
# meanwhile), 30 rounds at most.
wait_modes() {
	local mode=$1 d p ok i
	for i in $(seq 30); do
		ok=1
		for d in $DIRECTORS; do
			for p in tcp udp; do
				[ "$(proc_json "$d" --service "$p:$VIP:$PORT" 2>/dev/null | jq -r '.services[0].mode')" = "$mode" ] || ok=0
			done
		done
		[ "$ok" = 1 ] && return 0
		seq $((49001 + i * 20)) $((49020 + i * 20)) | sed 's/^/10.0.1.2:/' >"$OUT/nudge.clients"
		for p in tcp udp; do
			ip netns exec c "$MHNET" probe --proto "$p" --target "$VIP:$PORT" --clients "$OUT/nudge.clients" \
				--parallel 4 >/dev/null 2>&1
		done
	done
	return 1
}

# upgrade: d1 and d2 run the in-tree C mh, d3 this module in upstream mode
# (flag-3; registered as "mhrs" here, since C holds the name "mh" in this
# one kernel); a C director, then the Rust one, is lost under streams. Then
# d1 and d2 move to the Rust module, the fleet leaves upstream mode, and
# the flows that move are mhsim's.
upgrade() {
	local ko alt=${MH_RUN:-}/alt/ip_vs_mh_rs.ko rc=0
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "  the in-tree ip_vs_mh.ko is not installed"; return 1; }
	[ -f "$alt" ] || { echo "  no ip_vs_mh_rs.ko named mhrs ($alt): tests/vm/run --alt-name-module"; return 1; }
	for d in $DIRECTORS; do ip netns exec "$d" ipvsadm -C; done
	for _ in $(seq 20); do
		rmmod ip_vs_mh_rs 2>/dev/null && break
		sleep 0.5
	done
	insmod "$ko" && insmod "$alt" || { echo "  cannot load the C module and the Rust one named mhrs"; return 1; }
	configure_fleet mh mh mhrs || return 1
	DEMO_C_DIRECTORS="d1 d2" tables upstream:fleet
	case $? in
	0) ;;
	1) echo "  the C directors' tables and the Rust one's differ"; rc=1 ;;
	*) echo "  the Rust director's table and mhsim's disagree"; rc=1 ;;
	esac
	# Other client ports for each failover: no stream meets the connection
	# entry of an earlier one.
	seq 51001 $((51000 + N)) | sed 's/^/10.0.1.2:/' >"$OUT/up-c.ports"
	# d2: the router's hash-threshold ECMP hands its flows to both others,
	# the C d1 and the Rust d3.
	DOWN=d2
	echo "  d2 (C) goes down"
	failover up-c "$OUT/up-c.ports" expect-ok || rc=1
	seq 52001 $((52000 + N)) | sed 's/^/10.0.1.2:/' >"$OUT/up-rs.ports"
	DOWN=d3
	echo "  d3 (Rust, upstream mode) goes down"
	failover up-rs "$OUT/up-rs.ports" expect-ok || rc=1
	DOWN=d2

	echo "  d1 and d2 move to the Rust module (ipvsadm -E -s mhrs), still in upstream mode; then every director leaves it (no flag-3)"
	edit_fleet t -s mhrs -b flag-2,flag-3 && edit_fleet u -s mhrs -b flag-3 || rc=1
	tables upstream:fleet-rust
	[ $? = 0 ] || { echo "  the directors' tables differ, or differ from mhsim's, after the move to Rust"; rc=1; }
	# New UDP flows before and after the switch (UDP: the same clients can
	# be asked again once their entries have expired).
	ipvs_udp_timeout=1
	for d in $DIRECTORS; do ip netns exec "$d" ipvsadm --set 0 0 "$ipvs_udp_timeout"; done
	seq 53001 53300 | sed 's/^/10.0.1.2:/' >"$OUT/switch.clients"
	ip netns exec c "$MHNET" probe --proto udp --target "$VIP:$PORT" --clients "$OUT/switch.clients" \
		--parallel 4 >"$OUT/switch.before.got" 2>"$OUT/switch.before.err"
	ip netns exec d1 ipvsadm -Ln --nosort >"$OUT/switch.list"
	sed -i 's/ mhrs / mh /' "$OUT/switch.list"
	"$MHSIM" diff --json --service "udp:$VIP:$PORT" --before-mode upstream --after-mode sorted \
		--before-file "$OUT/switch.list" --after-file "$OUT/switch.list" \
		--clients-file "$OUT/switch.clients" >"$OUT/switch.want" || rc=1
	edit_fleet t -s mhrs -b flag-2 && edit_fleet u -s mhrs || rc=1
	wait_modes sorted || { echo "  a director's table is not in sorted mode 30 rounds after the switch"; rc=1; }
	sleep $((ipvs_udp_timeout + 2))
	ip netns exec c "$MHNET" probe --proto udp --target "$VIP:$PORT" --clients "$OUT/switch.clients" \
		--parallel 4 >"$OUT/switch.after.got" 2>"$OUT/switch.after.err"
	demo switch "$OUT" switch | sed 's/^/  /'
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	for d in $DIRECTORS; do ip netns exec "$d" ipvsadm -C; done
	rmmod ip_vs_mh_rs 2>/dev/null
	rmmod ip_vs_mh 2>/dev/null
	return $rc
}

# ---- the demo ----------------------------------------------------------------

# Kernel messages below warnings stay off the console (bridge ports coming
# and going); warnings and worse still reach it, and tests/vm/run.
dmesg -n 5 2>/dev/null
# Loaded first, so that its one kernel warning (taint) comes before the report.
rmmod ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs ${DEMO_PHASE1_PARAMS:-}
echo "ip_vs_mh_rs demo — 3 directors behind ECMP, 4 real servers, direct routing"
if ! out=$(topology 2>&1) || ! holders; then
	echo "$out" | tail -n 20 | sed 's/^/  /'
	echo "FAIL demo: the topology could not be set up"
	topo_down
	exit 1
fi
echo "client 10.0.1.2 -> router (ECMP, L4 hash) -> d1 d2 d3 (IPVS mh, sloppy_tcp) -> r1..r4 (10.0.2.11-14, VIP $VIP on lo) -> back via the router"
echo "directors' histories: $HISTORY"

echo "-- default mode (ip_vs_mh_rs sorts the real servers by address)"
configure || bad "configuring the directors failed"
tables sorted 10000 45999
case $? in
0) ;;
1) bad "the default mode's fingerprints differ" ;;
*) bad "the module's table and mhsim's disagree in the default mode" ;;
esac
failover sorted "$OUT/clients.1" expect-ok || bad "streams broke in the default mode"

echo "-- a real server leaves (default mode)"
leave leave 3 || bad "removing a real server disturbed other streams, or new flows went astray"

echo "-- contrast: upstream mode, -b flag-3,mh-port (the in-tree C module's table: IPVS list order)"
if ! configure "-b flag-3,mh-port"; then
	bad "configuring the directors (upstream mode) failed"
else
	tables upstream
	case $? in
	0) bad "upstream mode unexpectedly gave identical fingerprints" ;;
	1) ;;
	*) bad "the module's table and mhsim's disagree in upstream mode" ;;
	esac
	failover upstream "$OUT/clients.2" contrast
	echo "  (expected with list order: each director's table depends on its history, so a moved stream may meet another real server, which resets it)"
fi

echo "-- rolling upgrade from the in-tree C mh (the same history on every director, flag-3)"
upgrade || bad "the rolling upgrade from the C module broke streams, or the switch to sorted mode moved other flows than mhsim's"

for d in $DIRECTORS; do ip netns exec "$d" ipvsadm -C 2>/dev/null; done
kill "${HOLDER[@]}" 2>/dev/null
topo_down
rmmod ip_vs_mh_rs 2>/dev/null
if [ ${#failed[@]} = 0 ]; then
	echo "PASS demo (${SECONDS} s in the VM)"
	exit 0
fi
for f in "${failed[@]}"; do echo "FAIL demo: $f"; done
# The demo's files, for a closer look (tests/demo/.gitignore).
rm -rf "$MH_REPO/tests/demo/last-failure"
cp -r "$OUT" "$MH_REPO/tests/demo/last-failure" && echo "(its files: tests/demo/last-failure/)"
exit 1
