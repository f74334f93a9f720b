#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A long rebuild in one network namespace holds up no configuration change
# in another, inside the VM, with the module's tests build (test hooks):
#
#   tests/vm/run --test-hooks [--kernel debug] -- tests/reliability/rebuild-isolation.sh
#
# The tests build makes every rebuild of a service on virtual port 65001
# hold its namespace's rebuild state for 5 s before it starts (as a
# 131 071-slot rebuild of many servers would, on a slow machine). While
# namespace a's such rebuild holds it, a weight edit in namespace b (a
# rebuild of b's own service) must finish long before the hold ends: the
# rebuild state is per namespace, as IPVS's configuration mutex is. The
# control: an edit of another service in namespace a itself waits for the
# hold (IPVS serialises a namespace's changes), which shows that this
# measurement sees a stall where there is one. An edit takes about half a
# second under KASAN and TCG; the bounds are half the hold, so that a
# machine twice as busy still passes.
source "$(dirname "$0")/../lib/guest.sh"
export LC_ALL=C

HOLD_MS=5000

modprobe ip_vs || exit 1
modprobe -r ip_vs_mh_rs 2>/dev/null
modprobe ip_vs_mh_rs || exit 1

for ns in mh-ia mh-ib; do
	bare_ns "$ns" || exit 1
	{
		echo "-A -t 10.9.0.1:80 -s mh"
		for i in 11 12 13 14; do echo "-a -t 10.9.0.1:80 -r 10.0.2.$i:80 -m"; done
	} | ip netns exec "$ns" ipvsadm -R || exit 1
done
ip netns exec mh-ia ipvsadm -A -t 10.9.0.2:65001 -s mh || exit 1

# edit_ms NS WEIGHT: the wall time of one weight edit of 10.9.0.1:80 in NS.
edit_ms() {
	local t0
	t0=$(date +%s%N)
	ip netns exec "$1" ipvsadm -e -t 10.9.0.1:80 -r 10.0.2.11:80 -m -w "$2" || return 1
	echo $((($(date +%s%N) - t0) / 1000000))
}

# held NS WEIGHT: edit_ms NS WEIGHT while a server is being added to a's
# port-65001 service (its rebuild holding a's rebuild state); prints "EDIT
# TOTAL", the edit's time and the slow addition's, in ms.
held() {
	local t0 edit total
	t0=$(date +%s%N)
	ip netns exec mh-ia ipvsadm -a -t 10.9.0.2:65001 -r "10.0.2.$((20 + $2)):80" -m &
	local slow=$!
	# Let the slow rebuild start (ipvsadm's start-up takes tens of ms).
	sleep 0.5
	edit=$(edit_ms "$1" "$2") || { wait "$slow"; return 1; }
	wait "$slow" || return 1
	total=$((($(date +%s%N) - t0) / 1000000))
	echo "$edit $total"
}

idle=$(edit_ms mh-ib 2) || idle=fail
check "an edit takes well under the hold with nothing else going on ($idle ms)" \
	test "$idle" != fail -a "${idle/fail/0}" -lt $((HOLD_MS / 2))

read -r other slow < <(held mh-ib 3)
check "an edit in namespace b does not wait for a's long rebuild (${other:-?} ms, a's took ${slow:-?} ms)" \
	test -n "$other" -a "${other:-0}" -lt $((HOLD_MS / 2)) -a "${slow:-0}" -ge "$HOLD_MS"

read -r same slow < <(held mh-ia 4)
check "control: an edit in namespace a itself waits for it (${same:-?} ms, a's took ${slow:-?} ms)" \
	test -n "$same" -a "${same:-0}" -ge $((HOLD_MS / 2))

# Both namespaces still agree with the model after it all.
for ns in mh-ia mh-ib; do
	check "$ns agrees with the model" sh -c "ip netns exec $ns ipvsadm -Sn | ip netns exec $ns '$MHSIM' check"
done

for ns in mh-ia mh-ib; do
	ip netns exec "$ns" ipvsadm -C
	ip netns del "$ns"
done
finish
