# SPDX-License-Identifier: GPL-2.0
# What the package tests share (sourced by tests/package/run and upgrade):
# a private mount namespace, a work directory under $MH_CACHE/run, fresh
# trixie systems as copy-on-write views of the cached ones
# (tests/package/rootfs.sh), commands inside them, their kernels booted.
# MH_PKG_KEEP=1 keeps the work directory (logs, the systems' upper layers).
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

# Everything runs in a private mount namespace: the copy-on-write systems
# are mounted there and vanish with the run.
if [ -z "${MH_PKG_NS:-}" ]; then
	MH_PKG_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
set +e
cd "$MH_REPO"
mh_lock package-test
source "$MH_REPO/tests/lib/tally.sh"

# The DKMS module version: the package's upstream version.
mver=$(sed -n '1s/^[^(]*(\([^)]*\)-[^-)]*).*/\1/p' debian/changelog)
[ -n "$mver" ] || die "cannot read the version from debian/changelog"
mkdir -p "$MH_CACHE/run"
work=$(mktemp -d "$MH_CACHE/run/pkg.XXXXXX")
pkg_mounts=()
pkg_cleanup() {
	local m
	for m in "${pkg_mounts[@]}"; do umount "$m" 2>/dev/null; done
	if [ -n "${MH_PKG_KEEP:-}" ]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
}
trap pkg_cleanup EXIT
pkg_t0=$(date +%s)

# pkg_done NAME: the end of the test, after the last step or one the rest
# depends on.
pkg_done() {
	echo
	[ "${#mh_failures[@]}" = 0 ] || echo "failed: ${mh_failures[*]}"
	echo "$1: took $(($(date +%s) - pkg_t0)) s"
	finish
	exit
}

# debian_kernel NAME: "KVER SOURCE_PACKAGE" of a Debian kernel of
# kernel/kernels whose system is trixie's (the package tests install on
# trixie).
debian_kernel() {
	local kind kver src suite
	read -r kind kver src suite < <(scripts/kernel.sh --entry "$1") || return 1
	[ "$kind" = debian ] || die "$1 is not one of Debian's kernels (the package tests install Debian's)"
	[ "${suite:-trixie}" = "$MH_SUITE" ] || die "$1 is a kernel of $suite; the package tests' system is $MH_SUITE"
	echo "$kver $src"
}

# cow_system BASE NAME: BASE (a cached system) as a copy-on-write view at
# $work/NAME; its changes go to $work/NAME.upper.
cow_system() {
	mkdir -p "$work/$2.upper" "$work/$2.work" "$work/$2"
	mount -t overlay overlay \
		-o "lowerdir=$1,upperdir=$work/$2.upper,workdir=$work/$2.work" "$work/$2" || return 1
	pkg_mounts+=("$work/$2")
}

# in_system ROOT CMD...: CMD as root inside the system at ROOT.
in_system() { "$MH_REPO/tests/package/in-root" "$@"; }

# boot_system ROOT KVER GUEST_MODE: ROOT's kernel KVER booted with ROOT as
# the guest's root, running tests/package/guest.sh GUEST_MODE.
boot_system() {
	tests/package/vm-run --root "$1" --kernel "$1/boot/vmlinuz-$2" -- \
		tests/package/guest.sh "$3" 2>&1 | sed -u 's/^/    /'
	return "${PIPESTATUS[0]}"
}

# build_deb: the package, built into $work/out; sets deb.
deb=
build_deb() {
	tests/package/build-deb "$work/out" || return 1
	deb=$(ls "$work"/out/ip-vs-mh-rs-dkms_*_all.deb)
	dpkg-deb -c "$deb" | awk '{ print "    " $6 }'
}

# apt_in ROOT LOG CMD...: an apt command in ROOT, its output in LOG; on
# failure, LOG's end is printed. Returns apt's status.
apt_in() {
	local root=$1 log=$2 rc
	shift 2
	in_system "$root" "$@" >"$log" 2>&1
	rc=$?
	echo "    $*: exit $rc"
	[ "$rc" = 0 ] || tail -n 30 "$log" | sed -u 's/^/    /'
	return "$rc"
}

# apt_install_deb ROOT LOG DEB [PACKAGE...]: `apt install` of the local
# package DEB (copied into ROOT for the run) and PACKAGEs in ROOT, as
# apt_in; then the footprint as apt states it (the README quotes it).
apt_install_deb() {
	local root=$1 log=$2 deb=$3 rc
	shift 3
	cp "$deb" "$root/root/" || return 1
	apt_in "$root" "$log" apt install -y "/root/$(basename "$deb")" "$@"
	rc=$?
	rm -f "$root/root/$(basename "$deb")"
	grep -E '^ *(Need to get|After this operation|Download size|Space needed)' "$log" | sed -u 's/^/    /'
	return "$rc"
}
