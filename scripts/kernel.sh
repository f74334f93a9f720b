#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prepare one of the kernels of kernel/kernels (building or fetching it the
# first time) and print what the VM runner needs, as shell assignments:
#
#   scripts/kernel.sh [NAME]        (default: the list's first kernel)
#   scripts/kernel.sh --names       the kernels' names, one per line
#   scripts/kernel.sh --entry NAME  its line's KIND and ARGUMENTS, nothing
#                                   prepared
#
#   MH_K_NAME     the kernel's name in the list
#   MH_K_IMAGE    the kernel image to boot
#   MH_K_MODROOT  the directory holding lib/modules/RELEASE
#   MH_K_RELEASE  its release (uname -r)
#   MH_K_KDIR     the build tree modules are built against
#   MH_K_APPEND   what its command line needs besides the runner's own
#   MH_K_HOOKS    1 if the module is built with its test hooks for it
#   MH_K_INITRD   1 if it needs an initramfs for its virtio drivers
#   MH_K_SUITE    the Debian suite of the toolchain its modules are built in
source "$(dirname "$0")/lib.sh"

list=$MH_REPO/kernel/kernels
entries() { grep -vE '^[[:space:]]*(#|$)' "$list"; }
if [ "${1:-}" = --names ]; then
	entries | awk '{ print $1 }'
	exit 0
fi
entry_only=
[ "${1:-}" = --entry ] && { entry_only=1; shift; }
name=${1:-$(entries | awk 'NR == 1 { print $1 }')}
read -r _ kind a1 a2 a3 < <(entries | awk -v n="$name" '$1 == n')
[ -n "${kind:-}" ] || die "no kernel '$name' in kernel/kernels (one of: $(entries | awk '{ print $1 }' | xargs))"
if [ -n "$entry_only" ]; then
	echo "$kind $a1 ${a2:-} ${a3:-}"
	exit 0
fi

append= hooks=0 initrd=0 suite=$MH_SUITE
case "$kind" in
debian)
	suite=${a3:-trixie}
	dir=$(MH_SUITE=$suite "$MH_REPO/scripts/debian-kernel.sh" "$a1" "$a2") || exit 1
	image=$dir/vmlinuz modroot=$dir/image kdir=$(readlink -f "$dir/build") release=$a1
	initrd=1
	;;
build)
	kdir=$("$MH_REPO/scripts/kernel-build.sh" "$a1") || exit 1
	image=$kdir/arch/x86/boot/bzImage modroot=$kdir/mods
	release=$(cat "$kdir/include/config/kernel.release")
	if [ "$a1" = debug ]; then
		# The debug kernel: a WARN ends the run; its module has the test
		# hooks. no5lvl: with 5-level paging (qemu's TCG CPU has LA57) this
		# KASAN kernel reports a wild access in its first interrupt at boot.
		append="panic_on_warn=1 no5lvl"
		hooks=1
	fi
	;;
*) die "kernel/kernels: unknown kind '$kind' for $name" ;;
esac
printf 'MH_K_NAME=%q\nMH_K_IMAGE=%q\nMH_K_MODROOT=%q\nMH_K_RELEASE=%q\nMH_K_KDIR=%q\n' \
	"$name" "$image" "$modroot" "$release" "$kdir"
printf 'MH_K_APPEND=%q\nMH_K_HOOKS=%q\nMH_K_INITRD=%q\nMH_K_SUITE=%q\n' "$append" "$hooks" "$initrd" "$suite"
