#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Module lifecycle and bad input (run inside the VM by
# tests/vm/run): rmmod refused while a service uses mh; invalid table_size
# values refused with a clear message; a service with more real servers
# than table slots keeps serving with its previous table and says why, and
# is rebuilt when a server goes; a service deleted with live connections
# leaves nothing behind that keeps the module loaded.
source "$(dirname "$0")/lib.sh"

VIP=10.0.1.1
N=${TR_LIFECYCLE_FLOWS:-300}

rmmod_refused() {
	local ok=0
	traffic_up 1
	module_load || return 1
	ip netns exec d ipvsadm -A -t "$VIP:80" -s mh || return 1
	lsmod | grep '^ip_vs_mh_rs '
	if rmmod ip_vs_mh_rs; then
		echo "rmmod succeeded while a service used mh"
		return 1
	fi
	need lsmod_has ip_vs_mh_rs "the module is still loaded" || ok=1
	ip netns exec d ipvsadm -D -t "$VIP:80" || return 1
	rmmod ip_vs_mh_rs || ok=1
	need not lsmod_has ip_vs_mh_rs "the module is unloaded once no service uses it" || ok=1
	traffic_down
	return $ok
}
lsmod_has() { lsmod | grep -q "^$1 "; }
scenario lifecycle-rmmod-refused-while-used rmmod_refused

bad_table_size() {
	local v ok=0 msg
	rmmod ip_vs_mh_rs 2>/dev/null
	for v in 1000 0 250 4096 131072 4294967295; do
		dmesg -C
		if modprobe ip_vs_mh_rs table_size="$v" 2>"$TR/modprobe.err"; then
			echo "table_size=$v: the load succeeded"
			rmmod ip_vs_mh_rs
			ok=1
			continue
		fi
		msg=$(dmesg | grep -F "ip_vs_mh_rs: table_size=$v is not a valid table size; use one of 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071")
		echo "table_size=$v: $(cat "$TR/modprobe.err") / ${msg:-NO MESSAGE}"
		[ -n "$msg" ] || ok=1
		lsmod_has ip_vs_mh_rs && ok=1
	done
	# Not a number: the kernel's parameter parser refuses it.
	dmesg -C
	if modprobe ip_vs_mh_rs table_size=big 2>"$TR/modprobe.err"; then
		echo "table_size=big: the load succeeded"
		rmmod ip_vs_mh_rs
		ok=1
	fi
	echo "table_size=big: $(cat "$TR/modprobe.err") / $(dmesg | grep -i 'table_size' | tail -n 1)"
	dmesg | grep -q "invalid for parameter .table_size" || ok=1
	# And a valid one loads.
	modprobe ip_vs_mh_rs table_size=251 || ok=1
	dmesg | grep "ip_vs_mh_rs: IPVS scheduler 'mh'.*table_size=251" || ok=1
	rmmod ip_vs_mh_rs || ok=1
	return $ok
}
scenario lifecycle-invalid-table-size bad_table_size

# 252 real servers at table size 251: the 252nd is accepted by IPVS, the
# scheduler cannot build a table, the previous one (251 servers) serves.
# The servers are 10.0.2.11:1001..1252, one mhnet each, named by port.
too_many() {
	local ok=0 p
	traffic_up 1
	ip netns exec r1 bash -c "for p in \$(seq 1001 1252); do
		'$MHNET' serve --id 10.0.2.11:\$p --tcp 0.0.0.0:\$p >$TR/serve-\$p.log 2>&1 &
	done" </dev/null >/dev/null 2>&1
	for p in $(seq 1001 1252); do
		echo "$TR/serve-$p.log"
	done >"$TR/serve.list"
	wait_served || return 1
	module_load table_size=251 || return 1
	ip netns exec d ipvsadm -A -t "$VIP:80" -s mh || return 1
	for p in $(seq 1001 1251); do
		echo "-a -t $VIP:80 -r 10.0.2.11:$p -m -w 1"
	done | ip netns exec d ipvsadm -R || return 1
	flows "$TR/T1" 4 20000 "$N"
	probe_model full tcp "$VIP:80" "$TR/T1" "tcp:$VIP:80" --size 251 || ok=1
	cp "$TR/full.conf" "$TR/prev.conf"

	dmesg -C
	ip netns exec d ipvsadm -a -t "$VIP:80" -r 10.0.2.11:1252 -m -w 1 || {
		echo "IPVS refused the 252nd server"
		return 1
	}
	echo "servers now: $(ip netns exec d ipvsadm -Ln -t "$VIP:80" | grep -c '^  ->' ) (one line is the header)"
	dmesg | grep ip_vs_mh_rs
	need dmesg_has "ip_vs_mh_rs: TCP $VIP:80: 252 real servers, but a table of 251 slots can name 251 at most" \
		"the kernel log says why" || ok=1
	# Said once: a 253rd server, and its removal, rebuild nothing and say
	# nothing more while the service still has too many.
	dmesg -C
	ip netns exec d ipvsadm -a -t "$VIP:80" -r 10.0.2.11:1253 -m -w 1 || return 1
	ip netns exec d ipvsadm -d -t "$VIP:80" -r 10.0.2.11:1253 || return 1
	need not dmesg_has "real servers, but" "the kernel log says it once, not on every change" || ok=1
	# Fresh flows follow the previous table (251 servers), among them flows
	# that the table without 10.0.2.11:1001 will give to the 252nd server.
	conf "$TR/now.conf"
	sed '/ 10\.0\.2\.11:1001 /d' "$TR/now.conf" >"$TR/future.conf"
	PICK_SPAN=2000 pick_clients "$TR/to252" 2 10.0.2.11:1252 "$TR/future.conf" "tcp:$VIP:80" 4 24000 \
		--size 251 || return 1
	flows "$TR/T2" 4 21000 "$N"
	cat "$TR/to252" >>"$TR/T2"
	probe "$TR/over.got" tcp "$VIP:80" "$TR/T2"
	model "$TR/over.want" "$TR/prev.conf" "$TR/T2" --service "tcp:$VIP:80" --size 251 || return 1
	compare "252 servers: flows against the previous table's model" "$TR/over.got" "$TR/over.want" || ok=1
	need [ "$(awk '$2 == "10.0.2.11:1252"' "$TR/over.got" | wc -l)" = 0 ] \
		"no flow reaches the 252nd server while it does not fit" || ok=1

	# Removing one server rebuilds the table (with the 252nd in it).
	dmesg -C
	ip netns exec d ipvsadm -d -t "$VIP:80" -r 10.0.2.11:1001 || return 1
	dmesg | grep ip_vs_mh_rs
	need dmesg_has "ip_vs_mh_rs: TCP $VIP:80: table rebuilt again" "the kernel log says the table is rebuilt" || ok=1
	flows "$TR/T3" 4 22000 "$N"
	cat "$TR/to252" >>"$TR/T3"
	wait_conns_gone "$TR/to252" || return 1
	probe_model rebuilt tcp "$VIP:80" "$TR/T3" "tcp:$VIP:80" --size 251 || ok=1
	need [ "$(awk '$2 == "10.0.2.11:1252"' "$TR/rebuilt.got" | wc -l)" -ge 2 ] \
		"the rebuilt table sends flows to the 252nd server" || ok=1
	need [ "$(awk '$2 == "10.0.2.11:1001"' "$TR/rebuilt.got" | wc -l)" = 0 ] "no flow reaches the removed server" || ok=1
	traffic_down
	rmmod ip_vs_mh_rs || ok=1
	return $ok
}
dmesg_has() { dmesg | grep -qF "$1"; }
scenario lifecycle-more-servers-than-slots too_many

# The service is deleted while connections through it are open; afterwards
# the module unloads (the scheduler holds nothing of the service any more).
delete_live() {
	local ok=0
	traffic_up 4
	serve_rs 80 4 || return 1
	module_load || return 1
	ip netns exec d ipvsadm -A -t "$VIP:80" -s mh || return 1
	for i in 1 2 3 4; do
		ip netns exec d ipvsadm -a -t "$VIP:80" -r "10.0.2.$((10 + i)):80" -m -w 1 || return 1
	done
	flows "$TR/live" 4 50000 8
	streams_start live "$VIP:80" "$TR/live" || return 1
	flows "$TR/D" 4 23000 100
	probe_model del tcp "$VIP:80" "$TR/D" "tcp:$VIP:80" || ok=1
	ip netns exec d ipvsadm -Lnc | head -n 5
	echo "connection entries before the delete: $(ip netns exec d ipvsadm -Lnc | grep -c TCP)"
	ip netns exec d ipvsadm -D -t "$VIP:80" || return 1
	need [ "$(ip netns exec d ipvsadm -Lnc | grep -c ESTABLISHED)" -ge 8 ] \
		"the live connections' entries outlive the service" || ok=1
	rmmod ip_vs_mh_rs || { echo "rmmod after deleting the service failed"; ok=1; }
	need not lsmod_has ip_vs_mh_rs "the module is unloaded" || ok=1
	sleep 1
	streams_stop live || return 1
	# IPVS stops forwarding for the servers of a deleted service (whatever
	# the scheduler: rr does the same); not the scheduler's business.
	echo "NOTE the $(wc -l <"$TR/live") connections open when the service was deleted ended: $(awk '{ print $6 }' "$TR/live.out" | sort | uniq -c | xargs) (IPVS drops a deleted service's connections, as with rr)"
	traffic_down
	# Nothing of ours holds IPVS: it unloads too, and its per-netns cleanup
	# found no stray references (a WARNING would fail the run).
	rmmod ip_vs_rr ip_vs_sh ip_vs_mh 2>/dev/null
	rmmod ip_vs || { echo "rmmod ip_vs failed"; lsmod; ok=1; }
	return $ok
}
scenario lifecycle-delete-service-with-live-connections delete_live

finish
