#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The scheduler benchmark inside the VM (started by bench/sched): the
# in-tree C ip_vs_mh ("mh") and ip_vs_mh_rs (its test build named "mhrs")
# in one boot, each measured through mh_bench.ko's proxy scheduler
# (bench/kmod/mh_bench.c), in alternating order, BENCH_ROUNDS times:
#
#   - decisions: ns per call of the scheduler's schedule on prepared
#     packets, for 4 and 100 servers, IPv4 and IPv6, with and without
#     mh-fallback; the Rust module in its default (sorted) mode and with
#     flag-3 (upstream mode, the C module's semantics);
#   - rebuilds, time in the scheduler's callbacks as IPVS's control path
#     calls them (ipvsadm -R): 1 000 servers added one by one in address
#     order and in random order, 20 weight edits at 1 000 servers, 100
#     deletions; and, for the Rust module only, 1 000 servers added at
#     65 521 and 131 071 slots (BENCH_BIG=1: 10 000 too).
#
# Prints one `BENCH {json}` line per measurement. Every loop is bounded.
source "$(dirname "$0")/../tests/lib/guest.sh"
export LC_ALL=C

ROUNDS=${BENCH_ROUNDS:-3}
# BENCH_PHASES: some of "decision rebuild large" (default: all).
PHASES=" ${BENCH_PHASES:-decision rebuild large} "
DECISIONS=${BENCH_DECISIONS:-1000000}
BENCH_KO=${BENCH_KO:?the path of mh_bench.ko}
ALT=${MH_RUN:-}/alt/ip_vs_mh_rs.ko
P=/sys/module/mh_bench/parameters
VIP=10.9.0.1
VIP6=fd00:9::1

[ -f "$ALT" ] || { echo "no ip_vs_mh_rs.ko named mhrs ($ALT): tests/vm/run --alt-name-module"; exit 1; }
c_ko=$(c_mh_ko)
[ -n "$c_ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; exit 1; }
modprobe ip_vs || exit 1
rmmod ip_vs_mh_rs 2>/dev/null
insmod "$c_ko" || exit 1
insmod "$BENCH_KO" || exit 1

# rust_load [PARAM...]: (re)loads the Rust module named mhrs (the proxy
# lets go of its target first).
rust_load() {
	echo 1 >"$P/reset"
	rmmod ip_vs_mh_rs 2>/dev/null
	insmod "$ALT" "$@"
}
rust_load || exit 1

# target SCHED: mhbench's new services are served by SCHED from now on.
target() {
	echo 1 >"$P/reset" &&
		ipvsadm -A -t "$VIP:9" -s mhbench &&
		ipvsadm -E -t "$VIP:9" -s "$1" &&
		echo 9 >"$P/capture" &&
		ipvsadm -D -t "$VIP:9"
}

# servers N FAMILY: N real-server addresses, in address order.
servers() {
	local i
	for i in $(seq 0 $(($1 - 1))); do
		if [ "$2" = 6 ]; then
			printf '[fd00:2::%x:%x]:80\n' $((i / 256)) $((i % 256 + 1))
		else
			echo "10.$((2 + i / 62500)).$((i / 250 % 250)).$((i % 250 + 1)):80"
		fi
	done
}

bench() { echo "BENCH {$1}"; }
hooks_reset() { echo reset >"$P/hooks"; }
# hook NAME: "calls ns max_ns" of the target's NAME callbacks.
hook() { awk -v n="$1" '$1 == n { print $2, $3, $4 }' "$P/hooks"; }

# decisions SCHED MODE ROUND: the decision benchmark's configurations.
decisions() {
	local sched=$1 mode=$2 round=$3 n fam fb flags vip svc calls ns refused
	for n in 4 100; do
		for fam in 4 6; do
			for fb in 0 1; do
				vip=$VIP svc="$VIP:80"
				[ "$fam" = 6 ] && vip=$VIP6 svc="[$VIP6]:80"
				# mh's flags by their generic names (ipvsadm takes mh-*
				# only with -s mh): flag-1 is mh-fallback.
				flags=
				[ "$fb" = 1 ] && flags=flag-1
				[ "$mode" = upstream ] && flags=${flags:+$flags,}flag-3
				{
					echo "-A -u $svc -s mhbench${flags:+ -b $flags}"
					servers "$n" "$fam" | sed "s/^/-a -u $svc -m -r /"
				} | ipvsadm -R || return 1
				echo "80 $DECISIONS" >"$P/decide" || return 1
				read -r _ calls _ ns _ refused <"$P/result"
				bench "\"phase\": \"decision\", \"sched\": \"$sched\", \"mode\": \"$mode\", \"servers\": $n, \"family\": $fam, \"fallback\": $fb, \"round\": $round, \"calls\": $calls, \"ns\": $ns, \"refused\": $refused"
				ipvsadm -D -u "$svc" || return 1
			done
		done
	done
}

# rebuilds SCHED SLOTS ROUND [N]: the rebuild benchmark's operations.
rebuilds() {
	local sched=$1 slots=$2 round=$3 n=${4:-1000} order svc="$VIP:80" what calls ns max
	for order in address random; do
		ipvsadm -A -t "$svc" -s mhbench || return 1
		hooks_reset
		if [ "$order" = random ]; then
			servers "$n" 4 | shuf --random-source=<(yes "$round")
		else
			servers "$n" 4
		fi | sed "s/^/-a -t $svc -m -r /" | ipvsadm -R || return 1
		read -r calls ns max < <(hook add)
		bench "\"phase\": \"rebuild\", \"sched\": \"$sched\", \"op\": \"add-$order\", \"slots\": $slots, \"servers\": $n, \"round\": $round, \"calls\": $calls, \"ns\": $ns, \"max_ns\": $max"
		if [ "$order" = address ] && [ "$n" = 1000 ] && [ "$slots" = 4093 ]; then
			hooks_reset
			servers 20 4 | awk -v s="$svc" '{ printf "-e -t %s -m -r %s -w %d\n", s, $1, NR % 3 + 2 }' |
				ipvsadm -R || return 1
			read -r calls ns max < <(hook upd)
			bench "\"phase\": \"rebuild\", \"sched\": \"$sched\", \"op\": \"edit\", \"slots\": $slots, \"servers\": $n, \"round\": $round, \"calls\": $calls, \"ns\": $ns, \"max_ns\": $max"
			hooks_reset
			servers 100 4 | sed "s/^/-d -t $svc -r /" | ipvsadm -R || return 1
			read -r calls ns max < <(hook del)
			bench "\"phase\": \"rebuild\", \"sched\": \"$sched\", \"op\": \"delete\", \"slots\": $slots, \"servers\": $n, \"round\": $round, \"calls\": $calls, \"ns\": $ns, \"max_ns\": $max"
		fi
		ipvsadm -D -t "$svc" || return 1
	done
}

for round in $(seq "$ROUNDS"); do
	order="mh mhrs"
	[ $((round % 2)) = 0 ] && order="mhrs mh"
	for sched in $order; do
		target "$sched" || { echo "FAIL cannot proxy to $sched"; exit 1; }
		if [[ "$PHASES" == *" decision "* ]]; then
			decisions "$sched" sorted "$round" || { echo "FAIL decisions of $sched"; exit 1; }
			if [ "$sched" = mhrs ]; then
				decisions "$sched" upstream "$round" || { echo "FAIL decisions of $sched"; exit 1; }
			fi
		fi
		if [[ "$PHASES" == *" rebuild "* ]]; then
			rebuilds "$sched" 4093 "$round" || { echo "FAIL rebuilds of $sched"; exit 1; }
		fi
	done
	echo "round $round of $ROUNDS done"
done

# Large tables, the Rust module only (the C module's size is fixed when
# the kernel is built).
for slots in 65521 131071; do
	[[ "$PHASES" == *" large "* ]] || break
	rust_load table_size=$slots || exit 1
	target mhrs || exit 1
	rebuilds mhrs "$slots" 1 1000 || exit 1
	if [ -n "${BENCH_BIG:-}" ]; then
		rebuilds mhrs "$slots" 1 10000 || exit 1
	fi
done
echo "bench: done"
