#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Upstream mode against the in-tree C ip_vs_mh, in one boot (inside the VM):
# for each configuration below, the same ipvsadm commands are applied to
# the C module and then to ip_vs_mh_rs (the services have `-b flag-3`, which
# C ignores and which puts them in upstream mode here), and the same
# TR_UPSTREAM_FLOWS (10 000) UDP flows, one packet each from as many client
# addresses and ports, are sent; IPVS's connection table then says which
# real server each flow was given (the real servers need not answer). Every
# decision must be the same, refusals included. After the Rust run, `mhsim
# check` must find the module's table equal to its upstream model. The
# table size is the kernel's CONFIG_IP_VS_MH_TAB_INDEX for both (the
# module's default): run on another kernel for another size.
source "$(dirname "$0")/lib.sh"

N=${TR_UPSTREAM_FLOWS:-10000}
VIP=10.0.1.1
VIP6=fd00:1::1

traffic_up 4
spray_up
# The clients of a configuration's step K: new ones at each step, so that
# no flow meets the connection entry of an earlier step.
for k in 1 2 3; do
	python3 "$SPRAY" clients 4 "$N" "$k" >"$TR/U4.$k"
	python3 "$SPRAY" clients 6 "$N" "$k" >"$TR/U6.$k"
done
# fwmark services: the director marks what reaches VIP port 6001 (the C
# run) with 6001, port 6002 (the Rust run) with 6002.
ip netns exec d nft -f - <<EOF || fail "upstream-fwmark-rules flows=0 matching=0"
table inet fwmarks {
	chain pre {
		type filter hook prerouting priority mangle;
		ip daddr $VIP udp dport 6001 meta mark set 6001
		ip daddr $VIP udp dport 6002 meta mark set 6002
	}
}
EOF

unload_mh() {
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh 2>/dev/null
	rmmod ip_vs_mh_rs 2>/dev/null
	! lsmod | grep -qE '^ip_vs_mh(_rs)? '
}

# decide WHO VPORT CLIENTS: send the flows of CLIENTS to VPORT, the
# decisions to $TR/WHO.got.
decide() {
	local who=$1 vport=$2 clients=$3 vip=$VIP
	case "$clients" in *U6*) vip=$VIP6 ;; esac
	# One CPU: the packets reach IPVS in the order sent, so that the
	# overloaded-server scenario sees the same first flow under C and Rust.
	ip netns exec c taskset -c 0 python3 "$SPRAY" send veth-c "$MAC" "$vip" "$vport" "$clients" || return 1
	sleep 1
	ip netns exec d python3 "$SPRAY" decisions "$vport" "$clients" | sort >"$TR/$who.got"
	echo "$who: $(grep -vc ' NONE$' "$TR/$who.got") scheduled, $(grep -c ' NONE$' "$TR/$who.got") refused;" \
		"per server: $(awk '{ n[$2]++ } END { for (s in n) printf "%s %d, ", s, n[s] }' "$TR/$who.got")"
}

# same NAME: the Rust decisions equal the C ones, flow by flow, and the
# flows were spread over more than one server (not a trivial agreement).
same() {
	local n m servers
	n=$(wc -l <"$TR/c.$1.got")
	m=$(join "$TR/c.$1.got" "$TR/rs.$1.got" | awk '$2 == $3' | wc -l)
	servers=$(awk '$2 != "NONE" { print $2 }' "$TR/c.$1.got" | sort -u | wc -l)
	record "$n" "$m"
	echo "$1: $m of $n flows decided alike, over $servers servers"
	if [ "$n" != "$m" ] || [ "$n" != "$N" ]; then
		join "$TR/c.$1.got" "$TR/rs.$1.got" | awk '$2 != $3 { print "  C " $2 " Rust " $3 " for " $1 }' | head -n 5
		return 1
	fi
	[ "$servers" -ge 2 ] || { echo "every flow went to one server: not a test"; return 1; }
}

# compare_cfg NAME FAMILY BASE COMMANDS...: COMMANDS (ipvsadm -R lines,
# whose VIP port is written PORT) applied to C then to Rust, on the virtual
# ports BASE+1 and BASE+2 (the hash does not involve the virtual port; a run
# meets no connection entry of another); after each group of commands (a
# "--" ends one) the flows of that step are sent and the decisions of C and
# Rust compared (a history: drain, then restore).
compare_cfg() {
	local name=$1 fam=$2 port=$3 who ko step rc=0
	shift 3
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; return 1; }
	for who in c rs; do
		unload_mh || return 1
		if [ "$who" = c ]; then insmod "$ko" || return 1; else modprobe ip_vs_mh_rs || return 1; fi
		port=$((port + 1))
		step=0
		local group=()
		for line in "$@" --; do
			if [ "$line" = -- ]; then
				printf '%s\n' "${group[@]}" | sed "s/PORT/$port/g" | ip netns exec d ipvsadm -R || return 1
				group=()
				step=$((step + 1))
				decide "$who.$name.$step" "$port" "$TR/U$fam.$step" || return 1
				[ "$who" = rs ] && { ip netns exec d sh -c "ipvsadm -Sn | '$MHSIM' check" || rc=1; }
			else
				group+=("$line")
			fi
		done
	done
	for i in $(seq 1 "$step"); do
		same "$name.$i" || rc=1
	done
	return $rc
}

v4() { echo "10.0.2.$((10 + $1)):80"; }
v6() { echo "[fd00:2::$((10 + $1))]:80"; }

scenario upstream-mh-port compare_cfg port 4 5000 \
	"-A -u $VIP:PORT -s mh -b flag-3,mh-port" \
	"-a -u $VIP:PORT -r $(v4 3) -m" "-a -u $VIP:PORT -r $(v4 1) -m" \
	"-a -u $VIP:PORT -r $(v4 4) -m" "-a -u $VIP:PORT -r $(v4 2) -m"
scenario upstream-no-mh-port-unequal-weights compare_cfg weights 4 5010 \
	"-A -u $VIP:PORT -s mh -b flag-3" \
	"-a -u $VIP:PORT -r $(v4 2) -m -w 3" "-a -u $VIP:PORT -r $(v4 4) -m -w 1" \
	"-a -u $VIP:PORT -r $(v4 1) -m -w 5" "-a -u $VIP:PORT -r $(v4 3) -m -w 2"
scenario upstream-drain-and-restore compare_cfg drain 4 5020 \
	"-A -u $VIP:PORT -s mh -b flag-3" \
	"-a -u $VIP:PORT -r $(v4 1) -m -w 2" "-a -u $VIP:PORT -r $(v4 2) -m -w 2" \
	"-a -u $VIP:PORT -r $(v4 3) -m -w 1" "-a -u $VIP:PORT -r $(v4 4) -m -w 1" -- \
	"-e -u $VIP:PORT -r $(v4 2) -m -w 0" -- \
	"-e -u $VIP:PORT -r $(v4 2) -m -w 2"
scenario upstream-delete-and-readd compare_cfg readd 4 5030 \
	"-A -u $VIP:PORT -s mh -b flag-3,mh-port" \
	"-a -u $VIP:PORT -r $(v4 1) -m" "-a -u $VIP:PORT -r $(v4 2) -m" \
	"-a -u $VIP:PORT -r $(v4 3) -m" "-a -u $VIP:PORT -r $(v4 4) -m" -- \
	"-d -u $VIP:PORT -r $(v4 2)" -- \
	"-a -u $VIP:PORT -r $(v4 2) -m"
scenario upstream-ipv6 compare_cfg v6 6 5040 \
	"-A -u [$VIP6]:PORT -s mh -b flag-3" \
	"-a -u [$VIP6]:PORT -r $(v6 1) -m" "-a -u [$VIP6]:PORT -r $(v6 2) -m -w 2" \
	"-a -u [$VIP6]:PORT -r $(v6 3) -m" "-a -u [$VIP6]:PORT -r $(v6 4) -m"
# fwmark: the mark is the port the flows are sent to (see the nft rule).
fwmark_cfg() {
	compare_cfg fwm 4 6000 \
		"-A -f PORT -s mh -b flag-3" \
		"-a -f PORT -r 10.0.2.11:80 -m" "-a -f PORT -r 10.0.2.12:80 -m -w 3" \
		"-a -f PORT -r 10.0.2.13:80 -m" "-a -f PORT -r 10.0.2.14:80 -m -w 2"
}
scenario upstream-fwmark fwmark_cfg
# The fallback flag with an overloaded server: 10.0.2.11 takes one
# connection at most (-x 1); the flows after its first go elsewhere, by
# the C module's walk. The flows are sent in the same order each time.
scenario upstream-fallback-overloaded compare_cfg fallback 4 5050 \
	"-A -u $VIP:PORT -s mh -b flag-3,mh-fallback" \
	"-a -u $VIP:PORT -r $(v4 1) -m -x 1" "-a -u $VIP:PORT -r $(v4 2) -m" \
	"-a -u $VIP:PORT -r $(v4 3) -m" "-a -u $VIP:PORT -r $(v4 4) -m"

traffic_down
unload_mh
finish
