#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The package test inside the booted kernel (tests/package/vm-run), on the
# system as apt left it:
#
#   guest.sh installed   ip-vs-mh-rs-dkms is installed: `ipvsadm -s mh` must
#                        autoload the DKMS-built ip_vs_mh_rs although the
#                        kernel ships the in-tree C ip_vs_mh, and TCP and
#                        UDP flows over IPv4 and IPv6 must reach the
#                        servers the model (mhsim) names, before and after
#                        a weight change
#   guest.sh removed     the package is gone: `-s mh` loads the C ip_vs_mh
#   guest.sh no-rust     the package is installed, but this kernel (trixie's
#                        own, without Rust) was skipped by DKMS: `-s mh`
#                        loads the C ip_vs_mh
#   guest.sh fleet       as installed, with the binary module package
#                        (ip-vs-mh-rs-modules-KVER) instead of DKMS
#
# Same helpers as tests/module/smoke.sh and stats.sh.
source "$(dirname "$0")/../lib/guest.sh"

mode=${1:?usage: $0 installed|fleet|removed|no-rust}
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
installed | fleet)
	# installed_module DIR: ip_vs_mh_rs for this kernel, in updates/DIR.
	installed_module() {
		local f
		f=$(modinfo -n ip_vs_mh_rs) || return 1
		echo "$f"
		modinfo -F vermagic ip_vs_mh_rs
		[[ "$f" == /lib/modules/$kver/updates/$1/ip_vs_mh_rs.ko* ]] &&
			[ "$(modinfo -F vermagic ip_vs_mh_rs | cut -d' ' -f1)" = "$kver" ]
	}
	if [ "$mode" = installed ]; then
		check "the DKMS-built ip_vs_mh_rs is installed for $kver in updates/dkms" installed_module dkms
	else
		check "the fleet package's ip_vs_mh_rs is installed for $kver" installed_module ip-vs-mh-rs
	fi
	check "ipvsadm -s mh autoloads ip_vs_mh_rs, not the in-tree ip_vs_mh" \
		autoload ip_vs_mh_rs ip_vs_mh "ip_vs_mh_rs: IPVS scheduler 'mh' \(Maglev hashing, Rust\) registered"
	# Four services (TCP and UDP, IPv4 and IPv6) over four real servers,
	# one flow per client port, compared with the model flow by flow; then
	# a weight change in each, and new client ports (an old flow's
	# connection entry would keep its server).
	# The four services: ipvsadm's protocol flag and the virtual address.
	services=("-t 10.0.1.1:80" "-u 10.0.1.1:80" "-t [fd00:1::1]:80" "-u [fd00:1::1]:80")
	# server VIP I: real server I of the service at VIP, in its family.
	server() {
		if [[ "$1" == "["* ]]; then echo "[fd00:2::$((10 + $2))]:80"; else echo "10.0.2.$((10 + $2)):80"; fi
	}
	# services_up: the four services, weights 1 to 4.
	services_up() {
		local svc p vip i
		for svc in "${services[@]}"; do
			read -r p vip <<<"$svc"
			ip netns exec d ipvsadm -A "$p" "$vip" -s mh || return 1
			for i in 1 2 3 4; do
				ip netns exec d ipvsadm -a "$p" "$vip" -r "$(server "$vip" "$i")" -m -w "$i" || return 1
			done
		done
	}
	# round FIRST_PORT: 200 flows per service from new client ports.
	round() {
		local port=$1 size=$2 proto rc=0
		clients /tmp/pc4 10.0.1.2 "$port" 200
		clients /tmp/pc6 fd00:1::2 "$port" 200
		for proto in tcp udp; do
			probe_vs_model "$proto-ipv4" "$proto" 10.0.1.1:80 /tmp/pc4 \
				--service "$proto:10.0.1.1:80" --size "$size" || rc=1
			probe_vs_model "$proto-ipv6" "$proto" "[fd00:1::1]:80" /tmp/pc6 \
				--service "$proto:[fd00:1::1]:80" --size "$size" || rc=1
		done
		return $rc
	}
	as_model_in_topology() {
		local svc p vip size rc=0 refs
		services_up || return 1
		# ip_vs_mh_rs serves them: it holds one reference per service.
		refs=$(awk '$1 == "ip_vs_mh_rs" { print $3 }' /proc/modules)
		echo "ip_vs_mh_rs in use by ${refs:-nothing}"
		[ "${refs:-0}" = 4 ] || return 1
		size=$(proc_get d tcp:10.0.1.1:80 .size)
		echo "table size $size"
		round 42001 "$size" || rc=1
		for svc in "${services[@]}"; do
			read -r p vip <<<"$svc"
			ip netns exec d ipvsadm -e "$p" "$vip" -r "$(server "$vip" 2)" -m -w 5 || return 1
		done
		echo "after the weight change of the second server (2 -> 5):"
		round 43001 "$size" || rc=1
		return $rc
	}
	as_model() {
		local rc
		topo_up 4
		serve_all 80 4
		as_model_in_topology
		rc=$?
		ip netns exec d ipvsadm -C
		topo_down
		return $rc
	}
	check "TCP and UDP flows, IPv4 and IPv6, reach the model's servers before and after a weight change" as_model
	unload() {
		modprobe -r ip_vs_mh_rs && ! lsmod | grep -q '^ip_vs_mh_rs '
	}
	check "ip_vs_mh_rs unloads once no service uses it" unload
	;;
removed | no-rust)
	if [ "$mode" = removed ]; then
		gone() {
			! modinfo -n ip_vs_mh_rs 2>/dev/null && ! ls /usr/lib/modprobe.d/ip-vs-mh-rs.conf 2>/dev/null
		}
		check "no ip_vs_mh_rs module and no modprobe rule are left" gone
	else
		skipped() {
			! grep -q '^CONFIG_RUST=y' "/boot/config-$kver" &&
				ls /usr/lib/modprobe.d/ip-vs-mh-rs.conf &&
				! modinfo -n ip_vs_mh_rs 2>/dev/null
		}
		check "a kernel without Rust: the package's modprobe rule, no ip_vs_mh_rs for $kver" skipped
	fi
	check "ipvsadm -s mh loads the in-tree ip_vs_mh" \
		autoload ip_vs_mh ip_vs_mh_rs "IPVS: \[mh\] scheduler registered"
	# The C module hashes the source port only when asked to (-b mh-port).
	check "the in-tree ip_vs_mh schedules 30 TCP connections (-b mh-port)" traffic -b mh-port
	;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
finish
