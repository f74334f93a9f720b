# SPDX-License-Identifier: GPL-2.0
# Helpers of the traffic tests (sourced inside the VM; sources tests/lib/guest.sh).
#
# Every scenario prints exactly one line
#     PASS|FAIL <scenario-name> flows=<sent> matching=<matching>
# (flows: flows sent by the scenario and checked against the model; matching:
# those whose outcome equals the model's), with the scenario's log indented
# below it on failure (or always with TR_VERBOSE=1); a passing scenario
# shows only its "NOTE ..." lines (a measurement worth reporting). A script
# ends with "N passed, M failed" (finish), non-zero if any scenario failed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/guest.sh"
export LC_ALL=C

TR=/tmp/traffic
mkdir -p "$TR"
TR_COUNTS=$TR/counts
# The scenarios to run: TR_ONLY="name1 name2" runs only these (by name).
TR_ONLY=${TR_ONLY:-}

# Client addresses, chosen to spread over the hash input: two on the client
# link and two in other networks (routed to ns c by the director).
CLIENTS4="10.0.1.2 10.0.1.3 198.51.100.7 203.0.113.200"
CLIENTS6="fd00:1::2 fd00:1::3 2001:db8:5::7 2001:db8:77:1::1"

# record FLOWS MATCHING: adds to the running scenario's counts.
record() { echo "$1 $2" >>"$TR_COUNTS"; }

# scenario NAME CMD...: runs CMD (a function) in a subshell, its output to a
# log; one PASS/FAIL line with the flows it recorded.
scenario() {
	local name=$1 rc f m log=$TR/log.$1 start
	shift
	if [ -n "$TR_ONLY" ] && ! [[ " $TR_ONLY " == *" $name "* ]]; then
		return 0
	fi
	: >"$TR_COUNTS"
	start=$(date +%s)
	("$@") >"$log" 2>&1 </dev/null
	rc=$?
	f=$(awk '{ f += $1 } END { print f + 0 }' "$TR_COUNTS")
	m=$(awk '{ m += $2 } END { print m + 0 }' "$TR_COUNTS")
	if [ "$rc" = 0 ]; then
		pass "$name flows=$f matching=$m"
		if [ -n "${TR_VERBOSE:-}" ]; then
			sed 's/^/    /' "$log"
		else
			sed -n 's/^NOTE /    /p' "$log"
		fi
	else
		fail "$name flows=$f matching=$m"
		if [ -n "${TR_VERBOSE:-}" ]; then
			sed 's/^/    /' "$log"
		else
			tail -n 40 "$log" | sed 's/^/    /'
		fi
	fi
	[ -z "${TR_VERBOSE:-}" ] || echo "    ($(($(date +%s) - start)) s)"
}

# need COND-CMD... MESSAGE-on-failure: for readable assertions.
need() {
	local msg=${*: -1}
	if ! "${@:1:$#-1}"; then
		echo "not so: $msg"
		return 1
	fi
}

# not CMD...: CMD fails (for need).
not() { ! "$@"; }

# ---- topology --------------------------------------------------------------

# traffic_up [COUNT]: topo_up COUNT (default 4) plus the extra client
# addresses; IPVS loaded, without conntrack (with it, a SYN that reuses a
# closed entry's 4-tuple is dropped once) and with connection reuse.
traffic_up() {
	local count=${1:-4} a
	topo_up "$count"
	for a in 10.0.1.3/24 198.51.100.7/32 203.0.113.200/32; do
		ip -n c addr add "$a" dev veth-c
	done
	for a in fd00:1::3/64 2001:db8:5::7/128 2001:db8:77:1::1/128; do
		ip -n c addr add "$a" dev veth-c nodad
	done
	ip -n d route add 198.51.100.7/32 via 10.0.1.2
	ip -n d route add 203.0.113.200/32 via 10.0.1.2
	ip -n d -6 route add 2001:db8:5::7/128 via fd00:1::2
	ip -n d -6 route add 2001:db8:77:1::1/128 via fd00:1::2
	modprobe ip_vs
	ipvs_sysctls
}

# spray_up: for packets spray.py writes from ns c with any client address
# (10.200.0.0/16, 2001:db8:c0::/96): the director routes those networks to
# the client link (its replies, ICMP if any, go there) and accepts them on
# it; SPRAY is the tool, MAC the director's address on that link.
spray_up() {
	SPRAY=$MH_REPO/tests/traffic/spray.py
	ip -n d route add 10.200.0.0/16 via 10.0.1.2
	ip -n d -6 route add 2001:db8:c0::/96 via fd00:1::2
	ip netns exec d sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth-cd.rp_filter=0
	MAC=$(ip -n d -j link show veth-cd | jq -r '.[0].address')
}

# IPVS settings in the director: reschedule reused 4-tuples, no conntrack,
# and a TCP connection entry's ESTABLISHED timeout of 120 s instead of 15
# minutes: on Linux 7.3 an entry of a reused 4-tuple was once left in CLOSE
# with the 15 minutes of ESTABLISHED still on its timer, which no bounded
# wait_conns_gone outlasts. Every TCP flow of these tests is short or sends
# every few hundred milliseconds.
ipvs_sysctls() {
	ip netns exec d sysctl -qw net.ipv4.vs.conntrack=0 net.ipv4.vs.conn_reuse_mode=1 \
		net.ipv4.vs.expire_nodest_conn=0
	ip netns exec d ipvsadm --set 120 0 0
}

# serve_rs PORT [COUNT]: in r1..rCOUNT, real servers for TCP and UDP on PORT,
# named as ipvsadm names them: 10.0.2.(10+i):PORT on 0.0.0.0 and
# [fd00:2::(10+i)]:PORT on [::].
serve_rs() {
	local port=$1 count=${2:-4} i
	for i in $(seq 1 "$count"); do
		serve_one "r$i" "10.0.2.$((10 + i)):$port" --tcp "0.0.0.0:$port" --udp "0.0.0.0:$port"
		serve_one "r$i" "[fd00:2::$((10 + i))]:$port" --tcp "[::]:$port" --udp "[::]:$port"
	done
	wait_served
}

# serve_one NS ID ARGS...: one mhnet server (started, not waited for).
serve_one() {
	local ns=$1 id=$2
	shift 2
	local log
	log=$TR/serve.$(echo "$ns.$id" | tr -c 'A-Za-z0-9.\n' _).log
	ip netns exec "$ns" "$MHNET" serve --id "$id" "$@" >"$log" 2>&1 &
	echo "$log" >>"$TR/serve.list"
}

# wait_served: every server started by serve_one says ready (60 s at most).
wait_served() {
	local log ok
	[ -f "$TR/serve.list" ] || return 0
	for _ in $(seq 600); do
		ok=1
		while read -r log; do
			grep -q ready "$log" 2>/dev/null || { ok=0; break; }
		done <"$TR/serve.list"
		[ "$ok" = 1 ] && break
		sleep 0.1
	done
	if [ "$ok" != 1 ]; then
		echo "a real server did not start: $log: $(cat "$log")"
		return 1
	fi
	rm -f "$TR/serve.list"
}

traffic_down() {
	ip netns exec d ipvsadm -C 2>/dev/null
	topo_down
	rm -f "$TR/serve.list"
}

# ---- flows -----------------------------------------------------------------

# flows FILE FAMILY FIRST_PORT COUNT: COUNT client flows, the client
# addresses of FAMILY (4 or 6) in turn, source ports FIRST_PORT upwards
# (COUNT/4 ports per address). In mhsim's notation ([v6]:port).
flows() {
	local file=$1 fam=$2 first=$3 count=$4 addrs
	if [ "$fam" = 6 ]; then addrs=$CLIENTS6; else addrs=$CLIENTS4; fi
	echo "$addrs" | awk -v n="$count" -v p="$first" -v v6="$([ "$fam" = 6 ] && echo 1)" '{
		for (i = 0; i < n; i++) {
			a = $(i % NF + 1)
			port = p + int(i / NF)
			if (v6) print "[" a "]:" port; else print a ":" port
		}
	}' >"$file"
}

# probe OUT PROTO TARGET CLIENTS [PARALLEL]: one flow per client from ns c;
# OUT gets "client server" lines ("client ERROR" for a failed flow), sorted.
probe() {
	local out=$1 proto=$2 target=$3 clients=$4 par=${5:-4}
	ip netns exec c timeout 600 "$MHNET" probe --proto "$proto" --target "$target" \
		--clients "$clients" --parallel "$par" >"$out.raw" 2>"$out.err"
	echo "probe $proto $target: $(cat "$out.err")"
	awk '{ print $1, ($2 == "ERROR" ? "ERROR" : $2) }' "$out.raw" | sort -k1,1 >"$out"
	grep ERROR "$out.raw" | sort -k3 | awk '{ n[$3]++ } END { for (r in n) print "  probe errors: " r " " n[r] }'
}

# model OUT CONF CLIENTS [MHSIM ARGS...]: mhsim's server for each client
# ("NONE" if none), for the configuration CONF (see conf).
model() {
	local out=$1 conf=$2 clients=$3
	shift 3
	lookup_model "$clients" "$@" <"$conf" >"$out.txt" || return 1
	sort -k1,1 "$out.txt" >"$out"
	[ -s "$out" ]
}

# conf OUT: the director's configuration, as mhsim reads it: the listing in
# IPVS list order ('ipvsadm -Sn' sorts real servers; '-Sn --nosort' is refused).
conf() { ip netns exec d ipvsadm -Ln --nosort >"$1"; }

# compare WHAT GOT WANT: records the flows of WANT and those GOT agrees with;
# fails unless every flow matches. Mismatches are printed.
compare() {
	local what=$1 got=$2 want=$3 n m
	n=$(wc -l <"$want")
	m=$(join "$got" "$want" | awk '$2 == $3' | wc -l)
	record "$n" "$m"
	echo "$what: flows $n, matching $m"
	if [ "$n" != "$m" ] || [ "$n" = 0 ]; then
		join -a 2 -e MISSING -o 0,1.2,2.2 "$got" "$want" | awk '$2 != $3 { print "  mismatch: " $1 " got " $2 " model " $3 }' | head -n 8
		return 1
	fi
}

# probe_model WHAT PROTO TARGET CLIENTS SERVICE [MHSIM ARGS...]: probe, then
# compare with the model of the director's current configuration of
# SERVICE (an mhsim --service selector). Leaves $TR/WHAT.got and .want.
probe_model() {
	local what=$1 proto=$2 target=$3 clients=$4 svc=$5
	shift 5
	conf "$TR/$what.conf"
	probe "$TR/$what.got" "$proto" "$target" "$clients"
	model "$TR/$what.want" "$TR/$what.conf" "$clients" --service "$svc" "$@" || return 1
	compare "$what" "$TR/$what.got" "$TR/$what.want"
}

# wait_conns_gone CLIENTS: until the director has no connection entry left
# from any client of CLIENTS, so that probing them again creates the only
# entry of each flow. Two entries with the same key make IPVS's lookups
# ambiguous, and Linux 7.3's resizable connection table does not return the
# newest first: a SYN that reuses the 4-tuple of a closed entry is
# rescheduled (conn_reuse_mode=1) but the old entry is only expired by its
# timer, and until then the handshake's ACK can match it and go to the old
# server (which answers with an RST; the new one stays in SYN-RECV); the
# replies of a flow of another service from the same client port to the
# same real server can match the old entry (and come back from the wrong
# VIP port). Seen a few times per thousand reused 4-tuples; the scheduler
# is not involved (it chose the model's server each time).
# The wait follows IPVS's own timers: 90 s at first, longer while an entry
# left says (its expire column) that it goes later, 300 s at most; if they
# are still there then, their states are printed.
wait_conns_gone() {
	local start=$SECONDS limit=90 left longest
	while :; do
		left=$(ip netns exec d ipvsadm -Lnc | awk 'NR == FNR { want[$1] = 1; next } ($4 in want)' "$1" -)
		[ -z "$left" ] && return 0
		longest=$(awk '{ split($2, t, ":"); s = t[1] * 60 + t[2]; if (s > m) m = s } END { print m + 0 }' <<<"$left")
		[ $((SECONDS - start + longest + 5)) -le "$limit" ] || limit=$((SECONDS - start + longest + 5))
		[ "$limit" -le 300 ] || limit=300
		[ $((SECONDS - start)) -lt "$limit" ] || break
		sleep 0.5
	done
	echo "$(wc -l <<<"$left") connection entries of the clients in $1 still there after $((SECONDS - start)) s; their states:"
	awk '{ print $3 }' <<<"$left" | sort | uniq -c | sed 's/^/    /'
	head -n 5 <<<"$left" | sed 's/^/    /'
	return 1
}

# changed A B: the clients whose server differs between two result files.
changed() { join "$1" "$2" | awk '$2 != $3 { print $1 }'; }

# moved_as_model WHAT BEFORE AFTER: the flows that changed server between
# the probes BEFORE and AFTER ($TR/X.got) are exactly those the model
# predicts ($TR/X.want).
moved_as_model() {
	local what=$1 b=$TR/$2 a=$TR/$3 seen want
	changed "$b.got" "$a.got" >"$TR/$what.moved-seen"
	changed "$b.want" "$a.want" >"$TR/$what.moved-model"
	seen=$(wc -l <"$TR/$what.moved-seen")
	want=$(wc -l <"$TR/$what.moved-model")
	echo "$what: flows that moved: $seen, the model predicts $want"
	if ! cmp -s "$TR/$what.moved-seen" "$TR/$what.moved-model"; then
		diff "$TR/$what.moved-seen" "$TR/$what.moved-model" | head -n 8 | sed 's/^/  /'
		return 1
	fi
}

# wait_file FILE SECONDS: until FILE exists.
wait_file() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	echo "timed out waiting for $1"
	return 1
}

# streams_start NAME TARGET CLIENTS: long-lived TCP streams from ns c (in
# the background, 300 s at most); returns once all are connected.
streams_start() {
	local name=$1 target=$2 clients=$3
	rm -f "$TR/$name.ready" "$TR/$name.stop" "$TR/$name.rc"
	(
		ip netns exec c timeout 300 "$MHNET" streams --target "$target" --clients "$clients" \
			--interval-ms 200 --ready-file "$TR/$name.ready" --stop-file "$TR/$name.stop" \
			>"$TR/$name.out" 2>"$TR/$name.err"
		echo $? >"$TR/$name.rc"
	) >/dev/null 2>&1 &
	wait_file "$TR/$name.ready" 60
}

# streams_stop NAME: stops the streams and waits for their result; prints it.
streams_stop() {
	local name=$1
	touch "$TR/$name.stop"
	wait_file "$TR/$name.rc" 60 || return 1
	sed 's/^/  stream: /' "$TR/$name.out"
	[ -s "$TR/$name.err" ] && sed 's/^/  /' "$TR/$name.err"
	return 0
}

# streams_ok NAME [SERVER]: every stream ended ok, on the server it started
# on (and that server is SERVER if given), and every chunk it sent was
# echoed back.
streams_ok() {
	local name=$1 want=${2:-} bad
	bad=$(awk -v want="$want" '{
		split($4, s, "="); split($5, v, "=")
		if ($6 != "status=ok" || $2 != $3 || (want != "" && $2 != want) || s[2] != v[2] || s[2] < 5)
			print
	}' "$TR/$name.out")
	if [ -n "$bad" ] || [ "$(cat "$TR/$name.rc")" != 0 ] || ! [ -s "$TR/$name.out" ]; then
		echo "streams $name not all ok (exit $(cat "$TR/$name.rc")):"
		echo "$bad" | sed 's/^/  /'
		return 1
	fi
	echo "streams $name: $(wc -l <"$TR/$name.out") all ok${want:+ on $want}"
}

# pick_clients OUT N SERVER CONF SERVICE FAMILY FIRST_PORT [MHSIM ARGS]: N
# client sources (from FIRST_PORT up, among PICK_SPAN (400) candidates)
# that the model sends to SERVER.
pick_clients() {
	local out=$1 n=$2 server=$3 conf=$4 svc=$5 fam=$6 first=$7
	shift 7
	flows "$TR/pick.c" "$fam" "$first" "${PICK_SPAN:-400}"
	model "$TR/pick.m" "$conf" "$TR/pick.c" --service "$svc" "$@" || return 1
	awk -v s="$server" '$2 == s { print $1 }' "$TR/pick.m" | head -n "$n" >"$out"
	[ "$(wc -l <"$out")" = "$n" ] || { echo "fewer than $n clients map to $server"; return 1; }
}

# proc_counts SERVICE: "decisions fallbacks refusals" of an mh service of
# the director (an mhsim --service selector: tcp:10.0.1.1:80); nothing if
# the module is not loaded or has no such service.
proc_counts() {
	proc_json d --service "$1" 2>/dev/null | jq -r '.services[0] | "\(.decisions) \(.fallbacks) \(.refusals)"'
}

# module_load [PARAMS...]: (re)load ip_vs_mh_rs with PARAMS; no service may
# use mh.
module_load() {
	rmmod ip_vs_mh_rs 2>/dev/null
	modprobe ip_vs_mh_rs "$@"
}
