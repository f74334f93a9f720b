#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build a small kernel from the pristine source and a config fragment in
# kernel/NAME.config, once, and print the build directory (an O= tree that
# also holds the installed modules under mods/).
#
#   scripts/kernel-build.sh [test|debug|noproc]
#
# A fragment can ask for clang ("# mh-build: LLVM=1"), start from another
# fragment ("# mh-build: include NAME"; the included lines come first, and
# a later line for the same option wins), and ask for a tree that only
# builds modules ("# mh-build: prepare-only": `make modules_prepare`, no
# kernel image, nothing to boot).
#
# The cache key covers the source package version, the fragment, the recipe
# number (lib.sh) and the exact compiler/rustc/bindgen versions.
source "$(dirname "$0")/lib.sh"

name=${1:-test}
frag="$MH_REPO/kernel/$name.config"
[ -f "$frag" ] || die "no config fragment $frag"
includes=$(sed -n 's/^# mh-build: include \([a-z0-9-]*\)$/\1/p' "$frag")
src=$("$MH_REPO/scripts/kernel-source.sh")
root=$(mh_toolchain_root)
# LLVM=1 fragments ask for clang (KASAN together with Rust needs it).
llvm=
grep -q '^# mh-build: LLVM=1' "$frag" && llvm=LLVM=1
prepare_only=
grep -q '^# mh-build: prepare-only' "$frag" && prepare_only=1
if [ -n "$includes" ]; then
	# The whole fragment keeps the fragment's file name: the key hashes it.
	mkdir -p "$MH_CACHE/build"
	tmp=$(mktemp -d "$MH_CACHE/build/.fragment.XXXXXX")
	whole="$tmp/$name.config"
	for inc in $includes; do
		[ -f "$MH_REPO/kernel/$inc.config" ] || die "$frag includes a missing kernel/$inc.config"
		cat "$MH_REPO/kernel/$inc.config"
	done >"$whole"
	cat "$frag" >>"$whole"
	frag=$whole
	trap 'rm -rf "$tmp"' EXIT
fi
versions=$(grep -E '^(rustc|rust-src|bindgen|gcc-14|clang-19|lld-19) ' "$root/.mh-versions")
key=$(mh_hash "$src" "$frag" "recipe $MH_RECIPE_KERNEL" "$versions" "$llvm")
out="$MH_CACHE/build/$name-$key"

# The fragment's last line for each option (an included fragment's line
# can be overridden by a later one).
last_lines() {
	awk '/^CONFIG_[A-Za-z0-9_]+=/ { o = $0; sub(/=.*/, "", o) }
		/^# CONFIG_[A-Za-z0-9_]+ is not set$/ { o = $2 }
		o != "" { if (!(o in line)) order[n++] = o; line[o] = $0; o = "" }
		END { for (i = 0; i < n; i++) print line[order[i]] }' "$frag"
}
check_config() {
	local opt missing=0
	while IFS= read -r opt; do
		# "Not set" holds too where the option is not even offered.
		if [[ "$opt" == "# CONFIG_"*" is not set" ]]; then
			local sym=${opt#"# "}
			grep -q "^${sym%" is not set"}=" "$out/.config" || continue
		elif grep -qxF "$opt" "$out/.config"; then
			continue
		fi
		printf '  fragment line lost in .config: %s\n' "$opt" >&2
		missing=1
	done < <(last_lines)
	[ "$missing" = 0 ] || die "the resolved .config dropped options of $frag (unmet dependencies?)"
}

mh_lock kernel-$name
if [ -f "$out/.mh-ready" ]; then
	check_config
	echo "$out"
	exit 0
fi

# A cold build, or one interrupted earlier, goes on in place. (A new key
# starts from scratch: a copy of an earlier tree would not save work, its
# tools and Rust objects record their absolute paths, so kbuild rebuilds
# objtool and with it every object.)
mkdir -p "$out"
jobs=$(($(nproc) + 1))
if [ -n "$prepare_only" ]; then
	log "preparing the '$name' kernel tree for module builds in $out (once: about 3 minutes on 2 cores)"
else
	log "building the '$name' kernel in $out (once: about 15 minutes for the test kernel, 20 for the debug one, on 2 cores; later runs reuse it)"
fi
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm \
	KCONFIG_ALLCONFIG="$frag" allnoconfig >&2
check_config
start=$(date +%s)
if [ -n "$prepare_only" ]; then
	"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm -j"$jobs" modules_prepare >&2 ||
		die "modules_prepare failed (see above)"
	log "kernel tree prepared in $(($(date +%s) - start)) s"
else
	"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm -j"$jobs" >&2 ||
		die "kernel build failed (see above)"
	rm -rf "$out/mods"
	"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out" $llvm \
		INSTALL_MOD_PATH="$out/mods" modules_install >&2 ||
		die "modules_install failed"
	log "kernel built in $(($(date +%s) - start)) s"
fi
touch "$out/.mh-ready"
echo "$out"
