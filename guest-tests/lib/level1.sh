# shellcheck shell=bash
# Level 1: a KVM-capable Linux inside QEMU TCG, for hosts without a usable /dev/kvm (sourced, bash).
#
#   gt_host_kvm_usable      0 if this host's /dev/kvm really runs a guest (cached per process)
#   level1_run [-t SECONDS] [-i] CMD [ARG...]
#       boots level 1 once and runs CMD inside it, in the current directory of the host's root (shared
#       read-only over virtio-9p, with tmpfs over /tmp /run /var/tmp; the current directory is
#       shared on its own too, so a checkout under /tmp is seen).  CMD's output (stdout and
#       stderr, on level 1's second serial port) and exit code are propagated.  $GT_SHARE inside is a
#       directory shared writable with the host; files written there are in $GT_SHARE on the host
#       after the call, until level1_cleanup.  -i keeps stdin interactive (the demo).  A run that
#       does not finish within SECONDS (default $GT_L1_TIMEOUT or 1800) is killed: exit code 124.
#       Level 1's own console is kept in $GT_SHARE/console.log.
#
# Needs qemu-system-x86, linux-image-amd64, busybox-static, cpio, kmod.

GT_LIB=${GT_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
. "$GT_LIB/initramfs.sh"

# A /dev/kvm that opens is not enough: some hosts (nested clouds) offer one that never runs a
# 64-bit guest.  Boot the stock kernel under QEMU -accel kvm to a marker; real KVM does it in ~2 s.
gt_host_kvm_usable() {
	case ${GT_MODE:-} in
	host) return 0 ;;
	nested) return 1 ;;
	esac
	if [ -n "${_GT_KVM_USABLE:-}" ]; then
		return "$_GT_KVM_USABLE"
	fi
	_GT_KVM_USABLE=1
	if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		local d
		d=$(mktemp -d) || return 1
		printf 'echo GT-KVM-PROBE-OK\npoweroff -f\n' >"$d/init"
		if initramfs_build "$d/probe.cpio" "$d/init" &&
			timeout -k 5 "${GT_KVM_PROBE_TIMEOUT:-30}" qemu-system-x86_64 -accel kvm -M q35 -m 256 \
				-nodefaults -display none -no-reboot -serial "file:$d/out" \
				-kernel "$(gt_kernel)" -initrd "$d/probe.cpio" \
				-append "console=ttyS0 quiet panic=-1" >/dev/null 2>&1 &&
			grep -q GT-KVM-PROBE-OK "$d/out"; then
			_GT_KVM_USABLE=0
		fi
		rm -rf "$d"
	fi
	return "$_GT_KVM_USABLE"
}

# Level 1's initramfs: the modules for /dev/kvm (kvm-amd: QEMU TCG emulates SVM) and for 9p.
level1_initramfs() { # $1 output file
	initramfs_build "$1" "$GT_LIB/level1-init.sh" -m "kvm_amd virtio_pci 9pnet_virtio 9p"
}

level1_run() {
	local timeout=${GT_L1_TIMEOUT:-1800} interactive=0
	while [ $# -gt 0 ]; do
		case $1 in
		-t) timeout=$2; shift 2 ;;
		-i) interactive=1; shift ;;
		*) break ;;
		esac
	done
	[ $# -gt 0 ] || { echo "level1_run: no command" >&2; return 2; }
	command -v qemu-system-x86_64 >/dev/null || { echo "level1: qemu-system-x86_64 not installed" >&2; return 125; }
	GT_SHARE=$(mktemp -d /tmp/gt-level1.XXXXXX) || return 125
	export GT_SHARE
	chmod 777 "$GT_SHARE"
	level1_initramfs "$GT_SHARE/level1.cpio" || return 125
	# What the command sees: the GT_/MINIVMM_/BENCH_ settings of the caller, and that it is in level 1.
	{
		echo "export PATH='$PATH' GT_LEVEL=1 GT_SHARE='$GT_SHARE' HOME=/root TERM='${TERM:-dumb}'"
		env | grep -E '^(GT|MINIVMM|BENCH)_[A-Za-z0-9_]*=' | grep -v -E '^GT_(SHARE|LEVEL)=' |
			while IFS= read -r kv; do printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"; done
	} >"$GT_SHARE/env"
	printf '%q ' exec "$@" >"$GT_SHARE/cmd"
	echo >>"$GT_SHARE/cmd"
	[ "$interactive" = 1 ] && : >"$GT_SHARE/interactive"
	local kernel stdin_redirect=/dev/null rc
	kernel=$(gt_kernel)
	[ "$interactive" = 1 ] && stdin_redirect=/dev/stdin
	timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "${GT_L1_MEMORY:-4096}" \
		-nodefaults -display none -no-reboot \
		-kernel "$kernel" -initrd "$GT_SHARE/level1.cpio" \
		-append "console=ttyS0 quiet panic=-1 gt.share=$GT_SHARE gt.cwd=$PWD" \
		-serial "file:$GT_SHARE/console.log" -serial stdio \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=results,path=$GT_SHARE,security_model=none" \
		-device virtio-9p-pci,fsdev=results,mount_tag=results \
		-fsdev "local,id=cwd,path=$PWD,security_model=none,readonly=on,multidevs=remap" \
		-device virtio-9p-pci,fsdev=cwd,mount_tag=cwd <"$stdin_redirect"
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "level1: killed after ${timeout} s (stuck); last lines of its console:" >&2
		tail -5 "$GT_SHARE/console.log" >&2
		return 124
	fi
	if [ ! -f "$GT_SHARE/rc" ]; then
		echo "level1: ended without running the command (qemu exit $rc); last lines of its console:" >&2
		tail -5 "$GT_SHARE/console.log" >&2
		return 125
	fi
	return "$(cat "$GT_SHARE/rc")"
}

level1_cleanup() {
	[ -n "${GT_SHARE:-}" ] && rm -rf "$GT_SHARE"
}
