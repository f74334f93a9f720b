#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The demo, inside the VM: a director, four real servers, 400 client flows.
source "$(dirname "$0")/../lib/guest.sh"
VIP=10.0.1.1:80

echo "== topology: client c -> director d (IPVS, mh, NAT) -> real servers r1..r4"
topo_up 4
serve_all 80 4
ip netns exec d ipvsadm -A -t "$VIP" -s mh
for i in 1 2 3 4; do
	w=1
	[ "$i" = 4 ] && w=2
	ip netns exec d ipvsadm -a -t "$VIP" -r "10.0.2.$((10 + i)):80" -m -w "$w"
done
echo "== the scheduler module IPVS loaded for -s mh:"
lsmod | grep -E '^ip_vs_mh' | awk '{ print "   " $1 }'
echo "== director configuration:"
ip netns exec d ipvsadm -Ln | sed 's/^/   /'

echo "== 400 TCP flows from 10.0.1.2:30001..30400, each compared with mhsim:"
clients /tmp/c1 10.0.1.2 30001 400
check "flows reach the server the model predicts" probe_vs_model demo tcp "$VIP" /tmp/c1
echo "   flows per real server (r4 has weight 2):"
ip netns exec d ipvsadm -Ln --stats | awk '/->/ && $2 ~ /^10/ { printf "   %-16s %s\n", $2, $3 }'

echo "== drain r2 (weight 0): only its flows move, as the model predicts"
ip netns exec d ipvsadm -e -t "$VIP" -r 10.0.2.12:80 -m -w 0
clients /tmp/c2 10.0.1.2 31001 400
check "after the drain, flows still match the model" probe_vs_model demo-drain tcp "$VIP" /tmp/c2
ip netns exec d ipvsadm -Sn | sed 's/-w 0/-w 1/' >/tmp/before
ip netns exec d ipvsadm -Sn >/tmp/after
"$MHSIM" diff --before-file /tmp/before --after-file /tmp/after | sed 's/^/   /'

ip netns exec d ipvsadm -C
topo_down
finish
