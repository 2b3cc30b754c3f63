# shellcheck shell=bash
# The QEMU that runs level 1 (sourced, bash): the system's (Debian 12: 7.2), or QEMU from
# bookworm-backports (10.0), unpacked privately under build/level1-qemu/VERSION/ (no change to
# /etc/apt, dpkg's state or the system QEMU, which other level 1s on the host may be running).
# 10.0 was fetched for OVMF, which aborts level 1 under 7.2 and 10.0 alike (a TCG bug; the README,
# "Without /dev/kvm", has both and the measurements that keep 7.2 the default).
#
#   level1_qemu_select      sets L1_QEMU to the qemu-system-x86_64 that runs level 1 (fetching it
#                           once), L1_QEMU_ARGS (an array: its -L data directories) and L1_QEMU_NOTE (one
#                           line saying which QEMU and why, for the test output)
#   level1_qemu_fetch       fetches and unpacks it; prints the binary's path
#
# GT_L1_QEMU=backports runs level 1 on it, GT_L1_QEMU=system on the host's qemu-system-x86_64 (also
# the fallback when the fetch fails, e.g. offline: said in L1_QEMU_NOTE), GT_L1_QEMU=PATH on that
# binary; unset: L1_QEMU_DEFAULT.
# GT_L1_QEMU_VERSION pins the backports version (default: bookworm-backports' current one).
# Needs apt-get and dpkg-deb (on every Debian) and deb.debian.org.

L1_QEMU_DIR=${L1_QEMU_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/level1-qemu}
L1_QEMU_SUITE=${L1_QEMU_SUITE:-bookworm-backports}
# What level 1 runs on unless GT_L1_QEMU says otherwise (the README, "Level 1's QEMU", says why).
L1_QEMU_DEFAULT=system

# apt-get with a private configuration and state under $L1_QEMU_DIR/apt.
_l1q_apt() {
	local a=$L1_QEMU_DIR/apt
	apt-get -q -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State="$a/state" -o Dir::Cache="$a/cache" -o Dir::State::status=/var/lib/dpkg/status \
		-o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" "$@"
}

_l1q_apt_cache() {
	local a=$L1_QEMU_DIR/apt
	apt-cache -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State="$a/state" -o Dir::Cache="$a/cache" -o Dir::State::status=/var/lib/dpkg/status "$@"
}

# The version $1 of package $2 in $L1_QEMU_SUITE, from the private index.
_l1q_suite_version() {
	_l1q_apt_cache policy "$1" |
		awk -v s="$L1_QEMU_SUITE/" '/^     [^ ]/ || /^ \*\*\* / { v = $1 == "***" ? $2 : $1 } index($0, s) { print v; exit }'
}

level1_qemu_fetch() {
	local a=$L1_QEMU_DIR/apt version seabios dir tmp d
	mkdir -p "$a/state/lists/partial" "$a/cache/archives/partial" || return 1
	# The suite's packages resolve against bookworm's; every library QEMU needs is in bookworm.
	cat >"$a/sources.list" <<-EOF
		deb http://deb.debian.org/debian $L1_QEMU_SUITE main
		deb http://deb.debian.org/debian bookworm main
	EOF
	_l1q_apt update >"$a/update.log" 2>&1 || {
		echo "level1_qemu: apt-get update of $L1_QEMU_SUITE failed (see $a/update.log)" >&2
		return 1
	}
	version=${GT_L1_QEMU_VERSION:-$(_l1q_suite_version qemu-system-x86)}
	seabios=$(_l1q_suite_version seabios)
	[ -n "$version" ] || {
		echo "level1_qemu: no qemu-system-x86 in $L1_QEMU_SUITE" >&2
		return 1
	}
	dir=$L1_QEMU_DIR/${version//[:~]/_}
	if [ ! -x "$dir/usr/bin/qemu-system-x86_64" ]; then
		tmp=$(mktemp -d "$L1_QEMU_DIR/fetch.XXXXXX") || return 1
		# The .debs are checked against the signed index by apt; seabios: the one QEMU asks for.
		if ! (cd "$tmp" && _l1q_apt download "qemu-system-x86=$version" "qemu-system-common=$version" \
			"qemu-system-data=$version" ${seabios:+"seabios=$seabios"}) >"$a/download.log" 2>&1; then
			echo "level1_qemu: downloading qemu-system-x86 $version failed (see $a/download.log)" >&2
			rm -rf "$tmp"
			return 1
		fi
		mkdir -p "$tmp/root"
		for d in "$tmp"/*.deb; do
			dpkg-deb -x "$d" "$tmp/root" || {
				echo "level1_qemu: unpacking $d failed" >&2
				rm -rf "$tmp"
				return 1
			}
		done
		rm -rf "$dir"
		mv "$tmp/root" "$dir" && rm -rf "$tmp" || return 1
	fi
	"$dir/usr/bin/qemu-system-x86_64" --version >/dev/null 2>&1 || {
		echo "level1_qemu: $dir/usr/bin/qemu-system-x86_64 does not run (a library missing?)" >&2
		return 1
	}
	ln -sfn "$(basename "$dir")" "$L1_QEMU_DIR/current"
	echo "$dir/usr/bin/qemu-system-x86_64"
}

# The fetched QEMU's tree, if there is one that runs.
_l1q_cached() {
	local q=$L1_QEMU_DIR/current/usr/bin/qemu-system-x86_64
	[ -x "$q" ] && "$q" --version >/dev/null 2>&1 && echo "$q"
}

level1_qemu_select() {
	local q="" why="" root
	L1_QEMU_ARGS=()
	case ${GT_L1_QEMU:-$L1_QEMU_DEFAULT} in
	system) why=${GT_L1_QEMU:+GT_L1_QEMU=system}; why=${why:-the default; GT_L1_QEMU=backports for QEMU from $L1_QEMU_SUITE} ;;
	backports)
		q=$(_l1q_cached)
		if [ -z "$q" ]; then
			mkdir -p "$L1_QEMU_DIR"
			# run-e2e.sh starts several level 1s at once: one fetch, the others wait for it.
			q=$(L1_QEMU_DIR=$L1_QEMU_DIR L1_QEMU_SUITE=$L1_QEMU_SUITE flock "$L1_QEMU_DIR/.lock" bash -c '. "$1"; _l1q_cached || level1_qemu_fetch' _ "${BASH_SOURCE[0]}")
			[ -n "$q" ] || why="fetching QEMU from $L1_QEMU_SUITE failed"
		fi
		;;
	*) q=$GT_L1_QEMU ;;
	esac
	if [ -z "$q" ]; then
		L1_QEMU=$(command -v qemu-system-x86_64)
		L1_QEMU_NOTE="level 1 on the system QEMU ($why): $("$L1_QEMU" --version 2>/dev/null | head -1)"
		return 0
	fi
	L1_QEMU=$q
	# A QEMU unpacked outside /usr finds its own firmware and modules only when told where.
	root=$(cd "$(dirname "$q")/../.." && pwd)
	if [ "$root" != / ] && [ -d "$root/usr/share/qemu" ]; then
		L1_QEMU_ARGS=(-L "$root/usr/share/qemu" -L "$root/usr/share/seabios")
		export QEMU_MODULE_DIR=$root/usr/lib/x86_64-linux-gnu/qemu
	fi
	L1_QEMU_NOTE="level 1 on $q: $("$q" --version 2>/dev/null | head -1)"
}
