#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Whether a large rebuild in one network namespace holds up configuration
# changes in another (inside the VM, any kernel; not part of make check):
#
#   tests/vm/run -- bench/netns-stall.sh
#
# The module is loaded with table_size=131071. Namespace a gets a service
# whose real servers are added one by one (each addition rebuilds a
# 131 071-slot table) while namespace b times STALL_EDITS weight edits of
# a small service of its own (each a rebuild of b's table); the same edits
# are timed with a idle first. IPVS's configuration mutex is per namespace
# (Linux 7.3) and so is the module's rebuild workspace: b's edits should
# take about as long either way, and not wait for a's rebuilds. Under TCG a
# busy vCPU slows everything else down, so b's edits are also timed while a
# plain CPU loop runs in a (the control): what a's rebuilds add beyond it
# would be waiting. Prints the times per edit (median and maximum) and a's
# time per rebuild, and one `BENCH {json}` line. Every loop is bounded.
# (tests/reliability/rebuild-isolation.sh is the test of the same property,
# with a rebuild that holds its namespace's rebuild state without using
# the CPU.)
source "$(dirname "$0")/../tests/lib/guest.sh"
export LC_ALL=C

EDITS=${STALL_EDITS:-40}
A_SERVERS=${STALL_A_SERVERS:-700}
OUT=/tmp/netns-stall
rm -rf "$OUT"
mkdir -p "$OUT"

modprobe ip_vs || exit 1
rmmod ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs table_size=131071 || exit 1
for ns in a b; do
	bare_ns "$ns" 16 || exit 1
done
ip netns exec b ipvsadm -A -t 10.9.0.1:80 -s mh
for i in 1 2 3 4; do ip netns exec b ipvsadm -a -t 10.9.0.1:80 -r "10.0.2.1$i:80" -m; done
ip netns exec a ipvsadm -A -t 10.9.0.2:80 -s mh

# edits FILE: EDITS weight edits in b, the wall time of each (ns) to FILE.
edits() {
	local i t0 t1
	for i in $(seq "$EDITS"); do
		t0=$(date +%s%N)
		ip netns exec b ipvsadm -e -t 10.9.0.1:80 -r 10.0.2.11:80 -m -w $((i % 3 + 1))
		t1=$(date +%s%N)
		echo $((t1 - t0))
	done >"$1"
}

# stats FILE: "median max" in ms.
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.1f %.1f", v[int((NR + 1) / 2)] / 1e6, v[NR] / 1e6 }'; }

edits "$OUT/idle"

# The control: one vCPU kept busy in a for as long as b's edits take,
# without IPVS.
ip netns exec a timeout 120 sh -c 'while :; do :; done' &
hog=$!
sleep 2
edits "$OUT/hog"
kill "$hog" 2>/dev/null
wait "$hog" 2>/dev/null

# a's churn: its servers added one by one, in the background.
(
	t0=$(date +%s%N)
	for i in $(seq "$A_SERVERS"); do
		echo "-a -t 10.9.0.2:80 -r 10.0.$((3 + i / 250)).$((i % 250 + 1)):80 -m"
	done | ip netns exec a ipvsadm -R
	echo $(($(date +%s%N) - t0)) >"$OUT/a.ns"
) &
churn=$!
# Let a's rebuilds get going, then time b's edits while they run.
sleep 2
edits "$OUT/busy"
if kill -0 "$churn" 2>/dev/null; then still=yes; else still=no; fi
wait "$churn"
a_ms=$(($(cat "$OUT/a.ns") / 1000000))
a_rebuilds=$(proc_json a --service tcp:10.9.0.2:80 | jq -r '.services[0].rebuilds')

read -r idle_med idle_max < <(stats "$OUT/idle")
read -r hog_med hog_max < <(stats "$OUT/hog")
read -r busy_med busy_max < <(stats "$OUT/busy")
echo "b's weight edits (131071 slots, 4 servers), ms per edit, median / max:"
echo "  a idle:                        $idle_med / $idle_max"
echo "  a running a CPU loop:          $hog_med / $hog_max"
echo "  a adding $A_SERVERS servers one by one: $busy_med / $busy_max (a still busy when b was done: $still)"
echo "a: $a_rebuilds rebuilds in $a_ms ms, $((a_ms / (a_rebuilds > 0 ? a_rebuilds : 1))) ms each"
echo "BENCH {\"phase\": \"netns-stall\", \"edits\": $EDITS, \"idle_median_ms\": $idle_med, \"idle_max_ms\": $idle_max, \"cpu_loop_median_ms\": $hog_med, \"cpu_loop_max_ms\": $hog_max, \"busy_median_ms\": $busy_med, \"busy_max_ms\": $busy_max, \"a_rebuilds\": $a_rebuilds, \"a_ms\": $a_ms, \"a_busy_throughout\": \"$still\"}"

for ns in a b; do ip netns exec "$ns" ipvsadm -C; ip netns del "$ns"; done
rmmod ip_vs_mh_rs
