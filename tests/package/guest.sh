#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The package test inside the booted kernel (tests/package/vm-run), on the
# system as apt left it:
#
#   guest.sh installed   ip-vs-mh-rs-dkms is installed: `ipvsadm -s mh` must
#                        autoload the DKMS-built ip_vs_mh_rs although the
#                        kernel ships the in-tree C ip_vs_mh, and a service
#                        must schedule real TCP connections
#   guest.sh removed     the package is gone: `-s mh` loads the C ip_vs_mh
#
# Same helpers and traffic scenario as tests/module/smoke.sh.
source "$(dirname "$0")/../lib/guest.sh"

mode=${1:?usage: $0 installed|removed}
kver=$(uname -r)
echo "kernel $kver"

# Which module serves "mh" after ipvsadm asked for it: prints the lsmod lines
# and the kernel's registration message.
autoload() {
	local want=$1 other=$2 msg=$3
	[ -n "$(c_mh_ko)" ] || { echo "the kernel's in-tree ip_vs_mh.ko is missing"; return 1; }
	modprobe -r ip_vs_mh_rs ip_vs_mh 2>/dev/null
	dmesg -C
	ipvsadm -A -t 10.9.9.9:80 -s mh || return 1
	lsmod | grep '^ip_vs'
	dmesg | grep -E "$msg"
	lsmod | grep -q "^$want " && ! lsmod | grep -q "^$other " && dmesg | grep -qE "$msg"
	local rc=$?
	ipvsadm -D -t 10.9.9.9:80
	return $rc
}

# traffic [IPVSADM FLAGS...]: tests/module/smoke.sh's 30 connections, then
# everything torn down.
traffic() {
	tcp30 10.0.1.1 "$@"
	local rc=$?
	ip netns exec d ipvsadm -C
	topo_down
	return $rc
}

case "$mode" in
installed)
	dkms_module() {
		local f
		f=$(modinfo -n ip_vs_mh_rs) || return 1
		echo "$f"
		modinfo -F vermagic ip_vs_mh_rs
		[[ "$f" == /lib/modules/$kver/updates/dkms/ip_vs_mh_rs.ko* ]] &&
			[ "$(modinfo -F vermagic ip_vs_mh_rs | cut -d' ' -f1)" = "$kver" ]
	}
	check "the DKMS-built ip_vs_mh_rs is installed for $kver in updates/dkms" dkms_module
	check "ipvsadm -s mh autoloads ip_vs_mh_rs, not the in-tree ip_vs_mh" \
		autoload ip_vs_mh_rs ip_vs_mh "ip_vs_mh_rs: IPVS scheduler 'mh' \(Maglev hashing, Rust\) registered"
	check "ip_vs_mh_rs schedules 30 TCP connections over three real servers" traffic
	unload() {
		modprobe -r ip_vs_mh_rs && ! lsmod | grep -q '^ip_vs_mh_rs '
	}
	check "ip_vs_mh_rs unloads once no service uses it" unload
	;;
removed)
	gone() {
		! modinfo -n ip_vs_mh_rs 2>/dev/null && ! ls /usr/lib/modprobe.d/ip-vs-mh-rs.conf 2>/dev/null
	}
	check "no ip_vs_mh_rs module and no modprobe rule are left" gone
	check "ipvsadm -s mh loads the in-tree ip_vs_mh again" \
		autoload ip_vs_mh ip_vs_mh_rs "IPVS: \[mh\] scheduler registered"
	# The C module hashes the source port only when asked to (-b mh-port).
	check "the in-tree ip_vs_mh schedules 30 TCP connections (-b mh-port)" traffic -b mh-port
	;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
finish
