#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kernel benchmarks, inside the test kernel's VM (bench/run boots it):
# the Rust scheduler against the in-tree C one, alternated in one boot.
# Prints human-readable progress and one `BENCH {json}` line per sample;
# bench/report.py turns those into the table and the JSON results.
#
#   rate     new TCP connections per second through a NAT director (mhnet
#            rate, BENCH_PARALLEL workers, BENCH_SECONDS per sample) for
#            rust (ip_vs_mh_rs), rust-list (list_order=1), c-mh (ip_vs_mh,
#            -b mh-port), sh (-b sh-port) and rr, 4 and 100 real servers
#   cost     ns per scheduling decision: the function profiler's average for
#            the Rust scheduler (its C entry point) and ip_vs_mh_schedule
#            on the same traffic, and what one profiled call adds
#   rebuild  1000 real servers added one by one (ipvsadm -R), one weight
#            changed 20 times, one upper threshold changed 20 times: wall
#            time, time inside the schedulers' dest_changed hook, rebuilds
#   memory   free memory taken when 200 rr services of 10 real servers
#            switch to a scheduler (ipvsadm -E): bytes per service of its
#            own state, for each scheduler/table size
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_PARALLEL
# (8), BENCH_PHASES ("rate cost rebuild memory"). Every loop is bounded.
source "$(dirname "$0")/../tests/lib/guest.sh"
export LC_ALL=C
# The load generator: bench/run's release build of mhnet, copied (a rebuild
# on the host must not swap the binary under the running guest).
if [ -n "${BENCH_MHNET:-}" ]; then
	cp "$BENCH_MHNET" /tmp/mh-bin/mhnet-release && MHNET=/tmp/mh-bin/mhnet-release
fi

ROUNDS=${BENCH_ROUNDS:-3}
SECONDS_PER=${BENCH_SECONDS:-5}
PARALLEL=${BENCH_PARALLEL:-8}
PHASES=${BENCH_PHASES:-rate cost rebuild memory}
VIP=10.0.1.1
T=/sys/kernel/tracing
C_MH_KO=$(c_mh_ko)
[ -n "$C_MH_KO" ] || { echo "bench: the in-tree ip_vs_mh.ko is missing"; exit 1; }

emit() { echo "BENCH $*"; }
# The director is namespace d (tests/lib/guest.sh's topology).
ipvs() { ip netns exec d ipvsadm "$@"; }
# Its /proc/net/ip_vs_mh: the rebuilds of service VIP:PORT.
rebuilds_of() { proc_get d "tcp:$1" .rebuilds; }
now_ns() { date +%s%N; }

# ---- the mh module in use ------------------------------------------------------

# use_mh rust|rust-list|c [TABLE_SIZE]: exactly that module serves "mh"
# (the two cannot be registered together). No service may use mh then.
MH_LOADED=
use_mh() {
	local want="$1 ${2:-4093}"
	[ "$MH_LOADED" = "$want" ] && return 0
	for _ in $(seq 40); do
		modprobe -r ip_vs_mh_rs 2>/dev/null
		rmmod ip_vs_mh 2>/dev/null
		lsmod | grep -q '^ip_vs_mh' || break
		sleep 0.25
	done
	lsmod | grep -q '^ip_vs_mh' && { echo "bench: cannot unload $(lsmod | grep '^ip_vs_mh')"; return 1; }
	case $1 in
	rust) modprobe ip_vs_mh_rs table_size="${2:-4093}" ;;
	rust-list) modprobe ip_vs_mh_rs table_size="${2:-4093}" list_order=1 ;;
	c)
		[ "${2:-4093}" = 4093 ] || { echo "bench: the C ip_vs_mh has a fixed table size (4093 here)"; return 1; }
		modprobe ip_vs && insmod "$C_MH_KO"
		;;
	esac || return 1
	MH_LOADED=$want
}

# sched NAME: FLAGS := the ipvsadm -A flags of a scheduler under test, with
# its module loaded.
FLAGS=
sched() {
	FLAGS=
	case $1 in
	rust) use_mh rust && FLAGS="-s mh" ;;
	rust-list) use_mh rust-list && FLAGS="-s mh" ;;
	c-mh) use_mh c && FLAGS="-s mh -b mh-port" ;;
	sh) FLAGS="-s sh -b sh-port" ;;
	rr) FLAGS="-s rr" ;;
	esac
	[ -n "$FLAGS" ]
}

# ---- the function profiler -----------------------------------------------------

# prof_run "FUNC..." CMD...: CMD (its stdout discarded) with the function
# profiler on those of FUNC... this kernel has; prints "FUNC HITS TOTAL_NS"
# per function hit (all CPUs summed).
prof_run() {
	local funcs=$1 f
	shift
	echo 0 >"$T/function_profile_enabled"
	: >"$T/set_ftrace_filter"
	for f in $funcs; do echo "$f" >>"$T/set_ftrace_filter" 2>/dev/null; done
	grep -q '^[a-z_]' "$T/set_ftrace_filter" || { echo "bench: cannot trace $funcs" >&2; return 1; }
	echo 1 >"$T/function_profile_enabled"
	"$@" >/dev/null
	local rc=$?
	echo 0 >"$T/function_profile_enabled"
	# Columns: function, hits, time (us), "us", average, "us", s^2, "us".
	cat "$T"/trace_stat/function* 2>/dev/null | awk '
		$2 ~ /^[0-9]+$/ && $4 == "us" { hits[$1] += $2; ns[$1] += $3 * 1000 }
		END { for (f in hits) printf "%s %d %.0f\n", f, hits[f], ns[f] }'
	echo >"$T/set_ftrace_filter"
	return $rc
}

# ---- topology ------------------------------------------------------------------

# Four real server namespaces holding 100 addresses: 10.0.2.(10+i) in
# r((i-1)%4+1), each namespace serving TCP port 80 on all its addresses.
topology() {
	local i b=""
	topo_up 4
	for i in $(seq 5 100); do
		b+="netns exec r$(((i - 1) % 4 + 1)) ip addr add 10.0.2.$((10 + i))/24 dev veth-r$(((i - 1) % 4 + 1))"$'\n'
	done
	ip -batch - <<<"$b" || return 1
	for i in 1 2 3 4; do
		ip netns exec "r$i" "$MHNET" serve --id "r$i" --tcp 0.0.0.0:80 >"/tmp/bench-r$i.log" 2>&1 &
	done
	for i in 1 2 3 4; do
		wait_ready "/tmp/bench-r$i.log" || return 1
	done
	mount -t tracefs nodev "$T" 2>/dev/null
	[ -e "$T/function_profile_enabled" ] || { echo "bench: no function profiler in this kernel"; return 1; }
}

# service PORT N FLAGS...: a NAT service VIP:PORT with N real servers.
service() {
	local port=$1 n=$2 i r
	shift 2
	r="-A -t $VIP:$port $*"$'\n'
	for i in $(seq 1 "$n"); do r+="-a -t $VIP:$port -r 10.0.2.$((10 + i)):80 -m"$'\n'; done
	ipvs -R <<<"$r"
}

# ---- phases --------------------------------------------------------------------

PORT=8000
phase_rate() {
	local round n s flags out
	echo "== rate: new TCP connections/s, $PARALLEL workers, ${SECONDS_PER} s per sample, $ROUNDS rounds"
	for round in $(seq 1 "$ROUNDS"); do
		for n in 4 100; do
			for s in rust c-mh rust-list sh rr; do
				sched "$s" || return 1
				PORT=$((PORT + 1))
				# shellcheck disable=SC2086
				service "$PORT" "$n" $FLAGS || return 1
				out=$(ip netns exec c "$MHNET" rate --target "$VIP:$PORT" --source 10.0.1.2 \
					--duration-ms $((SECONDS_PER * 1000)) --parallel "$PARALLEL" --timeout-ms 3000)
				echo "  round $round n=$n $s: $out"
				ipvs -D -t "$VIP:$PORT"
				set -- $(echo "$out" | tr '=' ' ')
				# rate: conns N errors E ms T per_s R
				emit "{\"kind\":\"rate\",\"sched\":\"$s\",\"n\":$n,\"round\":$round,\"conns\":$3,\"errors\":$5,\"ms\":$7,\"per_s\":$9,\"first_error\":\"${11}\"}"
			done
		done
	done
}

phase_cost() {
	local round s func res conns=1500
	echo "== cost: ns per decision (function profiler), $conns connections per sample, $ROUNDS rounds"
	for round in $(seq 1 "$ROUNDS"); do
		# rust-nested: the Rust scheduler with its one C helper call
		# (mh_rs_flow_of) profiled too; its extra time over "rust" is what
		# one profiled call costs, to read the other figures by.
		for s in rust c-mh rust-nested; do
			case $s in
			rust) sched rust && func=ip_vs_mh_rs_schedule ;;
			c-mh) sched c-mh && func=ip_vs_mh_schedule ;;
			rust-nested) sched rust && func="ip_vs_mh_rs_schedule mh_rs_flow_of" ;;
			esac || return 1
			PORT=$((PORT + 1))
			# shellcheck disable=SC2086
			service "$PORT" 4 $FLAGS || return 1
			res=$(prof_run "$func" ip netns exec c "$MHNET" rate --target "$VIP:$PORT" \
				--source 10.0.1.2 --max "$conns" --duration-ms 120000 --parallel 2) || return 1
			ipvs -D -t "$VIP:$PORT"
			echo "$res" | sed "s/^/  round $round $s: /"
			echo "$res" | awk -v s="$s" -v r="$round" '
				$2 > 0 { printf "BENCH {\"kind\":\"cost\",\"what\":\"%s\",\"func\":\"%s\",\"round\":%d,\"hits\":%d,\"ns\":%.1f}\n", s, $1, r, $2, $3 / $2 }'
		done
	done
}

# rebuild_one SCHED SIZE ROUND
rebuild_one() {
	local s=$1 size=$2 round=$3 hook flags r i t0 t1 res before after
	case $s in
	rust) use_mh rust "$size" && flags="-s mh" hook=ip_vs_mh_rs_dest_changed ;;
	c-mh) use_mh c "$size" && flags="-s mh -b mh-port" hook=ip_vs_mh_dest_changed ;;
	esac || return 1
	PORT=$((PORT + 1))
	ipvs -A -t "$VIP:$PORT" $flags || return 1
	r=""
	for i in $(seq 0 999); do
		r+="-a -t $VIP:$PORT -r 10.1.$((i / 250)).$((i % 250 + 1)):80 -m -w $((1 + i % 4))"$'\n'
	done
	t0=$(now_ns)
	res=$(prof_run "$hook" ipvs -R <<<"$r")
	t1=$(now_ns)
	echo "  round $round $s M=$size add 1000: $(((t1 - t0) / 1000000)) ms wall; hook: $res"
	set -- $res
	emit "{\"kind\":\"rebuild\",\"op\":\"add1000\",\"sched\":\"$s\",\"size\":$size,\"round\":$round,\"wall_ms\":$(((t1 - t0) / 1000000)),\"hook_calls\":${2:-0},\"hook_ms\":$(awk -v n="${3:-0}" 'BEGIN { printf "%.2f", n / 1e6 }')}"
	# One weight changed 20 times (2, 1, 2, ..., ending at its first
	# value, 1), then its upper threshold 20 times, weight unchanged.
	local op edit
	for op in weight threshold; do
		r=""
		for i in $(seq 1 20); do
			case $op in
			weight) edit="-w $((1 + i % 2))" ;;
			threshold) edit="-w 1 -x $((1000 + i))" ;;
			esac
			r+="-e -t $VIP:$PORT -r 10.1.0.1:80 -m $edit"$'\n'
		done
		before=0
		[ "$s" = rust ] && before=$(rebuilds_of "$VIP:$PORT")
		t0=$(now_ns)
		res=$(prof_run "$hook" ipvs -R <<<"$r")
		t1=$(now_ns)
		after=0
		[ "$s" = rust ] && after=$(rebuilds_of "$VIP:$PORT")
		set -- $res
		# Rebuilds: the Rust module counts them; the C module rebuilds on
		# every call of its hook.
		local rebuilds=${2:-0}
		[ "$s" = rust ] && rebuilds=$((after - before))
		echo "  round $round $s M=$size 20 x $op: $(((t1 - t0) / 1000000)) ms wall; hook: $res; rebuilds $rebuilds"
		emit "{\"kind\":\"rebuild\",\"op\":\"$op\",\"sched\":\"$s\",\"size\":$size,\"round\":$round,\"wall_ms\":$(((t1 - t0) / 1000000)),\"hook_calls\":${2:-0},\"hook_ms\":$(awk -v n="${3:-0}" 'BEGIN { printf "%.3f", n / 1e6 }'),\"rebuilds\":$rebuilds}"
	done
	ipvs -D -t "$VIP:$PORT"
}

phase_rebuild() {
	local round
	echo "== rebuild: 1000 real servers added one by one, 20 weight edits, 20 threshold edits"
	for round in $(seq 1 "$ROUNDS"); do
		rebuild_one rust 4093 "$round" || return 1
		rebuild_one c-mh 4093 "$round" || return 1
		rebuild_one rust 65521 "$round" || return 1
	done
}

# Free memory in kB, once settled (two readings a second apart within 32 kB,
# 15 tries at most): MemFree plus the pages parked on the per-CPU free lists
# (/proc/zoneinfo "count:"), which MemFree leaves out. No drop_caches: the
# guest's root is virtiofs.
mem_free_kb() {
	local a b i
	b=$(awk '$1 == "MemFree:" { f = $2 } $1 == "count:" { p += $2 } END { print f + p * 4 }' \
		/proc/meminfo /proc/zoneinfo)
	for i in $(seq 15); do
		sleep 1
		a=$b
		b=$(awk '$1 == "MemFree:" { f = $2 } $1 == "count:" { p += $2 } END { print f + p * 4 }' \
			/proc/meminfo /proc/zoneinfo)
		[ $((a - b)) -lt 32 ] && [ $((b - a)) -lt 32 ] && break
	done
	echo "$b"
}

# mem_one NAME ROUND: the 200 rr services switched to scheduler NAME
# (ipvsadm -E): the memory that takes is the scheduler's own state.
mem_one() {
	local s=$1 round=$2 flags size r p f0 f1 acct
	case $s in
	rust-4093) use_mh rust 4093 && flags="-s mh" size=4093 ;;
	rust-65521) use_mh rust 65521 && flags="-s mh" size=65521 ;;
	c-mh-4093) use_mh c 4093 && flags="-s mh -b mh-port" size=4093 ;;
	esac || return 1
	r=""
	for p in $(seq 20001 20200); do r+="-E -t $VIP:$p $flags"$'\n'; done
	f0=$(mem_free_kb)
	ipvs -R <<<"$r" || return 1
	f1=$(mem_free_kb)
	# The Rust module's own accounting (/proc/net/ip_vs_mh "bytes").
	acct=0
	case $s in
	rust-*) acct=$(proc_json d | jq '[.services[].bytes] | add // 0') ;;
	esac
	r=""
	for p in $(seq 20001 20200); do r+="-E -t $VIP:$p -s rr"$'\n'; done
	ipvs -R <<<"$r" || return 1
	echo "  round $round $s: $((f0 - f1)) kB for 200 services (module accounting: $acct bytes)"
	emit "{\"kind\":\"memory\",\"sched\":\"$s\",\"size\":$size,\"round\":$round,\"services\":200,\"servers\":10,\"bytes\":$(((f0 - f1) * 1024)),\"module_bytes\":$acct}"
}

phase_memory() {
	local round s r p i
	echo "== memory: free memory taken when 200 rr services of 10 real servers switch scheduler"
	r=""
	for p in $(seq 20001 20200); do
		r+="-A -t $VIP:$p -s rr"$'\n'
		for i in $(seq 1 10); do r+="-a -t $VIP:$p -r 10.0.2.$((10 + i)):80 -m"$'\n'; done
	done
	ipvs -R <<<"$r" || return 1
	for round in $(seq 1 "$ROUNDS"); do
		for s in rust-4093 c-mh-4093 rust-65521; do
			mem_one "$s" "$round" || return 1
		done
	done
	ipvs -C
}

# ---- run -----------------------------------------------------------------------

dmesg -n 5 2>/dev/null
echo "bench: kernel $(uname -r), $(nproc) CPUs, rounds $ROUNDS"
emit "{\"kind\":\"env\",\"kernel\":\"$(uname -r)\",\"cpus\":$(nproc),\"rounds\":$ROUNDS,\"seconds\":$SECONDS_PER,\"parallel\":$PARALLEL}"
modprobe ip_vs || exit 1
if ! out=$(topology 2>&1); then
	echo "$out" | tail -n 20
	echo "bench: the topology could not be set up"
	exit 1
fi
# Each sample uses a new virtual port: no IPVS connection of one sample
# (closed ones linger for seconds) meets the next one.
rc=0
for ph in $PHASES; do
	start=$SECONDS
	"phase_$ph" || { echo "bench: phase $ph failed"; rc=1; }
	echo "  ($ph: $((SECONDS - start)) s)"
done
ipvs -C
topo_down
modprobe -r ip_vs_mh_rs 2>/dev/null
rmmod ip_vs_mh 2>/dev/null
exit $rc
