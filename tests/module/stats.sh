#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# /proc/net/ip_vs_mh in a booted kernel: per-service and per-server figures
# agree with the configuration and the model after each change, counters
# move with traffic, fallbacks and refusals, and each network namespace
# sees only its own services.
source "$(dirname "$0")/../lib/guest.sh"
VIP=10.0.1.1:80
SVC=tcp:$VIP
PROC() { ip netns exec "${1:-d}" cat /proc/net/ip_vs_mh; }
# One figure of the service, as mhsim reads the file: S .rebuilds, .moved...
S() { proc_get d "$SVC" ".$1"; }

# The figures below are for 4093-slot tables, whatever the kernel's default.
rmmod ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs table_size=4093 || fail "cannot load ip_vs_mh_rs table_size=4093"
topo_up 4
serve_all 80 4
ip netns exec d ipvsadm -A -t "$VIP" -s mh
for i in 1 2 3 4; do
	ip netns exec d ipvsadm -a -t "$VIP" -r "10.0.2.$((10 + i)):80" -m -w $((i == 4 ? 2 : 1))
done

# The D lines' slots must be what mhsim computes for `ipvsadm -Sn`.
slots_match_model() {
	local got want
	got=$(proc_json d --service "$SVC" | jq -r '.services[0].dests[] | "\(.address) \(.table_weight) \(.slots)"' | sort)
	want=$(ip netns exec d ipvsadm -Sn | "$MHSIM" table --json - |
		python3 -c 'import json,sys
d = json.load(sys.stdin)
for s in d["servers"]:
    a = s["addr"]
    a = "[%s]" % a if ":" in a else a
    print("%s:%d %d %d" % (a, s["port"], s["weight"], s["slots"]))' | sort)
	echo "proc:"; echo "$got"; echo "model:"; echo "$want"
	[ -n "$got" ] && [ "$got" = "$want" ]
}

format_ok() {
	local out
	out=$(PROC)
	echo "$out"
	# The format as README.md documents it: version, column headers, records.
	echo "$out" | head -n 3 | grep -q '^# ip_vs_mh_rs 3$' &&
		echo "$out" | grep -q '^# S proto address size mode rebuilds last_rebuild moved decisions fallbacks refusals bytes stale$' &&
		echo "$out" | grep -q '^# D address weight table_weight slots slot_share weight_share$' &&
		echo "$out" | grep -qE '^S TCP 10\.0\.1\.1:80 4093 sorted 4 [0-9]+ [0-9]+ 0 0 0 [0-9]+ 0$' &&
		[ "$(echo "$out" | grep -c '^D ')" = 4 ] &&
		echo "$out" | grep -qE '^D 10\.0\.2\.14:80 2 2 [0-9]+ 39\.[0-9]{2} 40\.00$'
}
check "header names the columns, S and D records as configured" format_ok
check "per-server slots equal the model's" slots_match_model

saved_config() { ip netns exec d ipvsadm -Sn >"$1"; }

# The slots that changed owner in the last rebuild, as /proc counts them,
# equal what mhsim computes between the configuration before it ($1, saved
# `ipvsadm -Sn`) and now.
moved_as_model() {
	local want got
	saved_config /tmp/after.sn || return 1
	want=$("$MHSIM" diff --json --service "$SVC" --before-file "$1" --after-file /tmp/after.sn |
		jq .changed_slots)
	got=$(S moved)
	echo "moved: proc $got, model $want"
	[ -n "$got" ] && [ "$got" = "$want" ]
}

decisions_move() {
	clients /tmp/s1 10.0.1.2 41001 100
	probe_vs_model stats tcp "$VIP" /tmp/s1 || return 1
	PROC
	[ "$(S decisions)" = 100 ]
}
check "100 flows count 100 decisions" decisions_move

after_change() {
	saved_config /tmp/before.sn || return 1
	ip netns exec d ipvsadm -e -t "$VIP" -r 10.0.2.12:80 -m -w 3 || return 1
	local out moved
	out=$(PROC)
	moved=$(S moved)
	echo "$out"
	# The weight change is the 5th table; some slots moved, not all.
	[ "$(S rebuilds)" = 5 ] && [ "$moved" -gt 0 ] &&
		[ "$moved" -lt 4093 ] && slots_match_model && moved_as_model /tmp/before.sn
}
check "after a weight change: rebuild counted, moved slots, model agrees" after_change

threshold_only() {
	ip netns exec d ipvsadm -e -t "$VIP" -r 10.0.2.13:80 -m -w 1 -x 100 || return 1
	[ "$(S rebuilds)" = 5 ]
}
check "a threshold-only edit rebuilds nothing" threshold_only

mhsim_check() {
	ip netns exec d sh -c "ipvsadm -Sn | '$MHSIM' check"
}
check "mhsim check agrees with the kernel's figures" mhsim_check

mhsim_check_catches() {
	# A doctored copy of the file (one slot moved) must be caught. (Writing
	# a wrong file by column is the point here.)
	ip netns exec d cat /proc/net/ip_vs_mh |
		awk '$1 == "D" && !done { $5 = $5 + 1; done = 1 } { print }' >/tmp/doctored
	! ip netns exec d sh -c "ipvsadm -Sn | '$MHSIM' check --proc /tmp/doctored"
}
check "mhsim check reports a mismatch" mhsim_check_catches

# The module's own memory accounting: 2 bytes per slot, plus a per-server
# part (a server reference and its record) and a small fixed part (the
# service's state, counters, registry entry and table header).
bytes_accounted() {
	local b4 b5
	b4=$(S bytes)
	ip netns exec d ipvsadm -a -t "$VIP" -r 10.0.2.15:80 -m -w 1 || return 1
	b5=$(S bytes)
	ip netns exec d ipvsadm -d -t "$VIP" -r 10.0.2.15:80 || return 1
	echo "bytes: 4 servers $b4, 5 servers $b5 (table 4093 slots = 8186 bytes)"
	[ -n "$b4" ] && [ -n "$b5" ] &&
		[ "$b4" -gt 8186 ] && [ $((b4 - 8186)) -lt 1024 ] &&
		[ $((b5 - b4)) -gt 0 ] && [ $((b5 - b4)) -le 64 ] &&
		[ "$(S bytes)" = "$b4" ]
}
check "bytes: 2 per slot, a small part per server and per service" bytes_accounted

moved_on_add_and_delete() {
	# 10.0.2.5 sorts before every other server: the population order
	# changes at its start, not its end.
	saved_config /tmp/before.sn || return 1
	ip netns exec d ipvsadm -a -t "$VIP" -r 10.0.2.5:80 -m -w 2 || return 1
	moved_as_model /tmp/before.sn && slots_match_model || return 1
	saved_config /tmp/before.sn || return 1
	ip netns exec d ipvsadm -d -t "$VIP" -r 10.0.2.13:80 || return 1
	moved_as_model /tmp/before.sn && slots_match_model || return 1
	# Back to the four servers of the steps below: IPVS takes 10.0.2.13 out
	# of its trash, the same server object, at the head of the list.
	saved_config /tmp/before.sn || return 1
	ip netns exec d ipvsadm -a -t "$VIP" -r 10.0.2.13:80 -m -w 1 -x 100 || return 1
	moved_as_model /tmp/before.sn && slots_match_model || return 1
	saved_config /tmp/before.sn || return 1
	ip netns exec d ipvsadm -d -t "$VIP" -r 10.0.2.5:80 || return 1
	moved_as_model /tmp/before.sn && slots_match_model
}
check "moved slots equal the model's after an add and a delete" moved_on_add_and_delete

fallbacks_counted() {
	# A service of its own, whose servers hold no connection: since Linux
	# 7.3 a threshold edit marks a server overloaded at once if it already
	# holds that many connections, and the servers of $VIP hold the closed
	# connections of the steps above until they expire. Here r1 (upper
	# threshold 1) is overloaded exactly while IPVS holds the stream below;
	# the flows sent after it that map to r1 go elsewhere and are counted.
	local fb=10.0.1.1:81 i
	ip netns exec d ipvsadm -A -t "$fb" -s mh -b mh-fallback || return 1
	for i in 1 2 3 4; do
		ip netns exec d ipvsadm -a -t "$fb" -r "10.0.2.$((10 + i)):80" -m -w 1 || return 1
	done
	ip netns exec d ipvsadm -e -t "$fb" -r 10.0.2.11:80 -m -w 1 -x 1 || return 1
	clients /tmp/s2 10.0.1.2 42001 200
	ip netns exec d ipvsadm -Sn | lookup_model /tmp/s2 --service "tcp:$fb" |
		awk '$2 == "10.0.2.11:80" { print $1 }' >/tmp/to-r1
	head -n 1 /tmp/to-r1 >/tmp/hold
	tail -n +2 /tmp/to-r1 | head -n 10 >/tmp/probe-r1
	[ "$(wc -l </tmp/probe-r1)" = 10 ] || return 1
	ip netns exec c "$MHNET" streams --target "$fb" --clients /tmp/hold \
		--duration-s 120 --ready-file /tmp/ready --stop-file /tmp/stop >/tmp/streams.log 2>&1 &
	# Wait for IPVS to hold the stream's connection on r1 (the debug kernel
	# is slow to start a process), not for a guess.
	local n=0
	for _ in $(seq 600); do
		[ -f /tmp/ready ] &&
			n=$(ip netns exec d ipvsadm -Ln -t "$fb" | awk '$2 == "10.0.2.11:80" { print $5 + $6 }') &&
			[ "${n:-0}" -ge 1 ] && break
		sleep 0.1
	done
	[ "${n:-0}" -ge 1 ] || { echo "the stream to 10.0.2.11 did not connect within 60 s: $(cat /tmp/streams.log)"; touch /tmp/stop; wait; return 1; }
	local before after out
	before=$(proc_get d "tcp:$fb" .fallbacks)
	out=$(ip netns exec c "$MHNET" probe --proto tcp --target "$fb" --clients /tmp/probe-r1 2>&1)
	echo "$out"
	after=$(proc_get d "tcp:$fb" .fallbacks)
	touch /tmp/stop
	wait
	PROC
	ip netns exec d ipvsadm -D -t "$fb" || return 1
	! echo "$out" | grep -q 'ERROR\|10.0.2.11:80' && [ $((after - before)) = 10 ]
}
check "overloaded server: mh-fallback flows go elsewhere and are counted" fallbacks_counted

refusals_counted() {
	local i before after
	for i in 1 2 3 4; do
		ip netns exec d ipvsadm -e -t "$VIP" -r "10.0.2.$((10 + i)):80" -m -w 0 || return 1
	done
	before=$(S refusals)
	clients /tmp/s3 10.0.1.2 43001 5
	ip netns exec c "$MHNET" probe --proto tcp --target "$VIP" --clients /tmp/s3 \
		--timeout-ms 500 --retries 0
	after=$(S refusals)
	PROC
	# All weights 0: no slots, every SYN refused (and counted).
	[ "$(proc_get d "$SVC" '.dests | map(.slots) | add')" = 0 ] &&
		[ $((after - before)) -ge 5 ] && dmesg | grep -q 'no destination available'
}
check "all weights 0: flows refused, refusals counted" refusals_counted

namespaces() {
	ip netns add d2
	ip -n d2 link set lo up
	ip netns exec d2 ipvsadm -A -u 10.0.9.1:53 -s mh
	ip netns exec d2 ipvsadm -a -u 10.0.9.1:53 -r 10.0.9.2:53 -m
	local in_d in_d2 in_root
	services() { proc_json "$1" | jq -r '[.services[].service] | join(" ")'; }
	in_d=$(services d)
	in_d2=$(services d2)
	in_root=$(services -)
	echo "d: $in_d"; echo "d2: $in_d2"; echo "root: $in_root"
	ip netns exec d2 ipvsadm -C
	ip netns del d2
	[ "$in_d" = "tcp:10.0.1.1:80" ] && [ "$in_d2" = "udp:10.0.9.1:53" ] && [ -z "$in_root" ]
}
check "each namespace lists only its own services" namespaces

deleted() {
	ip netns exec d ipvsadm -D -t "$VIP" || return 1
	[ "$(proc_json d | jq '.services | length')" = 0 ]
}
check "a deleted service disappears from the file" deleted

topo_down
rmmod ip_vs_mh_rs
check "module unloads after all of it" sh -c '! lsmod | grep -q "^ip_vs_mh_rs "'
finish
