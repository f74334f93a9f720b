#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The DKMS build of ip_vs_mh_rs (MAKE[0] in the package's dkms.conf): build
# the module with the project's Makefile against a kernel's build tree.
#
#   dkms-build.sh [-jN] KERNELVER KERNEL_SOURCE_DIR [MAKE ARG...]
#   dkms-build.sh --prepare-only [-jN] KERNELVER KERNEL_SOURCE_DIR
#
# --prepare-only makes (or finds) the kernel tree the module would be built
# against and prints its path, building nothing: the project's test harness
# prepares Debian's kernels with this very code (scripts/debian-kernel.sh),
# with IP_VS_MH_RS_STATE (default /var/lib/ip-vs-mh-rs) and
# IP_VS_MH_RS_SRCDIR (where linux-source-X.Y.tar.xz is, default /usr/src).
#
# A Rust module needs the kernel's Rust build artifacts (rust/libkernel.rmeta,
# the macro crates, scripts/target.json). When KERNEL_SOURCE_DIR has them (a
# kernel built from source), the module is built against it as it is. Debian's
# linux-headers packages lack them: they are then regenerated, once, in a
# private tree under /var/lib/ip-vs-mh-rs/kbuild/KERNELVER from the matching
# /usr/src/linux-source-X.Y.tar.xz, with the kernel's own .config, compiler and
# local version and the kernel's exact rustc. The regenerated tree is used only
# if every Rust symbol name it exports equals, name for name, the Rust symbols
# in the kernel's Module.symvers (the names encode the rustc and crate hashes:
# any mismatch would make the module unloadable). Nothing is ever written
# outside that private directory and DKMS's build directory.
#
# The tree is kept for later builds for the same kernel (a rebuild takes
# seconds), keyed by the kernel (release, .config, Module.symvers) and the
# rustc and bindgen versions. The linux-source version it was made from is
# recorded but is not part of the key: a tree that matched the kernel's
# Module.symvers stays right for that kernel after linux-source-X.Y moves on
# to a newer kernel's version, which could no longer regenerate it. Trees of
# kernels that are no longer installed are removed by the next build;
# removing the package removes them all.
set -euo pipefail

state=${IP_VS_MH_RS_STATE:-/var/lib/ip-vs-mh-rs}
srcdir=${IP_VS_MH_RS_SRCDIR:-/usr/src}
# Bump when the way the private tree is made changes.
recipe=1

prepare_only=
[ "${1:-}" = --prepare-only ] && { prepare_only=1; shift; }
jobs=
case "${1:-}" in
-j) jobs=${2:-}; shift 2 ;;
-j*) jobs=${1#-j}; shift ;;
esac
[ $# -ge 2 ] || { echo "usage: $0 [-jN] KERNELVER KERNEL_SOURCE_DIR [MAKE ARG...]" >&2; exit 2; }
kver=$1 ksrc=$2
shift 2
[ -n "$jobs" ] || jobs=$(nproc 2>/dev/null || echo 1)
here=$(pwd)
start=$(date +%s)

# Progress goes to standard output, which DKMS logs (standard error with
# --prepare-only, whose output is the tree's path).
say() {
	if [ -n "$prepare_only" ]; then
		printf '[ip-vs-mh-rs %s] %s\n' "$(date +%T)" "$*" >&2
	else
		printf '[ip-vs-mh-rs %s] %s\n' "$(date +%T)" "$*"
	fi
}
# Anything failing that is not checked below still says where.
set -E
trap 'echo "ip-vs-mh-rs: failed at line $LINENO of $0: $BASH_COMMAND" >&2' ERR
fail() {
	printf '\nip-vs-mh-rs: cannot build ip_vs_mh_rs.ko for kernel %s:\n' "$kver" >&2
	printf '  %s\n' "$@" >&2
	exit 1
}
conf() { sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$ksrc/.config"; }

say "building ip_vs_mh_rs.ko for kernel $kver against $ksrc (-j$jobs)"
[ -f "$ksrc/.config" ] && [ -f "$ksrc/Module.symvers" ] ||
	fail "$ksrc has no .config or no Module.symvers." \
		"Install the kernel's headers: apt install linux-headers-$kver"
# dkms.conf's BUILD_EXCLUSIVE_CONFIG already skips such kernels; this is for
# builds started by hand.
grep -q '^CONFIG_RUST=y' "$ksrc/.config" ||
	fail "the kernel was built without Rust support (CONFIG_RUST is not set)."
grep -Eq '^CONFIG_IP_VS=(y|m)' "$ksrc/.config" ||
	fail "the kernel was built without IPVS (CONFIG_IP_VS is not set)."

# The toolchain checks come first, so that a mismatch fails at once instead of
# after minutes of work.
want_rustc=$(conf CONFIG_RUSTC_VERSION_TEXT)
have_rustc=$(rustc --version 2>/dev/null || true)
[ -n "$have_rustc" ] ||
	fail "rustc is not installed." "Install it: apt install rustc rust-src" \
		"(the kernel was built with '$want_rustc')."
[ "$have_rustc" = "$want_rustc" ] ||
	fail "the kernel was built with '$want_rustc'," \
		"but 'rustc --version' prints '$have_rustc'." \
		"Rust modules must be built with exactly the kernel's rustc: install the" \
		"rustc and rust-src packages of the Debian release the kernel comes from" \
		"(for Debian's 7.3 kernels from trixie-backports: trixie's rustc 1.85.1):" \
		"apt install rustc/trixie rust-src/trixie"
command -v bindgen >/dev/null || fail "bindgen is not installed: apt install bindgen libclang-dev"
kcc=$(conf CONFIG_CC_VERSION_TEXT | cut -d' ' -f1)
if ! grep -q '^CONFIG_CC_IS_CLANG=y' "$ksrc/.config" && ! command -v "$kcc" >/dev/null; then
	fail "the kernel was built with '$kcc', which is not installed." \
		"Install it: apt install ${kcc#x86_64-linux-gnu-}"
fi

# Kernels that are gone: their private trees go too (not for the harness,
# whose kernels are not installed where it runs).
if [ -z "$prepare_only" ] && [ -d "$state/kbuild" ]; then
	for old in "$state"/kbuild/*; do
		[ -e "$old" ] || continue
		old=$(basename "$old" .lock)
		if [ "$old" != "$kver" ] && [ ! -e "/lib/modules/$old/build" ]; then
			[ ! -d "$state/kbuild/$old" ] ||
				say "removing the private tree of kernel $old (no longer installed)"
			rm -rf "${state:?}/kbuild/$old" "$state/kbuild/$old.lock"
		fi
	done
fi

regenerate() {
	local kxy tarball srcver hdrver key dir src out cc kversion release diffs n_k n_g
	kxy=$(echo "$kver" | sed -n 's/^\([0-9]\{1,\}\.[0-9]\{1,\}\).*/\1/p')
	tarball=$srcdir/linux-source-$kxy.tar.xz
	hdrver=$(dpkg-query -W -f '${Version}' "linux-headers-$kver" 2>/dev/null || true)

	key=$( {
		echo "recipe $recipe"
		echo "kernel $kver"
		echo "rustc $have_rustc"
		echo "bindgen $(bindgen --version 2>/dev/null)"
		cat "$ksrc/.config" "$ksrc/Module.symvers"
	} | sha256sum | cut -c1-16)
	dir=$state/kbuild/$kver
	kdir=$dir/build
	mkdir -p "$state/kbuild"
	exec 9>"$state/kbuild/$kver.lock"
	if ! flock -n 9; then
		say "waiting for another build for $kver to finish"
		flock 9
	fi
	if [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$key" ]; then
		say "reusing the regenerated kernel tree $kdir (made $(date -r "$dir/.ready" '+%F %T')" \
			"from linux-source-$kxy $(cat "$dir/source-version" 2>/dev/null))"
		return 0
	fi

	[ -f "$tarball" ] ||
		fail "its headers ($ksrc) lack the Rust build artifacts (rust/libkernel.rmeta)," \
			"as Debian's headers packages do. They are regenerated from the kernel's" \
			"source, which is not installed: apt install linux-source-$kxy${hdrver:+=$hdrver}" \
			"(the same version as the kernel; Debian's 7.3 kernels: from trixie-backports)"
	srcver=$(dpkg-query -W -f '${Version}' "linux-source-$kxy" 2>/dev/null ||
		stat -c '%s-%Y' "$tarball")

	say "the headers of $kver lack the Rust build artifacts: regenerating them in"
	say "$dir from $tarball ($srcver); this takes a few minutes (2.5-5 on 2 cores) and is done once"
	rm -rf "$dir"
	mkdir -p "$dir/build"
	# A failed attempt leaves nothing behind (the source alone is 1.8 GB).
	trap "rm -rf '$dir'" EXIT
	say "unpacking $tarball"
	tar -C "$dir" -xf "$tarball"
	src=$dir/linux-source-$kxy
	[ -f "$src/Makefile" ] || fail "$tarball does not hold linux-source-$kxy/"
	kversion=$(make -s -C "$src" kernelversion)
	case "$kver" in
	"$kversion"*) ;;
	*) fail "linux-source-$kxy ($srcver) is Linux $kversion; the kernel $kver needs the" \
		"source of the same version: apt install linux-source-$kxy${hdrver:+=$hdrver}" ;;
	esac
	[ -z "$hdrver" ] || [ "$hdrver" = "$srcver" ] ||
		say "note: linux-source-$kxy is $srcver, linux-headers-$kver is $hdrver"

	# The kernel's configuration, resolved by the kernel's own compiler.
	cc=()
	grep -q '^CONFIG_CC_IS_CLANG=y' "$ksrc/.config" && cc=(LLVM=1) || cc=(CC="$kcc")
	cp "$ksrc/.config" "$dir/build/.config"
	say "make olddefconfig (${cc[*]})"
	make -C "$src" O="$dir/build" "${cc[@]}" olddefconfig >&2
	# Only the toolchains' version numbers may differ; a capability that the
	# toolchain here lacks (or has in addition) changes the kernel's options.
	filter() { grep '^CONFIG_' "$1" | grep -Ev '^CONFIG_[A-Z0-9_]*VERSION(_TEXT)?=' | sort; }
	diffs=$(diff <(filter "$ksrc/.config") <(filter "$dir/build/.config") || true)
	if [ -n "$diffs" ]; then
		echo "$diffs" | head -n 20
		if ! grep -q '^CONFIG_RUST=y' "$dir/build/.config"; then
			make -C "$src" O="$dir/build" "${cc[@]}" rustavailable || true
			fail "the toolchain here cannot build Rust kernel code (CONFIG_RUST was dropped;" \
				"see 'make rustavailable' above in the log). Install: apt install rustc rust-src bindgen libclang-dev"
		fi
		fail "the toolchain here resolves the kernel's configuration differently (the" \
			"options above, < kernel, > here): the kernel was built with other tools." \
			"Install the packages the kernel was built with (compiler, pahole: dwarves)."
	fi

	say "make modules_prepare (the kernel crate and its dependencies: most of the time)"
	make -C "$src" O="$dir/build" "${cc[@]}" LOCALVERSION="${kver#"$kversion"}" \
		-j"$jobs" modules_prepare >&2
	release=$(cat "$dir/build/include/config/kernel.release")
	[ "$release" = "$kver" ] ||
		fail "the regenerated tree's release is '$release', not '$kver'."
	cp "$ksrc/Module.symvers" "$dir/build/Module.symvers"

	grep -ohE '\b_R[A-Za-z0-9_]+' "$dir"/build/rust/exports_*_generated.h | sort -u >"$dir/rust-symbols.regenerated"
	awk '$2 ~ /^_R/ { print $2 }' "$ksrc/Module.symvers" | sort -u >"$dir/rust-symbols.kernel"
	n_k=$(wc -l <"$dir/rust-symbols.kernel")
	n_g=$(wc -l <"$dir/rust-symbols.regenerated")
	if [ "$n_k" = 0 ] || ! cmp -s "$dir/rust-symbols.kernel" "$dir/rust-symbols.regenerated"; then
		diff "$dir/rust-symbols.kernel" "$dir/rust-symbols.regenerated" | head -n 10
		fail "the regenerated Rust symbols ($n_g) differ from the kernel's Module.symvers ($n_k):" \
			"the kernel was built from another source or with another rustc. Install the" \
			"source and toolchain of the kernel's own version:" \
			"apt install linux-source-$kxy${hdrver:+=$hdrver} rustc rust-src (the kernel wants '$want_rustc')"
	fi
	say "Rust symbols match the kernel's Module.symvers: $n_k of $n_k"

	# An external module needs the configured tree, the headers and kbuild's
	# files, not the kernel's C sources: keep the top level, include/, scripts/,
	# rust/, tools/, the x86 architecture and every Kconfig/Makefile/Kbuild
	# file, drop the rest (about 1.5 GB).
	say "pruning the source tree to what module builds use"
	(
		cd "$src"
		find arch -mindepth 1 -maxdepth 1 -type d ! -name x86 -exec rm -rf {} +
		rm -rf tools/testing tools/perf
		for d in */; do
			case "$d" in
			include/ | scripts/ | rust/ | tools/ | arch/) continue ;;
			esac
			find "$d" -type f ! -name 'Kconfig*' ! -name 'Makefile*' ! -name 'Kbuild*' -delete
		done
		find . -depth -type d -empty -delete
	)
	echo "$srcver" >"$dir/source-version"
	echo "$key" >"$dir/.ready"
	trap - EXIT
	say "kernel tree ready: $(du -sh "$dir" | cut -f1) in $dir"
}

if [ -f "$ksrc/rust/libkernel.rmeta" ] && [ -f "$ksrc/scripts/target.json" ]; then
	kdir=$ksrc
	say "the kernel tree has its Rust build artifacts: building against it as it is"
else
	regenerate
fi
if [ -n "$prepare_only" ]; then
	echo "$kdir"
	exit 0
fi

# The project's Makefile picks the compiler the kernel names (and LLVM=1 for
# clang kernels): drop what DKMS exported so that it is not overridden.
unset CC KERNEL_CC LD KERNEL_LD
cd "$here"
say "make module KDIR=$kdir"
make -j"$jobs" KDIR="$kdir" "$@" module
say "built $(modinfo -F vermagic ./ip_vs_mh_rs.ko 2>/dev/null | cut -d' ' -f1 || true) ip_vs_mh_rs.ko in $(($(date +%s) - start)) s"
