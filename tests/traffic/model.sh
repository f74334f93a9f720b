#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Every scheduling decision equals the model's (run inside
# the VM by tests/vm/run). For each table size 251, 4093 and 65521 (module
# parameter) the director has, at once: TCP and UDP services, IPv4 and IPv6,
# each with equal and with unequal weights, and an IPv4 (TCP) and an IPv6
# (UDP) firewall-mark service; every cell sends its own flows (chosen client
# addresses and source ports) through its service and compares the real
# server that answered each flow with `mhsim lookup` on the director's
# configuration: 100 % must match. The main cell (4093, TCP, IPv4, unequal
# weights) sends TR_MAIN_FLOWS (2000) flows, every other cell TR_CELL_FLOWS
# (300).
source "$(dirname "$0")/lib.sh"

MAIN_FLOWS=${TR_MAIN_FLOWS:-2000}
CELL_FLOWS=${TR_CELL_FLOWS:-300}

# Weights of r1..r4, per table size. The unequal sets make the table shift
# weights (rshift > 0) at 251 and 65521: max/gcd exceeds 2^TAB_BITS.
EQUAL="1 1 1 1"
unequal() {
	case "$1" in
	251) echo "10 1 3 100" ;;
	4093) echo "1 2 3 5" ;;
	65521) echo "1 40 300 7" ;;
	esac
}

VIP4=10.0.1.1
VIP6=fd00:1::1
# Source ports: every cell has its own block, so no flow meets a connection
# entry left by another cell or table size.
next_port=2000
port_block() {
	local n=$1
	block_start=$next_port
	next_port=$((next_port + n / 4 + 10))
}

# add_service SPEC WEIGHTS FAMILY: an mh service and r1..r4 (NAT, port 80).
add_service() {
	local spec=$1 weights=$2 fam=$3 i=0 w rs
	ip netns exec d ipvsadm -A $spec -s mh || return 1
	for w in $weights; do
		i=$((i + 1))
		if [ "$fam" = 6 ]; then rs="[fd00:2::$((10 + i))]:80"; else rs="10.0.2.$((10 + i)):80"; fi
		ip netns exec d ipvsadm -a $spec -r "$rs" -m -w "$w" || return 1
	done
}

# Firewall marks: TCP to VIP4:8080 is mark 1, UDP to [VIP6]:8080 mark 2.
nft_marks() {
	ip netns exec d nft -f - <<-EOF
		table inet marks {
			chain pre {
				type filter hook prerouting priority mangle;
				ip daddr $VIP4 tcp dport 8080 meta mark set 1
				ip6 daddr $VIP6 udp dport 8080 meta mark set 2
			}
		}
	EOF
}

setup_size() {
	local size=$1 u
	u=$(unequal "$size")
	ip netns exec d ipvsadm -C
	module_load table_size="$size" || return 1
	dmesg | grep "ip_vs_mh_rs: IPVS scheduler 'mh'.*table_size=$size" | tail -n 1
	add_service "-t $VIP4:80" "$u" 4 &&
		add_service "-t $VIP4:81" "$EQUAL" 4 &&
		add_service "-u $VIP4:80" "$u" 4 &&
		add_service "-u $VIP4:81" "$EQUAL" 4 &&
		add_service "-t [$VIP6]:80" "$u" 6 &&
		add_service "-t [$VIP6]:81" "$EQUAL" 6 &&
		add_service "-u [$VIP6]:80" "$u" 6 &&
		add_service "-u [$VIP6]:81" "$EQUAL" 6 &&
		add_service "-f 1" "$u" 4 &&
		add_service "-f 2 -6" "$EQUAL" 6 || return 1
	ip netns exec d ipvsadm -Ln
}

# cell SIZE PROTO FAMILY WEIGHTS FLOWS: one cell of the matrix.
cell() {
	local size=$1 proto=$2 fam=$3 wname=$4 n=$5 vport sel target what
	vport=80
	[ "$wname" = equal ] && vport=81
	case "$fam" in
	4) target=$VIP4:$vport sel=$proto:$VIP4:$vport ;;
	6) target=[$VIP6]:$vport sel=$proto:[$VIP6]:$vport ;;
	fwm) target=$VIP4:8080 sel=fwm:1 fam=4 ;;
	fwm6) target=[$VIP6]:8080 sel=fwm6:2 fam=6 ;;
	esac
	what=$size-$proto$fam-$wname
	flows "$TR/$what.c" "$fam" "$block_start" "$n"
	# mhsim must be told the size: the module's parameter is not in ipvsadm's output.
	probe_model "$what" "$proto" "$target" "$TR/$what.c" "$sel" --size "$size"
}

traffic_up 4
serve_rs 80 4 || fail "$(basename "$0" .sh)-servers-start flows=0 matching=0"
nft_marks || fail "model-nft-marks flows=0 matching=0"

for size in 4093 251 65521; do
	if ! out=$(setup_size "$size" 2>&1); then
		fail "model-$size-setup flows=0 matching=0"
		echo "$out" | tail -n 20 | sed 's/^/    /'
		continue
	fi
	for proto in tcp udp; do
		for fam in 4 6; do
			for w in unequal equal; do
				n=$CELL_FLOWS
				[ "$size-$proto-$fam-$w" = 4093-tcp-4-unequal ] && n=$MAIN_FLOWS
				port_block "$n"
				scenario "model-$size-$proto$fam-$w" cell "$size" "$proto" "$fam" "$w" "$n"
			done
		done
	done
	port_block "$CELL_FLOWS"
	scenario "model-$size-fwmark-tcp4-unequal" cell "$size" tcp fwm unequal "$CELL_FLOWS"
	port_block "$CELL_FLOWS"
	scenario "model-$size-fwmark-udp6-equal" cell "$size" udp fwm6 equal "$CELL_FLOWS"
done

traffic_down
rmmod ip_vs_mh_rs 2>/dev/null
finish
