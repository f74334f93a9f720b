#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build a small kernel from the pristine source and a config fragment in
# kernel/NAME.config, once, and print the build directory (an O= tree that
# also holds the installed modules under mods/).
#
#   scripts/kernel-build.sh [test]
#
# The cache key covers the source package version, the fragment, the recipe
# number (lib.sh) and the exact compiler/rustc/bindgen versions.
source "$(dirname "$0")/lib.sh"

name=${1:-test}
frag="$MH_REPO/kernel/$name.config"
[ -f "$frag" ] || die "no config fragment $frag"
src=$("$MH_REPO/scripts/kernel-source.sh")
root=$(mh_toolchain_root)
# LLVM=1 fragments ask for clang (KASAN together with Rust needs it).
llvm=
grep -q '^# mh-build: LLVM=1' "$frag" && llvm=LLVM=1
versions=$(grep -E '^(rustc|rust-src|bindgen|gcc-14|clang-19|lld-19) ' "$root/.mh-versions")
key=$(mh_hash "$src" "$frag" "recipe $MH_RECIPE_KERNEL" "$versions" "$llvm")
out="$MH_CACHE/build/$name-$key"

check_config() {
	local line opt missing=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) opt=$line ;;
		"# CONFIG_"*" is not set") opt=$line ;;
		*) continue ;;
		esac
		if ! grep -qxF "$opt" "$out/.config"; then
			printf '  fragment line lost in .config: %s\n' "$opt" >&2
			missing=1
		fi
	done <"$frag"
	[ "$missing" = 0 ] || die "the resolved .config dropped options of $frag (unmet dependencies?)"
}

mh_lock kernel-$name
if [ -f "$out/.mh-ready" ]; then
	check_config
	echo "$out"
	exit 0
fi

# Start from the newest earlier build of this kernel, if any, or go on with
# an interrupted one: kbuild rebuilds exactly what the new configuration or
# toolchain changes (a cold machine builds from scratch).
if [ ! -d "$out" ]; then
	prev=$(ls -td "$MH_CACHE/build/$name-"*/.mh-ready 2>/dev/null | head -n 1 || true)
	if [ -n "$prev" ]; then
		log "seeding from $(dirname "$prev")"
		rm -rf "$out.tmp"
		cp -a "$(dirname "$prev")" "$out.tmp"
		rm -f "$out.tmp/.mh-ready"
		mv "$out.tmp" "$out"
	fi
fi
mkdir -p "$out"
log "building the '$name' kernel in $out (first time: about 15 minutes on 2 cores, once; later runs reuse it)"
jobs=$(($(nproc) + 1))
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm \
	KCONFIG_ALLCONFIG="$frag" allnoconfig >&2
check_config
start=$(date +%s)
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm -j"$jobs" >&2 ||
	die "kernel build failed (see above)"
rm -rf "$out/mods"
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm \
	INSTALL_MOD_PATH="$out/mods" modules_install >&2 ||
	die "modules_install failed"
log "kernel built in $(($(date +%s) - start)) s"
touch "$out/.mh-ready"
echo "$out"
