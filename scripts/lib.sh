# SPDX-License-Identifier: GPL-2.0
# Shared settings for the build-and-boot harness. Sourced, not run.
#
# Everything heavy (toolchain chroot, kernel source, kernel builds) lives under
# $MH_CACHE, outside the repository, in directories whose names carry a hash of
# what produced them. Delete $MH_CACHE (or one entry in it) to start over.

set -euo pipefail

MH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MH_CACHE=${MH_CACHE:-/var/cache/ip-vs-mh-rs}
# The Debian suite of the toolchain environment: trixie, unless a kernel of
# kernel/kernels names another (sid's kernel is built with sid's rustc).
MH_SUITE=${MH_SUITE:-trixie}
# The kernel we target first: Debian's linux-source-7.3 from trixie-backports.
MH_KSRC_PKG=linux-source-7.3
MH_KVER_DEBIAN=7.3.4+deb13-amd64
# trixie's rustc, the one Debian's 7.2 and 7.3 kernels from trixie-backports
# were built with (other suites: whatever they ship, which dkms-build.sh
# checks against the kernel's).
MH_RUSTC_WANT=
[ "$MH_SUITE" != trixie ] || MH_RUSTC_WANT="1.85.1"
# Where downloaded packages are kept: one directory per suite, as the same
# package (linux-source-7.2) has other versions in other suites.
MH_DL=$MH_CACHE/dl
[ "$MH_SUITE" = trixie ] || MH_DL=$MH_CACHE/dl-$MH_SUITE

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# The Debian mirror this host already uses, so no host name is written into
# the project. Override with MH_DEBIAN_MIRROR.
mh_debian_mirror() {
	if [ -n "${MH_DEBIAN_MIRROR:-}" ]; then
		echo "$MH_DEBIAN_MIRROR"
		return
	fi
	local uri
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /security/ { print u; exit }')
	if [ -z "$uri" ]; then
		uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			grep -v security | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
	fi
	[ -n "$uri" ] || die "cannot find a Debian mirror in the host's apt sources; set MH_DEBIAN_MIRROR"
	echo "${uri%/}"
}

# mh_host_need COMMAND PACKAGE: the host's COMMAND, installed from Debian's
# PACKAGE when it is missing (as root, with apt), so that both README
# commands set up what they need on a fresh machine.
mh_host_need() {
	command -v "$1" >/dev/null && return 0
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
		die "$1 is missing on the host: apt-get install $2"
	log "installing $2 on the host (for $1)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 ||
		die "cannot install $2 (for $1)"
	command -v "$1" >/dev/null || die "$2 is installed but $1 is still missing"
}

# A short, stable hash of some strings and files: the key of a cache entry.
mh_hash() {
	local item
	for item in "$@"; do
		if [ -f "$item" ]; then
			printf 'file %s\n' "$(basename "$item")"
			cat "$item"
		else
			printf 'str %s\n' "$item"
		fi
	done | sha256sum | cut -c1-16
}

# Cache keys hash what determines an artefact: inputs (package lists,
# config fragments, source and toolchain versions) and a recipe number that
# is bumped whenever a script changes how the artefact is made. (Hashing the
# scripts themselves would rebuild a kernel for every comment.)
MH_RECIPE_TOOLCHAIN=1
MH_RECIPE_KERNEL=1
MH_RECIPE_DEBIAN=2

# The toolchain environment's packages for $MH_SUITE, comma-separated: the
# lines of scripts/toolchain.packages for every suite and those that name
# this one.
mh_toolchain_pkgs() {
	awk -v suite="$MH_SUITE" '!/^[[:space:]]*(#|$)/ {
		if (NF == 1) { print $1; next }
		for (i = 2; i <= NF; i++) if ($i == suite) print $1
	}' "$MH_REPO/scripts/toolchain.packages" | paste -sd, -
}

mh_toolchain_root() {
	local key
	key=$(mh_hash "$MH_SUITE" "$(mh_toolchain_pkgs)" "recipe $MH_RECIPE_TOOLCHAIN")
	echo "$MH_CACHE/toolchain-$MH_SUITE-$key/root"
}

# Serialise work on one cache entry between concurrent runs (several test
# runs may need the same kernel at once): mh_lock NAME takes an exclusive
# lock held until the calling script exits.
mh_lock() {
	mkdir -p "$MH_CACHE/locks"
	exec {mh_lock_fd}>"$MH_CACHE/locks/$1"
	if ! flock -n "$mh_lock_fd"; then
		log "waiting for another run to finish with $1"
		flock "$mh_lock_fd"
	fi
}

# mh_ready_root ROOT LOCK: for scripts that make a Debian system with
# mmdebstrap into ROOT. If ROOT is complete (ROOT/.mh-ready), prints it and
# ends the script. Otherwise takes LOCK, looks again (another run may have
# finished it meanwhile), and returns, holding the lock, for the caller to
# make it; mmdebstrap is installed on the host if it is missing.
mh_ready_root() {
	local root=$1 lock=$2
	if [ -f "$root/.mh-ready" ]; then
		echo "$root"
		exit 0
	fi
	mh_lock "$lock"
	if [ -f "$root/.mh-ready" ]; then
		echo "$root"
		exit 0
	fi
	mh_host_need mmdebstrap mmdebstrap
}
