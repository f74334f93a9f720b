#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The three forwarding methods carry traffic scheduled by
# mh (run inside the VM by tests/vm/run): NAT (masquerading, -m), direct
# routing (-g) and IP-in-IP tunnelling (-i), TCP and UDP each, every flow
# checked against the model.
#
# NAT uses the director's 10.0.1.1. Direct routing and tunnelling use VIPs
# of their own (10.0.1.100, 10.0.1.101) that the real servers also hold on
# lo (arp_ignore/arp_announce, so they never answer ARP for them); the real
# servers answer the client from the VIP, through their default route via
# the director, which forwards those replies (accept_local on its server
# side, since their source is one of its own addresses).
source "$(dirname "$0")/lib.sh"

N=${TR_FORWARDING_FLOWS:-200}
declare -A VIP=([nat]=10.0.1.1 [dr]=10.0.1.100 [tun]=10.0.1.101)
declare -A FLAG=([nat]=-m [dr]=-g [tun]=-i)
declare -A METHOD=([nat]=Masq [dr]=Route [tun]=Tunnel)

setup() {
	local i ns
	traffic_up 4
	ip -n d addr add 10.0.1.100/32 dev veth-cd
	ip -n d addr add 10.0.1.101/32 dev veth-cd
	ip netns exec d sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.br0.accept_local=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.br0.rp_filter=0
	for i in 1 2 3 4; do
		ns=r$i
		ip -n "$ns" addr add 10.0.1.100/32 dev lo
		ip -n "$ns" addr add 10.0.1.101/32 dev lo
		ip -n "$ns" link set tunl0 up
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
			net.ipv4.conf.tunl0.rp_filter=0 "net.ipv4.conf.veth-r$i.rp_filter=0"
		# What the real servers receive, by method: packets for the NAT VIP
		# (never: NAT hands them the server's own address), for the DR VIP
		# straight off the link, for the tunnel VIP out of tunl0.
		ip netns exec "$ns" nft -f - <<-EOF || return 1
			table inet seen {
				chain in {
					type filter hook input priority 0;
					ip daddr ${VIP[nat]} counter comment "nat"
					ip daddr ${VIP[dr]} iifname != "tunl0" counter comment "dr"
					ip daddr ${VIP[tun]} iifname "tunl0" counter comment "tun"
				}
			}
		EOF
	done
	serve_rs 80 4 || return 1
	module_load || return 1
	for m in nat dr tun; do
		for p in -t -u; do
			ip netns exec d ipvsadm -A $p "${VIP[$m]}:80" -s mh || return 1
			for i in 1 2 3 4; do
				ip netns exec d ipvsadm -a $p "${VIP[$m]}:80" -r "10.0.2.$((10 + i)):80" \
					"${FLAG[$m]}" -w $((i == 2 ? 2 : i == 4 ? 3 : 1)) || return 1
			done
		done
	done
	ip netns exec d ipvsadm -Ln
}
if ! out=$(setup 2>&1); then
	fail "forwarding-setup flows=0 matching=0"
	echo "$out" | tail -n 20 | sed 's/^/    /'
fi

# seen M: packets the real servers received for the VIP of method M, the
# way that method delivers them.
seen() {
	local i
	for i in 1 2 3 4; do
		ip netns exec "r$i" nft list chain inet seen in
	done | awk -v m="\"$1\"" '$NF == m { for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END { print n + 0 }'
}

# method M PROTO FIRST_PORT: flows through the service of method M.
method() {
	local m=$1 proto=$2 first=$3 vip=${VIP[$1]} ok=0 before after
	flows "$TR/$m.$proto.c" 4 "$first" "$N"
	before=$(seen "$m")
	probe_model "$m-$proto" "$proto" "$vip:80" "$TR/$m.$proto.c" "$proto:$vip:80" || ok=1
	after=$(seen "$m")
	echo "packets the real servers received for $vip ($m): $((after - before))"
	if [ "$m" = nat ]; then
		need [ "$after" = 0 ] "NAT: the real servers never see the VIP" || ok=1
	else
		need [ $((after - before)) -ge "$N" ] "$m: the real servers received the flows' packets for the VIP" || ok=1
	fi
	ip netns exec d ipvsadm -Ln --stats -${proto:0:1} "$vip:80"
	need [ "$(ip netns exec d ipvsadm -Ln -${proto:0:1} "$vip:80" | grep -c " ${METHOD[$m]} ")" = 4 ] \
		"the four real servers use ${METHOD[$m]}" || ok=1
	return $ok
}

port=20000
for m in nat dr tun; do
	for proto in tcp udp; do
		scenario "forwarding-$m-$proto" method "$m" "$proto" "$port"
		port=$((port + N / 4 + 10))
	done
done

traffic_down
rmmod ip_vs_mh_rs 2>/dev/null
finish
