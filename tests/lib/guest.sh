# SPDX-License-Identifier: GPL-2.0
# Helpers for tests that run inside the VM (sourced). Each test prints one
# line per scenario, "PASS name ..." or "FAIL name ...", and exits non-zero if
# any scenario failed.

set -u
MH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$MH_REPO/tests/lib/tally.sh"

# The kernel's C modules directory and the in-tree C ip_vs_mh.
c_mh_ko() { find "/lib/modules/$(uname -r)/kernel" -name 'ip_vs_mh.ko*' | head -n 1; }

# bare_ns NS [PREFIX]: a namespace with only lo and a dummy interface
# holding 10.0.2.1/PREFIX (default 24), which routes real servers'
# addresses, for tests of the control path that send no traffic.
bare_ns() {
	ip netns add "$1" || return 1
	ip -n "$1" link set lo up &&
		ip -n "$1" link add dummy0 type dummy &&
		ip -n "$1" addr add "10.0.2.1/${2:-24}" dev dummy0 &&
		ip -n "$1" link set dummy0 up
}

# Netns topology used by the traffic tests:
#   ns c   client, 10.0.1.2/24 and fd00:1::2/64, default route via d
#   ns d   director, 10.0.1.1 + fd00:1::1 (client side), 10.0.2.1/24 +
#          fd00:2::1/64 on a bridge to the real servers, forwarding on
#   ns rN  real server N (1..count), 10.0.2.(10+N) and fd00:2::(10+N),
#          default route via d (so NAT replies go back through it)
topo_up() {
	local count=${1:-4} i
	topo_down
	ip netns add c
	ip netns add d
	ip -n d link set lo up
	ip -n c link set lo up
	ip link add veth-c netns c type veth peer name veth-cd netns d
	ip -n c addr add 10.0.1.2/24 dev veth-c
	ip -n c addr add fd00:1::2/64 dev veth-c nodad
	ip -n c link set veth-c up
	ip -n c route add default via 10.0.1.1
	ip -n c -6 route add default via fd00:1::1
	ip -n d addr add 10.0.1.1/24 dev veth-cd
	ip -n d addr add fd00:1::1/64 dev veth-cd nodad
	ip -n d link set veth-cd up
	ip -n d link add br0 type bridge
	ip -n d addr add 10.0.2.1/24 dev br0
	ip -n d addr add fd00:2::1/64 dev br0 nodad
	ip -n d link set br0 up
	ip netns exec d sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	ip netns exec d sysctl -qw net.ipv4.vs.conntrack=1 2>/dev/null || true
	for i in $(seq 1 "$count"); do
		ip netns add "r$i"
		ip -n "r$i" link set lo up
		ip link add "veth-r$i" netns "r$i" type veth peer name "veth-d$i" netns d
		ip -n d link set "veth-d$i" master br0 up
		ip -n "r$i" addr add "10.0.2.$((10 + i))/24" dev "veth-r$i"
		ip -n "r$i" addr add "fd00:2::$((10 + i))/64" dev "veth-r$i" nodad
		ip -n "r$i" link set "veth-r$i" up
		ip -n "r$i" route add default via 10.0.2.1
		ip -n "r$i" -6 route add default via fd00:2::1
	done
}

topo_down() {
	local ns
	for ns in $(ip netns list | awk '{ print $1 }'); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns"
	done
}

# The workspace's binaries, built on the host by cargo. The guest runs
# copies in its own /tmp, so that a rebuild on the host cannot swap a binary
# under a running test.
# A missing tool is a failure, said at once (tests/run builds them).
mkdir -p /tmp/mh-bin
for b in mhnet mhsim; do
	if [ -x "$MH_REPO/target/debug/$b" ]; then
		cp "$MH_REPO/target/debug/$b" /tmp/mh-bin/
	elif [ ! -x "/tmp/mh-bin/$b" ]; then
		fail "$b is missing ($MH_REPO/target/debug/$b): build it with 'cargo build --bins' (tests/run does)"
		exit 1
	fi
done
MHNET=${MHNET:-/tmp/mh-bin/mhnet}
MHSIM=${MHSIM:-/tmp/mh-bin/mhsim}

# serve_all PORT [COUNT]: mhnet real servers in r1..rCOUNT, TCP and UDP on
# PORT, named as ipvsadm names them: 10.0.2.(10+i):PORT on 0.0.0.0 and
# [fd00:2::(10+i)]:PORT on [::].
serve_all() {
	local port=$1 count=${2:-4} i
	for i in $(seq 1 "$count"); do
		ip netns exec "r$i" "$MHNET" serve --id "10.0.2.$((10 + i)):$port" \
			--tcp "0.0.0.0:$port" --udp "0.0.0.0:$port" >"/tmp/serve-r$i-$port.log" 2>&1 &
		ip netns exec "r$i" "$MHNET" serve --id "[fd00:2::$((10 + i))]:$port" \
			--tcp "[::]:$port" --udp "[::]:$port" >"/tmp/serve6-r$i-$port.log" 2>&1 &
	done
	for i in $(seq 1 "$count"); do
		wait_ready "/tmp/serve-r$i-$port.log" >/dev/null || true
		wait_ready "/tmp/serve6-r$i-$port.log" >/dev/null || true
	done
}

# wait_ready LOG [TRIES]: wait, 0.1 s per try (50 tries by default), until
# the server writing LOG says it is ready; if it never does, print the log
# and fail.
wait_ready() {
	local _
	for _ in $(seq "${2:-50}"); do
		grep -q ready "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$1: $(cat "$1" 2>/dev/null)"
	return 1
}

# clients FILE ADDR FIRST_PORT COUNT: a clients list for probe/mhsim.
clients() {
	local file=$1 addr=$2 first=$3 count=$4 p
	for p in $(seq "$first" $((first + count - 1))); do
		case "$addr" in
		*:*) echo "[$addr]:$p" ;;
		*) echo "$addr:$p" ;;
		esac
	done >"$file"
}

# The module's records as mhsim reads them (mhsim proc --json), never by
# column: proc_json [NS] [MHSIM PROC ARGS...] (NS: default d; "-" for the
# VM's own namespace).
proc_json() {
	local ns=${1:-d}
	shift
	if [ "$ns" = - ]; then
		"$MHSIM" proc --json "$@"
	else
		ip netns exec "$ns" "$MHSIM" proc --json "$@"
	fi
}
# proc_get NS SERVICE JQ: one value of a service (an mhsim --service
# selector, e.g. tcp:10.0.1.1:80), e.g. proc_get d tcp:10.0.1.1:80 .rebuilds
proc_get() { proc_json "$1" --service "$2" | jq -r ".services[0]$3"; }

# lookup_model CLIENTS [MHSIM LOOKUP ARGS...] < CONFIG: "client server" per
# client as mhsim's lookup --json gives it (the client as written in
# CLIENTS, "NONE" where the model refuses the flow).
lookup_model() {
	local clients=$1
	shift
	"$MHSIM" lookup --json --clients-file "$clients" "$@" - |
		jq -r '(if .services then .services[] else . end) | .lookups[] | "\(.input) \(.dest // "NONE")"'
}

# probe_vs_model NAME PROTO VIP:PORT CLIENTS [MHSIM ARGS...]: send one flow
# per client from ns c, ask mhsim which server each should reach given
# the director's configuration (ipvsadm -Sn; it lists real servers sorted,
# which is all the default sorted order needs) and compare, flow by flow.
# Prints "NAME: flows N, matching M" and fails unless all N match.
probe_vs_model() {
	local name=$1 proto=$2 target=$3 clients=$4
	shift 4
	local got=/tmp/got.$$ want=/tmp/want.$$ n m
	ip netns exec c "$MHNET" probe --proto "$proto" --target "$target" \
		--clients "$clients" --parallel 4 >"$got" 2>/dev/null
	ip netns exec d ipvsadm -Sn | lookup_model "$clients" "$@" >"$want"
	n=$(grep -c . "$clients")
	m=$(join <(sort "$got") <(sort "$want") | awk '$2 == $3' | wc -l)
	echo "$name: flows $n, matching $m"
	if [ "$n" != "$m" ] || [ "$n" = 0 ]; then
		join -a1 <(sort "$got") <(sort "$want") | awk '$2 != $3' | head -n 5 | sed 's/^/    mismatch: /'
		rm -f "$got" "$want"
		return 1
	fi
	rm -f "$got" "$want"
}

# tcp30 VIP [IPVSADM -A FLAGS...]: topology with three real servers (socat
# answering its name on port 80), a NAT service VIP:80 in ns d with the given
# scheduler flags, 30 TCP connections from ns c from 30 source ports. Passes
# if all 30 are answered and at least two servers answer. Leaves the service
# and the topology up (the caller tears them down).
tcp30() {
	local vip=$1 i out n
	shift
	topo_up 3
	for i in 1 2 3; do
		ip netns exec "r$i" socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo r$i" >/dev/null 2>&1 &
	done
	ip netns exec d ipvsadm -A -t "$vip:80" -s mh "$@" || return 1
	for i in 1 2 3; do
		ip netns exec d ipvsadm -a -t "$vip:80" -r "10.0.2.$((10 + i)):80" -m || return 1
	done
	sleep 1
	out=$(for p in $(seq 40001 40030); do
		ip netns exec c socat -T5 - "TCP:$vip:80,sourceport=$p,linger=0" </dev/null
	done)
	n=$(echo "$out" | grep -c '^r[123]$')
	ip netns exec d ipvsadm -Ln --stats
	lsmod | grep '^ip_vs_mh'
	echo "answers: $(echo "$out" | sort | uniq -c | xargs)"
	[ "$n" = 30 ] && [ "$(echo "$out" | sort -u | wc -l)" -ge 2 ]
}
