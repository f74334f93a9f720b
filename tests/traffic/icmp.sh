#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ICMP errors are scheduled like the flow they are about (inside the VM).
# With net.ipv4.vs.schedule_icmp=1 a director that holds no connection
# entry for a flow schedules an ICMP error about it, as a director behind
# ECMP does when it gets the error of a flow another director served (a
# router's "fragmentation needed" about the service's reply): the error
# quotes the reply, from the virtual service to the client, and the server
# must be the one the client's own flow is given. For TR_ICMP_FLOWS (300)
# clients per family the director gets one such error each (IPv4:
# fragmentation needed, IPv6: packet too big, quoting UDP); IPVS's
# connection table then says which real server each was given, and that
# must be mhsim's server for the client's flow. The same errors' decisions
# in upstream mode must equal the in-tree C ip_vs_mh's, which hashes them
# alike.
source "$(dirname "$0")/lib.sh"

N=${TR_ICMP_FLOWS:-300}
VIP=10.0.1.1
VIP6=fd00:1::1

traffic_up 4
spray_up
ip netns exec d sysctl -qw net.ipv4.vs.schedule_icmp=1
python3 "$SPRAY" clients 4 "$N" icmp >"$TR/I4"
python3 "$SPRAY" clients 6 "$N" icmp >"$TR/I6"

# service VIP PORT FLAGS: a UDP mh service on VIP:PORT with four servers of
# unequal weights (of VIP's family).
service() {
	local vip=$1 port=$2 flags=$3 i addr
	[[ "$vip" == *:* ]] && vip="[$vip]"
	ip netns exec d ipvsadm -A -u "$vip:$port" -s mh $flags || return 1
	for i in 3 1 4 2; do
		addr=10.0.2.$((10 + i))
		[[ "$vip" == \[* ]] && addr="[fd00:2::$((10 + i))]"
		ip netns exec d ipvsadm -a -u "$vip:$port" -r "$addr:80" -m -w "$i" || return 1
	done
}

# errors WHO VIP PORT CLIENTS: one ICMP error per client about the flow of
# VIP:PORT to it; the decisions IPVS recorded to $TR/WHO.got. The entry IPVS
# makes for a scheduled ICMP error keeps the 3-second timeout of a new entry
# (no state change follows), so on a slow VM the first entries can expire
# before the file is read: the decisions are read right after each send,
# and the errors whose entry was not seen are sent again (the same table
# gives the same decision), 5 rounds at most. An error the scheduler
# refuses stays without an entry: NONE.
errors() {
	local who=$1 vip=$2 port=$3 clients=$4 round
	local todo=$TR/$who.todo seen=$TR/$who.seen
	cp "$clients" "$todo"
	: >"$seen"
	for round in 1 2 3 4 5; do
		ip netns exec c python3 "$SPRAY" send-icmp veth-c "$MAC" "$vip" "$port" "$todo" >/dev/null ||
			return 1
		sleep 0.5
		ip netns exec d python3 "$SPRAY" decisions "$port" "$todo" >"$TR/$who.round"
		grep -v ' NONE$' "$TR/$who.round" >>"$seen"
		grep ' NONE$' "$TR/$who.round" | cut -d' ' -f1 >"$todo"
		[ -s "$todo" ] || break
		echo "$who: round $round: $(wc -l <"$todo") errors without an entry"
	done
	{
		cat "$seen"
		sed 's/$/ NONE/' "$todo"
	} | sort >"$TR/$who.got"
	echo "$who: $(grep -vc ' NONE$' "$TR/$who.got") of $(wc -l <"$clients") errors scheduled;" \
		"per server: $(awk '{ n[$2]++ } END { for (s in n) printf "%s %d, ", s, n[s] }' "$TR/$who.got")"
}

# like_the_flow FAMILY PORT: sorted mode, against the model.
like_the_flow() {
	local fam=$1 port=$2 vip=$VIP want n m servers
	[ "$fam" = 6 ] && vip=$VIP6
	module_load || return 1
	service "$vip" "$port" "" || return 1
	errors "rs$fam" "$vip" "$port" "$TR/I$fam" || return 1
	want=$TR/rs$fam.want
	[[ "$vip" == *:* ]] && vip="[$vip]"
	ip netns exec d ipvsadm -Sn | lookup_model "$TR/I$fam" --service "udp:$vip:$port" | sort >"$want"
	n=$(wc -l <"$TR/I$fam")
	m=$(join "$TR/rs$fam.got" "$want" | awk '$2 == $3' | wc -l)
	servers=$(awk '$2 != "NONE" { print $2 }' "$TR/rs$fam.got" | sort -u | wc -l)
	record "$n" "$m"
	echo "errors scheduled as mhsim schedules their flows: $m of $n, over $servers servers"
	ip netns exec d ipvsadm -C
	if [ "$n" != "$m" ]; then
		join -a1 "$TR/rs$fam.got" "$want" | awk '$2 != $3' | head -n 5 | sed 's/^/    mismatch: /'
		return 1
	fi
	[ "$servers" -ge 2 ] || { echo "every error went to one server: not a test"; return 1; }
}
scenario icmp-errors-like-their-flow-ipv4 like_the_flow 4 7001
scenario icmp-errors-like-their-flow-ipv6 like_the_flow 6 7002

# like_c FAMILY PORT: upstream mode (-b flag-3) against the C module, each
# on a port of its own (a port meets no entry of the other's run).
like_c() {
	local fam=$1 port=$2 vip=$VIP ko n m
	[ "$fam" = 6 ] && vip=$VIP6
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "the in-tree ip_vs_mh.ko is not installed"; return 1; }
	rmmod ip_vs_mh_rs 2>/dev/null
	insmod "$ko" || return 1
	service "$vip" "$port" "-b flag-3" || return 1
	errors "c$fam" "$vip" "$port" "$TR/I$fam" || return 1
	ip netns exec d ipvsadm -C
	rmmod ip_vs_mh || return 1
	module_load || return 1
	service "$vip" "$((port + 1))" "-b flag-3" || return 1
	errors "up$fam" "$vip" "$((port + 1))" "$TR/I$fam" || return 1
	ip netns exec d ipvsadm -C
	n=$(wc -l <"$TR/I$fam")
	m=$(join "$TR/c$fam.got" "$TR/up$fam.got" | awk '$2 == $3' | wc -l)
	record "$n" "$m"
	echo "errors scheduled alike by C and by upstream mode: $m of $n"
	if [ "$n" != "$m" ]; then
		join "$TR/c$fam.got" "$TR/up$fam.got" | awk '$2 != $3 { print "  C " $2 " Rust " $3 " for " $1 }' | head -n 5
		return 1
	fi
	! grep -q ' NONE$' "$TR/c$fam.got" || { echo "C refused some errors: not a test"; return 1; }
}
scenario icmp-errors-upstream-like-c-ipv4 like_c 4 7010
scenario icmp-errors-upstream-like-c-ipv6 like_c 6 7020

traffic_down
rmmod ip_vs_mh 2>/dev/null
rmmod ip_vs_mh_rs 2>/dev/null
finish
