#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The module in a booted kernel (run inside the VM by tests/vm/run): modinfo,
# KUnit, parameters, registration conflicts, autoload with the in-tree C
# module installed, three real servers taking real TCP connections, unload.
source "$(dirname "$0")/../lib/guest.sh"

kunit_results() { dmesg | grep -E '^\[ *[0-9.]+\] +(# ip_vs_mh_rs|(not )?ok [0-9]+ (ip_vs_mh_rs|hsiphash|known|table))'; }

modinfo_ok() {
	local info
	info=$(modinfo ip_vs_mh_rs) || return 1
	echo "$info"
	echo "$info" | grep -q '^description: *IPVS Maglev hashing scheduler (mh), in Rust' &&
		echo "$info" | grep -q '^license: *GPL' &&
		echo "$info" | grep -q '^alias: *ip_vs_mh$' &&
		echo "$info" | grep -q '^parm: *table_size:.*131071' &&
		echo "$info" | grep -q '^parm: *list_order:' &&
		echo "$info" | grep -q "^filename: */lib/modules/$(uname -r)/updates/\(dkms/\)\?ip_vs_mh_rs.ko"
}
check "modinfo shows description, license, alias and parameters" modinfo_ok

kunit_ok() {
	dmesg -C
	modprobe ip_vs_mh_rs || return 1
	local res
	res=$(kunit_results)
	echo "$res"
	echo "$res" | grep -qE '^\[ *[0-9.]+\] +ok [0-9]+ ip_vs_mh_rs$' &&
		! echo "$res" | grep -q 'not ok'
}
if grep -qw kunit_run_tests /proc/kallsyms; then
	check "KUnit suite ip_vs_mh_rs passes at load" kunit_ok
else
	echo "SKIP KUnit suite: this kernel has no CONFIG_KUNIT (Debian's stock kernel)"
fi
rmmod ip_vs_mh_rs 2>/dev/null

bad_size() {
	dmesg -C
	if modprobe ip_vs_mh_rs table_size=1000; then
		rmmod ip_vs_mh_rs
		return 1
	fi
	dmesg | grep -q 'ip_vs_mh_rs: table_size=1000 is not a valid table size; use one of 251,'
}
check "invalid table_size fails the load with a message" bad_size

# upstream and its old name list_order are booleans: the forms a modprobe.d
# line of the bool list_order had still load; anything else does not.
mode_params() {
	local p
	for p in list_order=Y list_order=n upstream=1 upstream=y; do
		modprobe ip_vs_mh_rs "$p" || { echo "$p refused"; return 1; }
		rmmod ip_vs_mh_rs || return 1
	done
	dmesg -C
	if modprobe ip_vs_mh_rs upstream=2; then
		rmmod ip_vs_mh_rs
		echo "upstream=2 accepted"
		return 1
	fi
	dmesg | grep -q "ip_vs_mh_rs.*upstream"
}
check "upstream and list_order take booleans (Y, n, 1, y), refuse 2" mode_params

c_first() {
	local ko
	ko=$(c_mh_ko)
	[ -n "$ko" ] || { echo "in-tree ip_vs_mh.ko not found"; return 1; }
	modprobe ip_vs || return 1
	insmod "$ko" || return 1
	dmesg -C
	if modprobe ip_vs_mh_rs; then
		rmmod ip_vs_mh_rs
		rmmod ip_vs_mh
		return 1
	fi
	dmesg | grep -q "ip_vs_mh_rs: cannot register the IPVS scheduler 'mh'.*already registered"
	local rc=$?
	rmmod ip_vs_mh
	return $rc
}
check "loading fails clearly while the C ip_vs_mh is registered" c_first

autoload() {
	[ -n "$(c_mh_ko)" ] || return 1
	modprobe -r ip_vs_mh_rs 2>/dev/null
	ipvsadm -A -t 10.9.9.9:80 -s mh || return 1
	lsmod | grep -q '^ip_vs_mh_rs ' && ! lsmod | grep -q '^ip_vs_mh '
	local rc=$?
	lsmod | grep ip_vs
	ipvsadm -D -t 10.9.9.9:80
	return $rc
}
check "ipvsadm -s mh autoloads ip_vs_mh_rs although ip_vs_mh.ko is installed" autoload

traffic() { tcp30 10.0.1.1; }
check "a service with three real servers schedules 30 TCP connections" traffic

unload() {
	if rmmod ip_vs_mh_rs 2>/dev/null; then
		echo "rmmod succeeded while a service used mh"
		return 1
	fi
	ip netns exec d ipvsadm -C
	topo_down
	rmmod ip_vs_mh_rs && ! lsmod | grep -q '^ip_vs_mh_rs '
}
check "rmmod is refused while a service uses mh, then succeeds" unload

finish
