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
#       Level 1's own console is kept in $GT_SHARE/console.log.  A watchdog stops level 1 when its
#       console reports a soft lockup, RCU stall, oops or panic, or its init's heartbeat stops for
#       GT_L1_STALL s (45): exit code 124 (froze) or 125 (crashed), the reason in $GT_L1_VERDICT.
#       $GT_L1_CPU_S: the CPU seconds level 1's QEMU used (sampled every second); of those,
#       $GT_L1_BOOT_CPU_S until its init was ready to run CMD (the first heartbeat) and
#       $GT_L1_DOWN_CPU_S after CMD ended (its exit code written, then sync and poweroff).
#       The machine: GT_L1_SMP (1), GT_L1_CPU (max), GT_L1_ACCEL (tcg), GT_L1_MEMORY (4096),
#       GT_L1_APPEND (more kernel arguments), GT_L1_KERNEL (pvh|bzimage: level1_kernel),
#       GT_L1_9P_CACHE (the 9p cache mode of the read-only shares: loose, or none);
#       the QEMU: lib/level1_qemu.sh (GT_L1_QEMU).
#   level1_kill             stops the level 1 that level1_run is running (from a signal trap)
#
# Needs qemu-system-x86, linux-image-amd64, busybox-static, cpio, kmod; xz-utils and binutils (readelf)
# for the PVH kernel (without them level 1 boots the bzImage).

GT_LIB=${GT_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
. "$GT_LIB/initramfs.sh"
. "$GT_LIB/level1_qemu.sh"

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

# The kernel level 1 boots.  GT_L1_KERNEL=pvh (the default): the stock kernel decompressed once on
# the host (into build/level1-kernel/) and started by QEMU at its PVH entry (an ELF note every Debian
# amd64 kernel has: CONFIG_PVH), so level 1 does not spend ~3 s of TCG decompressing it (docs/nested-harness.md,
# "Level 1's boot cost").  Falls back to the bzImage, with a message, when the kernel is not xz or
# has no PVH entry.  GT_L1_KERNEL=bzimage: the stock bzImage as it is.
L1_KERNEL_DIR=${L1_KERNEL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/level1-kernel}
level1_kernel() {
	local k out off tmp
	k=$(gt_kernel)
	[ "${GT_L1_KERNEL:-pvh}" = pvh ] || { echo "$k"; return 0; }
	out=$L1_KERNEL_DIR/vmlinux-$(gt_kernel_version "$k")
	if [ ! -s "$out" ] || [ "$out" -ot "$k" ]; then
		mkdir -p "$L1_KERNEL_DIR" || { echo "$k"; return 0; }
		tmp=$(mktemp "$out.XXXXXX") || { echo "$k"; return 0; }
		# The xz stream inside the bzImage starts at its magic bytes FD '7zXZ' 00.
		off=$(LC_ALL=C grep -abo -m 1 $'\xfd7zXZ\x00' "$k" | head -1 | cut -d: -f1)
		if [ -z "$off" ] || ! tail -c +$((off + 1)) "$k" | xz -dc --single-stream >"$tmp" 2>/dev/null ||
			! LC_ALL=C readelf -n "$tmp" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
			echo "level1: $k: no xz-compressed kernel with a PVH entry in it; booting the bzImage" >&2
			rm -f "$tmp"
			echo "$k"
			return 0
		fi
		chmod 644 "$tmp" && mv "$tmp" "$out"
	fi
	echo "$out"
}

# Level 1's initramfs: the modules for /dev/kvm (kvm-amd: QEMU TCG emulates SVM) and for 9p.
level1_initramfs() { # $1 output file
	initramfs_build "$1" "$GT_LIB/level1-init.sh" -m "kvm_amd virtio_pci 9pnet_virtio 9p"
}

# What in level 1's console means its kernel froze or crashed: the soft-lockup and RCU-stall
# detectors, oopses and panics.  Seen under nested load: soft lockups on both CPUs with an RCU stall,
# "Fatal exception in interrupt", panics in kvm_amd's shutdown_interception.
L1_BAD_CONSOLE='watchdog: BUG: soft lockup|rcu: INFO: rcu_[a-z]* (self-)?detected stall|rcu_[a-z]* detected stalls|Kernel panic|Oops|general protection|BUG: (unable to handle|kernel NULL)|Fatal exception'

# The level-1 machine: one CPU by default (docs/nested-harness.md has the measurements).
level1_qemu_args() {
	echo -accel "${GT_L1_ACCEL:-tcg}" -cpu "${GT_L1_CPU:-max}" -smp "${GT_L1_SMP:-1}" -m "${GT_L1_MEMORY:-4096}" ${GT_L1_QEMU_ARGS:-}
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
	GT_L1_VERDICT=""
	[ $# -gt 0 ] || { echo "level1_run: no command" >&2; return 2; }
	if [ -z "${L1_QEMU:-}" ]; then
		level1_qemu_select
		echo "# $L1_QEMU_NOTE" >&2
	fi
	[ -x "$L1_QEMU" ] || { echo "level1: qemu-system-x86_64 not installed" >&2; return 125; }
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
	local kernel stdin_redirect=/dev/null rc qpid
	kernel=$(level1_kernel)
	[ "$interactive" = 1 ] && stdin_redirect=/dev/stdin
	: >"$GT_SHARE/console.log"
	# shellcheck disable=SC2046
	# The outer timeout only reaps a QEMU whose watchdog below was itself killed.
	timeout -k 10 $((timeout + 60)) "$L1_QEMU" ${L1_QEMU_ARGS[@]+"${L1_QEMU_ARGS[@]}"} $(level1_qemu_args) \
		-nodefaults -display none -no-reboot \
		-kernel "$kernel" -initrd "$GT_SHARE/level1.cpio" \
		-append "console=ttyS0 quiet panic=-1 ${GT_L1_APPEND:-} gt.share=$GT_SHARE gt.cwd=$PWD gt.beat=${GT_L1_BEAT:-5} gt.cache=${GT_L1_9P_CACHE:-loose}" \
		-serial "file:$GT_SHARE/console.log" -serial stdio \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=results,path=$GT_SHARE,security_model=none" \
		-device virtio-9p-pci,fsdev=results,mount_tag=results \
		-fsdev "local,id=cwd,path=$PWD,security_model=none,readonly=on,multidevs=remap" \
		-device virtio-9p-pci,fsdev=cwd,mount_tag=cwd <"$stdin_redirect" &
	qpid=$!
	_L1_QPID=$qpid
	_level1_watch "$qpid" "$timeout"
	wait "$qpid"
	rc=$?
	_L1_QPID=""
	if [ -z "$GT_L1_VERDICT" ]; then
		GT_L1_VERDICT=$(_level1_console_verdict)
	fi
	if [ -n "$GT_L1_VERDICT" ]; then
		echo "$GT_L1_VERDICT" >"$GT_SHARE/verdict"
		echo "level1: $GT_L1_VERDICT; last lines of its console:" >&2
		tail -8 "$GT_SHARE/console.log" >&2
		case $GT_L1_VERDICT in
		froze* | "timed out"*) return 124 ;;
		*) [ -f "$GT_SHARE/rc" ] || return 125 ;;
		esac
	fi
	if [ ! -f "$GT_SHARE/rc" ]; then
		GT_L1_VERDICT="ended without running the command (qemu exit $rc)"
		echo "$GT_L1_VERDICT" >"$GT_SHARE/verdict"
		echo "level1: $GT_L1_VERDICT; last lines of its console:" >&2
		tail -5 "$GT_SHARE/console.log" >&2
		return 125
	fi
	return "$(cat "$GT_SHARE/rc")"
}

# "crashed: LINE" or "froze: LINE" for the first line of level 1's console that says so, else nothing.
_level1_console_verdict() {
	local line
	line=$(grep -a -m 1 -E "$L1_BAD_CONSOLE" "$GT_SHARE/console.log" 2>/dev/null |
		tr -d '\r' | sed 's/^\[ *[0-9.]*\] //')
	[ -n "$line" ] || return 0
	case $line in
	*"soft lockup"* | *stall*) echo "froze: $line" ;;
	*) echo "crashed: $line" ;;
	esac
}

# Watches the running level 1 (QEMU pid $1) until it ends; kills it, with the reason in
# GT_L1_VERDICT, when its console reports a lockup, stall, oops or panic, when its init's heartbeat
# (a counter in $GT_SHARE/heartbeat, bumped every gt.beat seconds) stops moving for GT_L1_STALL
# seconds (twice that for the first one, which waits for the boot), or after $2 seconds in all.
# The stall bound only stops a hang: a loaded host slows level 1 down, it does not stop its clock.
_level1_watch() {
	local qpid=$1 timeout=$2 stall=${GT_L1_STALL:-45} start=$SECONDS beat last="" beat_at=$SECONDS
	local limit
	GT_L1_CPU_S="" GT_L1_BOOT_CPU_S="" GT_L1_DOWN_CPU_S="" _L1_TICKS="" _L1_BOOT_TICKS="" _L1_END_TICKS=""
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 1
		GT_L1_VERDICT=$(_level1_console_verdict)
		[ -z "$GT_L1_VERDICT" ] || break
		_level1_cpu "$qpid"
		[ -n "$_L1_END_TICKS" ] || [ ! -f "$GT_SHARE/rc" ] || _L1_END_TICKS=$_L1_TICKS
		beat=$(cat "$GT_SHARE/heartbeat" 2>/dev/null)
		if [ "$beat" != "$last" ]; then
			[ -n "$last" ] || _L1_BOOT_TICKS=$_L1_TICKS
			last=$beat
			beat_at=$SECONDS
		fi
		limit=$stall
		[ -n "$last" ] || limit=$((stall * 2))
		if [ $((SECONDS - beat_at)) -gt "$limit" ]; then
			GT_L1_VERDICT="froze: no heartbeat from level 1's init for $((SECONDS - beat_at)) s"
			break
		fi
		if [ $((SECONDS - start)) -gt "$timeout" ]; then
			GT_L1_VERDICT="timed out after $timeout s"
			break
		fi
	done
	_level1_phases
	[ -n "$GT_L1_VERDICT" ] || return 0
	# A panic ends QEMU by itself (panic=-1, -no-reboot); give an oops a moment to print its trace.
	for _ in 1 2 3 4 5; do
		kill -0 "$qpid" 2>/dev/null || return 0
		case $GT_L1_VERDICT in crashed*) sleep 1 ;; *) break ;; esac
	done
	# $qpid is timeout(1), which passes TERM on to QEMU; a QEMU that ignores it is killed directly.
	kill -TERM "$qpid" 2>/dev/null
	for _ in 1 2 3 4 5; do
		kill -0 "$qpid" 2>/dev/null || return 0
		sleep 1
	done
	pkill -KILL -P "$qpid" 2>/dev/null
	kill -KILL "$qpid" 2>/dev/null
}

# GT_L1_CPU_S: CPU seconds (user + system) used so far by the QEMU under timeout(1) pid $1, the
# measure of level 1's cost that does not depend on how busy the host is.
_level1_cpu() {
	local q t
	q=$(pgrep -P "$1" | head -1)
	[ -n "$q" ] || return 0
	# Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name.
	t=$(sed 's/.*) //' "/proc/$q/stat" 2>/dev/null | awk '{ print $12 + $13 }')
	[ -n "$t" ] || return 0
	_L1_TICKS=$t
	GT_L1_CPU_S=$((t / $(getconf CLK_TCK)))
}

# GT_L1_BOOT_CPU_S and GT_L1_DOWN_CPU_S (one decimal) from the samples _level1_watch took.
_level1_phases() {
	local hz
	hz=$(getconf CLK_TCK)
	[ -z "$_L1_BOOT_TICKS" ] || GT_L1_BOOT_CPU_S=$(awk -v t="$_L1_BOOT_TICKS" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }')
	[ -z "$_L1_END_TICKS" ] || GT_L1_DOWN_CPU_S=$(awk -v a="$_L1_END_TICKS" -v b="$_L1_TICKS" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz }')
}

# Stops a level 1 still running (for a caller's signal trap).
level1_kill() {
	[ -n "${_L1_QPID:-}" ] || return 0
	kill -TERM "$_L1_QPID" 2>/dev/null
	sleep 2
	pkill -KILL -P "$_L1_QPID" 2>/dev/null
	kill -KILL "$_L1_QPID" 2>/dev/null
	_L1_QPID=""
}

level1_cleanup() {
	[ -n "${GT_SHARE:-}" ] && rm -rf "$GT_SHARE"
}
