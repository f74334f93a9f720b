#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Debian's stock kernel (trixie-backports) made usable for this project, once:
#
#   image/  the kernel and modules from linux-binary-unsigned/linux-modules,
#           vmlinuz a link to the kernel image
#   build/  a kernel build tree regenerated from the same linux-source with
#           Debian's own .config and Module.symvers: Debian's headers package
#           ships no rust/ artifacts (libkernel.rmeta, the macros .so) and no
#           scripts/target.json, which a Rust module needs.
#
# The regenerated tree is accepted only if every Rust symbol name it would
# export equals, name for name, the Rust symbols in Debian's Module.symvers
# (Rust symbol names encode the exact rustc and crate hashes).
# Prints the directory holding image/ and build/.
source "$(dirname "$0")/lib.sh"

kver=$MH_KVER_DEBIAN
pkgs=("linux-binary-unsigned-$kver" "linux-modules-$kver" "linux-headers-$kver")
src=$("$MH_REPO/scripts/kernel-source.sh")
root=$(mh_toolchain_root)
versions=$(grep -E '^(rustc|rust-src|bindgen|gcc-14) ' "$root/.mh-versions")
key=$(mh_hash "$src" "$kver" "recipe $MH_RECIPE_DEBIAN" "$versions")
out="$MH_CACHE/debian-$kver-$key"
mh_lock debian-kernel
if [ -f "$out/.mh-ready" ]; then
	echo "$out"
	exit 0
fi

debs=()
for p in "${pkgs[@]}"; do debs+=("$("$MH_REPO/scripts/kernel-source.sh" --fetch "$p")"); done
rm -rf "$out"
mkdir -p "$out/image" "$out/headers" "$out/build"
dpkg-deb -x "${debs[0]}" "$out/image"
dpkg-deb -x "${debs[1]}" "$out/image"
dpkg-deb -x "${debs[2]}" "$out/headers"
# Usr-merged packages put modules under usr/lib; the runner looks in lib/.
if [ -d "$out/image/usr/lib/modules" ] && [ ! -e "$out/image/lib/modules" ]; then
	mkdir -p "$out/image/lib"
	ln -s ../usr/lib/modules "$out/image/lib/modules"
fi
kimg=$(ls "$out/image/usr/lib/modules/$kver/vmlinuz"* "$out/image/boot/vmlinuz-$kver" 2>/dev/null | head -n 1 || true)
[ -n "$kimg" ] || die "no kernel image for $kver in ${debs[0]}"
ln -s "${kimg#"$out"/}" "$out/vmlinuz"
hdr="$out/headers/usr/src/linux-headers-$kver"
[ -f "$hdr/.config" ] && [ -f "$hdr/Module.symvers" ] ||
	die "linux-headers-$kver has no .config or Module.symvers"

# Debian builds with the triplet-named gcc-14; use the same, so that the
# configuration resolves exactly as Debian's did.
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$hdr/.config")
log "regenerating rust/ and target.json for $kver with $cc (about 2 minutes)"
cp "$hdr/.config" "$out/build/.config"
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out/build" CC="$cc" olddefconfig >&2
if ! cmp -s <(grep '^CONFIG_' "$hdr/.config" | sort) <(grep '^CONFIG_' "$out/build/.config" | sort); then
	diff <(grep '^CONFIG_' "$hdr/.config" | sort) <(grep '^CONFIG_' "$out/build/.config" | sort) | head -n 20 >&2
	die "olddefconfig changed Debian's configuration: the toolchain differs from Debian's"
fi
# Debian's release is the source's version plus a local version
# ("+deb13-amd64"); modules carry it in their vermagic.
kversion=$("$MH_REPO/scripts/in-toolchain" make -s -C "$src" kernelversion)
"$MH_REPO/scripts/in-toolchain" make -s -C "$src" O="$out/build" CC="$cc" LOCALVERSION="${kver#"$kversion"}" \
	-j"$(($(nproc) + 1))" modules_prepare >&2 ||
	die "modules_prepare failed"
release=$(cat "$out/build/include/config/kernel.release")
[ "$release" = "$kver" ] || die "the regenerated tree's release is '$release', not '$kver'"
cp "$hdr/Module.symvers" "$out/build/Module.symvers"

# The check: Rust symbols Debian's kernel exports versus the ones this tree
# says the kernel exports.
grep -ohE '\b_R[A-Za-z0-9_]+' "$out"/build/rust/exports_*_generated.h | sort -u >"$out/rust-symbols.regenerated"
awk '$2 ~ /^_R/ { print $2 }' "$hdr/Module.symvers" | sort -u >"$out/rust-symbols.debian"
n_deb=$(wc -l <"$out/rust-symbols.debian")
n_gen=$(wc -l <"$out/rust-symbols.regenerated")
if [ "$n_deb" = 0 ] || ! cmp -s "$out/rust-symbols.debian" "$out/rust-symbols.regenerated"; then
	diff "$out/rust-symbols.debian" "$out/rust-symbols.regenerated" | head -n 10 >&2
	die "regenerated Rust symbols ($n_gen) differ from Debian's Module.symvers ($n_deb)"
fi
log "Rust symbols match Debian's Module.symvers: $n_deb of $n_deb"
touch "$out/.mh-ready"
echo "$out"
