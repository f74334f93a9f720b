#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Unpack virtme-ng (a pure-Python wheel from PyPI, with its prebuilt guest
# init) once into $MH_CACHE and print the directory of its launchers, for
# the toolchain's PATH.
source "$(dirname "$0")/lib.sh"

ver=1.42
dir="$MH_CACHE/virtme-ng-$ver"
if [ ! -x "$dir/bin/vng" ]; then
	wheel=$(ls "$MH_CACHE/dl/virtme_ng-$ver-"*.whl 2>/dev/null | head -n 1 || true)
	if [ -z "$wheel" ]; then
		mkdir -p "$MH_CACHE/dl"
		mh_host_need pip3 python3-pip
		pip3 download -q --no-deps -d "$MH_CACHE/dl" "virtme-ng==$ver" >&2 ||
			die "cannot download virtme-ng $ver"
		wheel=$(ls "$MH_CACHE/dl/virtme_ng-$ver-"*.whl | head -n 1)
	fi
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	(cd "$dir.tmp" && python3 -m zipfile -e "$wheel" .)
	chmod +x "$dir.tmp"/virtme/guest/bin/* "$dir.tmp"/virtme/guest/virtme-* 2>/dev/null || true
	# Launchers for the wheel's console scripts (vng runs virtme-run by name).
	mkdir -p "$dir.tmp/bin"
	for entry in vng:virtme_ng.run virtme-run:virtme.commands.run \
		virtme-configkernel:virtme.commands.configkernel \
		virtme-mkinitramfs:virtme.commands.mkinitramfs; do
		cat >"$dir.tmp/bin/${entry%%:*}" <<PY
#!/usr/bin/python3
import os, sys
sys.path.insert(0, "$dir")
from ${entry#*:} import main
sys.exit(main())
PY
		chmod +x "$dir.tmp/bin/${entry%%:*}"
	done
	if [ -d "$dir.tmp/virtme_ng-$ver.data/scripts" ]; then
		cp "$dir.tmp/virtme_ng-$ver.data/scripts/"* "$dir.tmp/bin/"
		chmod +x "$dir.tmp/bin/"*
	fi
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
fi
echo "$dir/bin"
